package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

func newTablesCmd(g *globals) *cobra.Command {
	var opts pipeline.CodebookOptions
	cmd := warehouseCmd(g, &cobra.Command{
		Use:   "tables --warehouse W [--json]",
		Short: "List the warehouse's tables, their rows and columns (the codebook); --json: the data package",
	}, func(cmd *cobra.Command, env warehouse.Env, warehouse string) error {
		return pipeline.Codebook(env, warehouse, g.stdout, opts)
	})
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the data package (tables/datapackage.json) as JSON")
	return cmd
}
