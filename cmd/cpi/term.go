package main

import (
	"os"
	"strings"

	"golang.org/x/term"
)

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// isCobraUsage recognises the one usage error cobra makes before a command
// runs (an unknown command); flag errors go through SetFlagErrorFunc and
// argument errors through usageArgs.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
