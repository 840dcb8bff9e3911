package main

import (
	"encoding/json"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// summary prints a run's summary on stdout (text, or one JSON object with
// --log-format json) and passes the run's error on for the exit status.
// --quiet keeps the summary of problems: it is printed when the run found
// something to act on, and only that part of the text.
func (g *globals) summary(sum *warehouse.Summary, err error) error {
	if sum == nil || (g.quiet && !sum.HasProblems()) {
		return err
	}
	if g.logFormat == "json" {
		b, jerr := json.Marshal(sum)
		if jerr == nil {
			g.stdout.Write(append(b, '\n'))
		}
		return err
	}
	detail := warehouse.SummaryFull
	if g.quiet {
		detail = warehouse.SummaryProblems
	}
	warehouse.PrintSummary(g.stdout, sum, detail)
	return err
}
