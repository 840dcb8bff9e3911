package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
)

func newTablesCmd(g *globals) *cobra.Command {
	var warehouse string
	cmd := &cobra.Command{
		Use:   "tables --warehouse W",
		Short: "List the warehouse's tables, their rows and columns (the codebook)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if warehouse == "" {
				return usagef("--warehouse is required")
			}
			env, err := g.env()
			if err != nil {
				return err
			}
			return pipeline.Codebook(env, warehouse, g.stdout)
		},
	}
	cmd.Flags().StringVar(&warehouse, "warehouse", "", "warehouse folder")
	return cmd
}
