package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
)

// compareOptions are cpi compare's flags.
type compareOptions struct {
	warehouse string
}

func newCompareCmd(g *globals) *cobra.Command {
	var opts compareOptions
	cmd := &cobra.Command{
		Use:   "compare --warehouse W",
		Short: "Fit the analysis plan: write the effects, balance and flow tables",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.warehouse == "" {
				return usagef("--warehouse is required")
			}
			env, err := g.env()
			if err != nil {
				return err
			}
			sum, err := pipeline.RunStages(cmd.Context(), env, opts.warehouse, "compare", pipeline.RunOptions{}, pipeline.Compare)
			return g.summary(sum, err)
		},
	}
	cmd.Flags().StringVar(&opts.warehouse, "warehouse", "", "warehouse folder")
	return cmd
}
