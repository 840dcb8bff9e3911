package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
)

func newAcceptCmd(g *globals) *cobra.Command {
	var warehouse, reason string
	cmd := &cobra.Command{
		Use:   "accept --warehouse W FILE --reason \"...\"",
		Short: "Make a held export current after all, with the reason recorded in the ledger",
		Long: `A new export that would replace its trust's current one is held when it has lost
more of the trust's participants, or had more of its rows rejected, than the study
allows (ingest.hold_participant_loss, ingest.hold_rejected_rows). The previous export
stays current and every run says so until a newer export arrives or the data manager
accepts the held one with this command. FILE is the export's name as received (or its
SHA-256). The later stages are then brought up to date, as cpi run does.`,
		Args: usageArgs(exactlyOne("FILE, the name of the held export to accept")),
		RunE: func(cmd *cobra.Command, args []string) error {
			if warehouse == "" {
				return usagef("--warehouse is required")
			}
			if strings.TrimSpace(reason) == "" {
				return usagef("--reason is required: say why the export is accepted (it is kept in the ledger)")
			}
			env, err := g.env()
			if err != nil {
				return err
			}
			sum, err := pipeline.RunStages(cmd.Context(), env, warehouse, "accept", pipeline.RunOptions{}, pipeline.AcceptAll(args[0], reason)...)
			return g.summary(sum, err)
		},
	}
	cmd.Flags().StringVar(&warehouse, "warehouse", "", "warehouse folder")
	cmd.Flags().StringVar(&reason, "reason", "", "why the held export is accepted (required; kept in the ledger)")
	return cmd
}

// exactlyOne is cobra.ExactArgs(1) with a message naming the argument.
func exactlyOne(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usagef("give exactly one argument: %s", what)
		}
		return nil
	}
}
