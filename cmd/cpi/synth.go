package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
)

// newSynthCmd is `cpi synth`: write a realistic synthetic study, every
// trust in its own export dialect (or all canonical).
func newSynthCmd(g *globals) *cobra.Command {
	var (
		out  string
		opts pipeline.SynthOptions
	)
	cmd := &cobra.Command{
		Use:   "synth --out DIR [--seed N] [--participants N] [--canonical]",
		Short: "Write realistic synthetic exports for every trust, each in its own dialect",
		Long: `Write a synthetic study into DIR: for every trust a participants export and a
fidelity export, in the trust's own dialect (its site mapping: CSV or XLSX,
encoding, delimiter, date layout, column names and codes), or with
--canonical all in the canonical format. The same seed gives the same files,
byte for byte. One line per file written goes to stdout (name, rows).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef("synth needs --out DIR")
			}
			if opts.Participants < 1 {
				return usagef("--participants must be at least 1")
			}
			s, err := g.study()
			if err != nil {
				return err
			}
			files, err := pipeline.WriteSynth(cmd.Context(), s, opts, out)
			if err != nil {
				return fmt.Errorf("synth: %w", err)
			}
			if !g.quiet {
				for _, f := range files {
					fmt.Fprintf(g.stdout, "%s\t%d\n", f.Name, f.Rows)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "folder to write the exports into (created if missing)")
	f.Uint64Var(&opts.Seed, "seed", 1, "random seed: the same seed gives the same files")
	f.IntVar(&opts.Participants, "participants", pipeline.SynthDefaultParticipants, "participants recruited over all trusts")
	f.BoolVar(&opts.Canonical, "canonical", false, "write every trust in the canonical format instead of its dialect")
	return cmd
}
