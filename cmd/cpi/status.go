package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

func newStatusCmd(g *globals) *cobra.Command {
	return warehouseCmd(g, &cobra.Command{
		Use:   "status --warehouse W",
		Short: "Show every table and report: current, stale or damaged, built from what and when",
	}, func(cmd *cobra.Command, env warehouse.Env, warehouse string) error {
		return pipeline.Status(cmd.Context(), env, warehouse, g.stdout)
	})
}
