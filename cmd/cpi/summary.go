package main

import (
	"encoding/json"

	"github.com/connectingpeople/cpi/pipeline"
)

// summary prints a run's summary (text or JSON, per --log-format) unless
// --quiet, and passes the run's error on for the exit status.
func (g *globals) summary(sum *pipeline.Summary, err error) error {
	if sum == nil || g.quiet {
		return err
	}
	if g.logFormat == "json" {
		b, jerr := json.Marshal(sum)
		if jerr == nil {
			g.stdout.Write(append(b, '\n'))
		}
		return err
	}
	pipeline.PrintSummary(g.stdout, sum)
	return err
}
