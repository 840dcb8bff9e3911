package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

func newRunsCmd(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "runs --warehouse W",
		Short: "List past runs from the ledger",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usagef("--warehouse is required")
			}
			return warehouse.ListRuns(dir, g.logFormat == "json", g.stdout)
		},
	}
	cmd.Flags().StringVar(&dir, "warehouse", "", "warehouse folder")
	return cmd
}
