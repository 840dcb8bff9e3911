package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
)

func newRunCmd(g *globals) *cobra.Command {
	var warehouse, inbox string
	cmd := &cobra.Command{
		Use:   "run --warehouse W --inbox DIR",
		Short: "Run every stage on whatever is in the inbox; what is already in is skipped",
		Long: `Run ingests every export in the inbox (files already received are skipped),
then scores, rates fidelity, compares the arms and writes the reports, doing
only what new inputs require. It prints a run summary and exits 0 when all
was accepted, 3 when something was rejected or quarantined, 1 on failure
(the warehouse is then as before the run), 2 on bad usage.

A file still being written (changed within the study's ingest.settle_seconds,
default 5) is left for the next run with a warning; leftovers such as
Thumbs.db, ~$*.xlsx or *.crdownload are ignored; FIFOs, devices and folders
named like exports are skipped with a warning. The warehouse must not be
inside the inbox.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case warehouse == "" && inbox == "":
				return usagef("--warehouse W and --inbox DIR are required: the warehouse folder and the folder of exports")
			case warehouse == "":
				return usagef("--warehouse W is required: the warehouse folder")
			case inbox == "":
				return usagef("--inbox DIR is required: the folder of exports")
			}
			if err := checkInputs(warehouse, []string{inbox}, true); err != nil {
				return err
			}
			env, err := g.env()
			if err != nil {
				return err
			}
			sum, err := pipeline.RunStages(cmd.Context(), env, warehouse, "run", pipeline.RunOptions{Create: true}, pipeline.RunAll(inbox)...)
			return g.summary(sum, err)
		},
	}
	cmd.Flags().StringVar(&warehouse, "warehouse", "", "warehouse folder (created if missing)")
	cmd.Flags().StringVar(&inbox, "inbox", "", "folder of exports received")
	return cmd
}
