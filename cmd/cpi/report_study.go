package main

import (
	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
	"github.com/connectingpeople/cpi/pipeline/report/study"
)

// reportStudyOptions are cpi report study's flags.
type reportStudyOptions struct {
	warehouse string
	out       string
	tables    string
}

func newReportStudyCmd(g *globals) *cobra.Command {
	var opts reportStudyOptions
	cmd := &cobra.Command{
		Use:   "study --warehouse W [--out FILE] [--tables DIR]",
		Short: "Write the study report (flow, baseline, outcomes, forest plot, balance, fidelity) as HTML, and its tables as CSV",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.memory.lower(reportHeapBudget)
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
			if err := study.WriteReportFile(cmd.Context(), env, opts.warehouse, opts.out); err != nil {
				return err
			}
			g.wrote(opts.out)
			if opts.tables != "" {
				if err := study.WriteReportTables(cmd.Context(), env, opts.warehouse, opts.tables); err != nil {
					return err
				}
				g.wrote(opts.tables)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.warehouse, "warehouse", "", "warehouse folder")
	cmd.Flags().StringVar(&opts.out, "out", "study-report.html", "HTML file to write")
	cmd.Flags().StringVar(&opts.tables, "tables", "", "also write each table of the report as CSV into this folder (created 0700; files 0600), the numbers as shown, suppression applied")
	return cmd
}
