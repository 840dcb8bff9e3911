package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
)

func newTablesCmd(g *globals) *cobra.Command {
	var warehouse string
	var opts pipeline.CodebookOptions
	cmd := &cobra.Command{
		Use:   "tables --warehouse W [--json]",
		Short: "List the warehouse's tables, their rows and columns (the codebook); --json: the data package",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if warehouse == "" {
				return usagef("--warehouse is required")
			}
			env, err := g.env()
			if err != nil {
				return err
			}
			return pipeline.Codebook(env, warehouse, g.stdout, opts)
		},
	}
	cmd.Flags().StringVar(&warehouse, "warehouse", "", "warehouse folder")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the data package (tables/datapackage.json) as JSON")
	return cmd
}
