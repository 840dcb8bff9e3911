package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

func newCheckCmd(g *globals) *cobra.Command {
	return warehouseCmd(g, &cobra.Command{
		Use:   "check --warehouse W",
		Short: "Verify the whole warehouse: generation, ledger, every table file's bytes, the archive",
		Long: `Check verifies the warehouse without changing it: the current generation and
its ledger, every table and report file hashed against what the ledger
recorded, files the ledger does not know, every archived export against its
SHA-256 (and read-only), and the archive's records of what was received. It
prints a line per check and exits 0 when all is well, 1 naming every problem.`,
	}, func(cmd *cobra.Command, env warehouse.Env, warehouse string) error {
		return pipeline.Check(cmd.Context(), env, warehouse, g.stdout)
	})
}
