package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
)

func newScoreCmd(g *globals) *cobra.Command {
	var warehouse string
	cmd := &cobra.Command{
		Use:   "score --warehouse W",
		Short: "Score the instruments (scores) and their reliability from the responses table",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if warehouse == "" {
				return usagef("--warehouse is required")
			}
			env, err := g.env()
			if err != nil {
				return err
			}
			sum, err := pipeline.RunStages(cmd.Context(), env, warehouse, "score", pipeline.RunOptions{}, pipeline.Score)
			return g.summary(sum, err)
		},
	}
	cmd.Flags().StringVar(&warehouse, "warehouse", "", "warehouse folder")
	return cmd
}
