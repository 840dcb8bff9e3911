package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
)

// newStageCmd makes the command that runs one stage on a warehouse (score,
// fidelity, compare): it takes the run lock, writes a new generation, and
// prints the run summary. The stage refuses (exit 1) when an input table is
// missing or out of date.
func newStageCmd(g *globals, name, short string) *cobra.Command {
	def, _ := pipeline.LookupStage(name)
	var warehouse string
	cmd := &cobra.Command{
		Use:   name + " --warehouse W",
		Short: short,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if warehouse == "" {
				return usagef("--warehouse is required")
			}
			env, err := g.env()
			if err != nil {
				return err
			}
			sum, err := pipeline.RunStages(cmd.Context(), env, warehouse, name, pipeline.RunOptions{}, pipeline.Checked(def))
			return g.summary(sum, err)
		},
	}
	cmd.Flags().StringVar(&warehouse, "warehouse", "", "warehouse folder")
	return cmd
}

func newScoreCmd(g *globals) *cobra.Command {
	return newStageCmd(g, "score", "Score the instruments (scores) and their reliability from the responses table")
}

func newFidelityCmd(g *globals) *cobra.Command {
	return newStageCmd(g, "fidelity", "Score fidelity per team and rating period (fidelity, fidelity_components) from the ratings")
}

func newCompareCmd(g *globals) *cobra.Command {
	return newStageCmd(g, "compare", "Fit the analysis plan: write the effects, balance and flow tables")
}
