package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
	"github.com/connectingpeople/cpi/pipeline/ingest"
)

func newIngestCmd(g *globals) *cobra.Command {
	var warehouse string
	cmd := &cobra.Command{
		Use:   "ingest --warehouse W PATH...",
		Short: "Ingest exports (files or folders) into the warehouse",
		Args:  needArgs("at least one PATH: an export, or a folder of exports"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if warehouse == "" {
				return usagef("--warehouse W is required: the warehouse folder to ingest into")
			}
			if err := checkInputs(warehouse, args, false); err != nil {
				return err
			}
			env, err := g.env()
			if err != nil {
				return err
			}
			sum, err := pipeline.RunStages(cmd.Context(), env, warehouse, "ingest", pipeline.RunOptions{Create: true}, ingest.Ingest(args))
			return g.summary(sum, err)
		},
	}
	cmd.Flags().StringVar(&warehouse, "warehouse", "", "warehouse folder (created if missing)")
	return cmd
}
