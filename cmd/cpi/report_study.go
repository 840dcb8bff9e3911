package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
	"github.com/connectingpeople/cpi/pipeline/report"
)

// reportStudyOptions are cpi report study's flags.
type reportStudyOptions struct {
	warehouse string
	out       string
}

func newReportStudyCmd(g *globals) *cobra.Command {
	var opts reportStudyOptions
	cmd := &cobra.Command{
		Use:   "study --warehouse W [--out FILE]",
		Short: "Write the study report (flow, baseline, outcomes, forest plot, balance, fidelity) as HTML",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.warehouse == "" {
				return usagef("--warehouse is required")
			}
			if err := checkOutFile(opts.out, "study-report.html"); err != nil {
				return err
			}
			env, err := g.env()
			if err != nil {
				return err
			}
			if err := pipeline.ReadyFor(cmd.Context(), env, opts.warehouse, "report study"); err != nil {
				return err
			}
			if err := report.WriteStudyReportFile(cmd.Context(), env, opts.warehouse, opts.out); err != nil {
				return err
			}
			g.wrote(opts.out)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.warehouse, "warehouse", "", "warehouse folder")
	cmd.Flags().StringVar(&opts.out, "out", "study-report.html", "HTML file to write")
	return cmd
}
