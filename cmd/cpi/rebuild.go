package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

func newRebuildCmd(g *globals) *cobra.Command {
	return warehouseCmd(g, &cobra.Command{
		Use:   "rebuild --warehouse W",
		Short: "Rebuild every table and report from the archive alone, as a new generation",
		Long: `Rebuild replays every file the archive records as received, in the order it
arrived, under its original name and arrival time, then runs every later
stage, and commits the result as a new generation. The tables come out
byte for byte as the runs that received the files wrote them. It works
whatever state the current generation is in (a deleted partition, a changed
table file, a missing ledger), and like any run it leaves the warehouse as
before or as after. Exit 0 when rebuilt, 1 on failure.`,
	}, func(cmd *cobra.Command, env warehouse.Env, warehouse string) error {
		sum, err := pipeline.RebuildWarehouse(cmd.Context(), env, warehouse, pipeline.RunOptions{})
		return g.summary(sum, err)
	})
}
