package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/connectingpeople/cpi/pipeline/ingest"
)

// checkInputs checks the paths given to ingest or run before the warehouse
// is opened (or created): each must exist (an inbox must be a folder), and
// none may hold the warehouse or lie inside it. A missing path is a
// failure (exit 1: the command was right, the folder is not there, as when
// a share is not mounted); a warehouse inside the inbox is bad usage (exit
// 2: the command line itself must change, and nothing was read).
func checkInputs(warehouse string, paths []string, inbox bool) error {
	for _, p := range paths {
		info, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist) && inbox:
			return fmt.Errorf("inbox %s: no such folder", p)
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%s: no such file or folder", p)
		case err != nil:
			return err
		case inbox && !info.IsDir():
			return usagef("--inbox %s is a file: give the folder the exports arrive in (cpi ingest takes single files)", p)
		}
	}
	if err := ingest.CheckPaths(warehouse, paths); err != nil {
		return usageError{err}
	}
	return nil
}
