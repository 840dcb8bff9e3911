package main

import "github.com/spf13/cobra"

func newReportCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Write HTML reports: a fidelity report per team, or the study report",
	}
	cmd.AddCommand(newReportFidelityCmd(g), newReportStudyCmd(g))
	return cmd
}
