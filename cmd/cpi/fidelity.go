package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
)

func newFidelityCmd(g *globals) *cobra.Command {
	var warehouse string
	cmd := &cobra.Command{
		Use:   "fidelity --warehouse W",
		Short: "Score fidelity per team and rating period (fidelity, fidelity_components) from the ratings",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if warehouse == "" {
				return usagef("--warehouse is required")
			}
			env, err := g.env()
			if err != nil {
				return err
			}
			sum, err := pipeline.RunStages(cmd.Context(), env, warehouse, "fidelity", pipeline.RunOptions{}, pipeline.Fidelity)
			return g.summary(sum, err)
		},
	}
	cmd.Flags().StringVar(&warehouse, "warehouse", "", "warehouse folder")
	return cmd
}
