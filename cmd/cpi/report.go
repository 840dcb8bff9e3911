package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// reportHeapBudget is the heap budget of the report commands (see
// heapBudget): a report keeps a few MiB live at any study size, and reads
// participants row group by row group for Table 1, so it collects at this
// budget rather than letting that garbage grow to heapBudget (at
// 1,000,000 participants the study report allocates about 200 MB in all,
// at 100,000 about 110 MB).
const reportHeapBudget = 64 << 20

func newReportCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Write HTML reports: a fidelity report per team, or the study report",
	}
	cmd.AddCommand(newReportFidelityCmd(g), newReportStudyCmd(g))
	return cmd
}

// checkOutFile refuses an --out that is empty or names a folder, and says
// what to give instead (writing would otherwise fail on the name of a
// temporary file).
func checkOutFile(out, example string) error {
	if out == "" {
		return usagef("--out must name the HTML file to write, e.g. %s", example)
	}
	if info, err := os.Stat(out); err == nil && info.IsDir() {
		return usagef("--out %s is a folder: name the HTML file to write, e.g. %s", out, filepath.Join(out, example))
	}
	return nil
}

// wrote tells the user where a report went (its absolute path), unless
// --quiet.
func (g *globals) wrote(path string) {
	if g.quiet {
		return
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	fmt.Fprintf(g.stdout, "wrote %s\n", path)
}
