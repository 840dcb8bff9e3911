package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline/ingest"
)

func newValidateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check exports before sending them: the problems found, nothing written",
		Long: `Validate runs every check of ingest on the given files or folders and prints
the problems by file, line and column. Nothing is written. Exit status 3 when
anything would be rejected, quarantined or warned about.`,
		Args: needArgs("at least one FILE: an export, or a folder of exports"),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.env()
			if err != nil {
				return err
			}
			checks, err := ingest.Validate(cmd.Context(), env, args)
			if err != nil {
				return fmt.Errorf("validate: %w", err)
			}
			return ingest.PrintChecks(g.stdout, checks)
		},
	}
}
