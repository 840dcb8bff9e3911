package ingest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/connectingpeople/cpi/pipeline/redcap"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// This file is what ingest finds in an inbox before it reads anything:
// which entries are exports, which are leftovers to ignore, which cannot be
// read as files, and which are still being written.

// listedFile is one entry met listing the paths given to ingest.
type listedFile struct {
	path, name string
	status     string // "" to read; OutcomeIgnored or OutcomeRefused
	reason     string
}

// ErrWarehouseInInbox is returned when the folders to ingest hold the
// warehouse, or lie inside it: ingest would read its own archive.
var ErrWarehouseInInbox = errors.New("the warehouse and the exports to ingest overlap")

// CheckPaths refuses paths to ingest that hold the warehouse at dir or lie
// inside it (a warehouse placed in its own inbox would ingest its own
// files). A path to ingest that does not exist is no overlap.
func CheckPaths(dir string, paths []string) error {
	wh, err := realPath(dir)
	if err != nil {
		return nil
	}
	for _, p := range paths {
		rp, err := realPath(p)
		if err != nil {
			continue
		}
		switch {
		case within(rp, wh):
			return fmt.Errorf("%w: the warehouse %s is inside %s; keep it outside the inbox", ErrWarehouseInInbox, dir, p)
		case within(wh, rp):
			return fmt.Errorf("%w: %s is inside the warehouse %s; ingest exports from outside it", ErrWarehouseInInbox, p, dir)
		}
	}
	return nil
}

// realPath is the absolute path of a file or folder with every symbolic
// link resolved; for one that does not exist yet (a warehouse about to be
// created), that of its nearest existing parent, joined with the rest.
func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rest := ""
	for {
		real, err := filepath.EvalSymlinks(abs)
		if err == nil {
			return filepath.Join(real, rest), nil
		}
		parent := filepath.Dir(abs)
		if !errors.Is(err, fs.ErrNotExist) || parent == abs {
			return "", err
		}
		rest = filepath.Join(filepath.Base(abs), rest)
		abs = parent
	}
}

// within reports whether path is dir or inside it.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// listExports expands folders (recursively, hidden files and folders left
// out) into files, sorted by path so every run meets them in the same order.
// Symbolic links to regular files are followed; links to folders are not
// (a loop, or a link to the warehouse). Leftovers of editors, the OS and
// browsers are listed as ignored; named pipes, devices, sockets, linked
// folders and folders named like exports as refused: none of these is
// opened, so a FIFO cannot block the run.
func listExports(study *schemas.Study, paths []string) ([]listedFile, error) {
	var out []listedFile
	for _, p := range paths {
		info, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file or folder", p)
		}
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			out = append(out, classifyFile(p, info))
			continue
		}
		// The folder itself may be a link (an inbox on another disk).
		root, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, err
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if path == root {
				return nil
			}
			name := d.Name()
			if d.IsDir() {
				switch {
				case strings.HasPrefix(name, "."):
				case looksLikeExport(study, name):
					out = append(out, listedFile{path: path, name: name, status: warehouse.OutcomeRefused, reason: "a folder named like an export: not read"})
				default:
					return nil
				}
				return filepath.SkipDir
			}
			if why := leftover(name); why != "" {
				out = append(out, listedFile{path: path, name: name, status: warehouse.OutcomeIgnored, reason: why})
				return nil
			}
			if strings.HasPrefix(name, ".") {
				return nil
			}
			info, err := os.Stat(path) // follows a link
			if err != nil {
				if d.Type()&fs.ModeSymlink != 0 && errors.Is(err, fs.ErrNotExist) {
					out = append(out, listedFile{path: path, name: name, status: warehouse.OutcomeRefused, reason: "a symbolic link to nothing"})
					return nil
				}
				return err
			}
			out = append(out, classifyFile(path, info))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", p, err)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}

// classifyFile says whether a file met (its mode as followed through any
// link) can be read as an export.
func classifyFile(path string, info fs.FileInfo) listedFile {
	lf := listedFile{path: path, name: filepath.Base(path)}
	if why := leftover(lf.name); why != "" {
		lf.status, lf.reason = warehouse.OutcomeIgnored, why
		return lf
	}
	m := info.Mode()
	switch {
	case m.IsRegular():
		return lf
	case m.IsDir():
		lf.reason = "a link to a folder: not followed"
	case m&fs.ModeNamedPipe != 0:
		lf.reason = "a named pipe (FIFO), not a file: not read"
	case m&fs.ModeDevice != 0:
		lf.reason = "a device, not a file: not read"
	case m&fs.ModeSocket != 0:
		lf.reason = "a socket, not a file: not read"
	default:
		lf.reason = "not a regular file: not read"
	}
	lf.status = warehouse.OutcomeRefused
	return lf
}

// looksLikeExport reports whether a name is one a trust's export could have.
func looksLikeExport(study *schemas.Study, name string) bool {
	if _, _, _, ok := study.IdentifyFile(name); ok {
		return true
	}
	if site, _ := study.BadExportDate(name); site != nil {
		return true
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv", ".xlsx", ".xls":
		return true
	}
	return false
}

// leftover names the kind of a file that editors, the OS or browsers leave
// beside the exports ("" for any other name): ignored, never quarantined.
func leftover(name string) string {
	lower := strings.ToLower(name)
	switch lower {
	case "thumbs.db", "ehthumbs.db", "desktop.ini", ".ds_store":
		return "an operating system's folder file"
	}
	if strings.HasPrefix(lower, "~$") || strings.HasPrefix(lower, ".~lock.") {
		return "an office program's lock file"
	}
	for _, ext := range []string{".crdownload", ".part", ".partial", ".download"} {
		if strings.HasSuffix(lower, ext) {
			return "an unfinished download"
		}
	}
	if strings.HasSuffix(lower, ".tmp") {
		return "a temporary file"
	}
	return ""
}

// look is what one stat of a file saw.
type look struct {
	size int64
	mod  time.Time
}

func lookAt(path string) (look, error) {
	info, err := os.Stat(path)
	if err != nil {
		return look{}, err
	}
	return look{info.Size(), info.ModTime()}, nil
}

// unsettled says why a file seen as first, then as second at time at, with
// hashed bytes hashed in between, may still be being written ("" when it
// has been left alone for settle).
func unsettled(first, second look, hashed int64, at time.Time, settle time.Duration) string {
	switch {
	case second.size != first.size || second.size != hashed || !second.mod.Equal(first.mod):
		return fmt.Sprintf("still being written: its size or modification time changed within %s", settleText(settle))
	case second.mod.After(at):
		return "its modification time is in the future: left until it has passed"
	case second.mod.After(at.Add(-settle)):
		return fmt.Sprintf("modified less than %s ago: left until it has settled", settleText(settle))
	}
	return ""
}

func settleText(d time.Duration) string {
	if d <= 0 {
		return "the run"
	}
	return d.String()
}

// NameProblem is the quarantine a file's name alone earns (code "" when
// none): a name no trust uses, an export date that is no calendar date, or
// one after the run's date plus the study's allowance. The same bytes
// under another name may be fine (see Ledger.receivedAs).
func NameProblem(env warehouse.Env, name string) (code, msg string) {
	if text, bad := redcap.BadFileDate(env.Study, name); bad {
		return warehouse.QuarantineBadDate, fmt.Sprintf("the export date in the file name (%s) is no calendar date: rename the file with the date of the export", text)
	}
	if site, text := env.Study.BadExportDate(name); site != nil {
		return warehouse.QuarantineBadDate, fmt.Sprintf("the export date in the file name (%s) is no calendar date: rename the file with the date of the export", text)
	}
	_, day, _, ok := env.Study.IdentifyFile(name)
	if d, rc := redcap.ParseFileName(env.Study, name); rc {
		day, ok = d, true
	}
	if !ok {
		return warehouse.QuarantineUnknownSite, "the file name matches no trust's export names (canonical: <TRUST>_<participants|fidelity>_<YYYYMMDD>.csv)"
	}
	allow := env.Study.Ingest.FutureExportDays
	today := env.Clock()
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
	if !day.IsZero() && day.After(today.AddDate(0, 0, allow)) {
		return warehouse.QuarantineFutureDate, fmt.Sprintf("the export date in the file name (%s) is more than %d day(s) after today (%s): a mistyped date would make this export current for good; rename the file with the date of the export",
			day.Format("2006-01-02"), allow, today.Format("2006-01-02"))
	}
	return "", ""
}
