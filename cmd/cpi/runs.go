package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
)

func newRunsCmd(g *globals) *cobra.Command {
	var warehouse string
	cmd := &cobra.Command{
		Use:   "runs --warehouse W",
		Short: "List past runs from the ledger",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if warehouse == "" {
				return usagef("--warehouse is required")
			}
			return pipeline.ListRuns(warehouse, g.logFormat == "json", g.stdout)
		},
	}
	cmd.Flags().StringVar(&warehouse, "warehouse", "", "warehouse folder")
	return cmd
}
