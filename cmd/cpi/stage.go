package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// newStageCmd makes the command that runs one stage on a warehouse (score,
// fidelity, compare): it takes the run lock, writes a new generation, and
// prints the run summary. The stage refuses (exit 1) when an input table is
// missing or out of date.
func newStageCmd(g *globals, name, short string) *cobra.Command {
	def, _ := pipeline.LookupStage(name)
	return warehouseCmd(g, &cobra.Command{Use: name + " --warehouse W", Short: short},
		func(cmd *cobra.Command, env warehouse.Env, warehouse string) error {
			sum, err := pipeline.RunStages(cmd.Context(), env, warehouse, name, pipeline.RunOptions{}, pipeline.Checked(def))
			return g.summary(sum, err)
		})
}

func newScoreCmd(g *globals) *cobra.Command {
	return newStageCmd(g, "score", "Score the instruments (scores), their reliability and the service-use sums (service_sums) from the responses table")
}

func newFidelityCmd(g *globals) *cobra.Command {
	return newStageCmd(g, "fidelity", "Score fidelity per team and rating period (fidelity, fidelity_components) from the ratings")
}

func newCompareCmd(g *globals) *cobra.Command {
	return newStageCmd(g, "compare", "Fit the analysis plan at every follow-up wave: write the effects, balance, trust_effects, descriptives, service_use, missing_data, tipping_point and flow tables")
}

// warehouseCmd completes a command that works on one warehouse and takes no
// arguments: it adds --warehouse, refuses a missing one as bad usage, loads
// the study definition and calls run.
func warehouseCmd(g *globals, cmd *cobra.Command, run func(cmd *cobra.Command, env warehouse.Env, warehouse string) error) *cobra.Command {
	var warehouse string
	cmd.Args = usageArgs(cobra.NoArgs)
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if warehouse == "" {
			return usagef("--warehouse is required")
		}
		env, err := g.env()
		if err != nil {
			return err
		}
		return run(c, env, warehouse)
	}
	cmd.Flags().StringVar(&warehouse, "warehouse", "", "warehouse folder")
	return cmd
}
