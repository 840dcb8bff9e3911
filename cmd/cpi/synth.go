package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline/synth"
	"github.com/connectingpeople/cpi/schemas"
)

// newSynthCmd is `cpi synth`: write a realistic synthetic study, every
// trust in its own export dialect (or all canonical).
func newSynthCmd(g *globals) *cobra.Command {
	var (
		out    string
		force  bool
		redcap bool
		opts   synth.SynthOptions
	)
	cmd := &cobra.Command{
		Use:   "synth --out DIR [--seed N] [--participants N] [--canonical]",
		Short: "Write realistic synthetic exports for every trust, each in its own dialect",
		Long: `Write a synthetic study into DIR: for every trust a participants export and a
fidelity export, in the trust's own dialect (its site mapping: CSV or XLSX,
encoding, delimiter, date layout, column names and codes), or with
--canonical all in the canonical format. The same seed gives the same files,
byte for byte. One line per file written goes to stdout (name, rows).
A folder that already holds exports is refused unless --force.`,
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
			if !force {
				if names := existingExports(s, out); len(names) > 0 {
					return usagef("--out %s already holds %d export(s), e.g. %q: pass --force to write over them, or give an empty folder", out, len(names), names[0])
				}
			}
			write := synth.WriteSynth
			if redcap {
				write = synth.WriteRedcapStudy
			}
			files, err := write(cmd.Context(), s, opts, out)
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
	f.IntVar(&opts.Participants, "participants", synth.SynthDefaultParticipants, "participants recruited over all trusts")
	f.BoolVar(&opts.Canonical, "canonical", false, "write every trust in the canonical format instead of its dialect")
	f.BoolVar(&redcap, "redcap", false, "write the participants of every trust as one REDCap raw records export (<STUDY>_redcap_<YYYYMMDD>.csv; fidelity exports as usual)")
	f.BoolVar(&force, "force", false, "write into a folder that already holds exports, over any of the same name")
	return cmd
}

// existingExports lists the files in dir whose names are a trust's export
// names (none when dir does not exist).
func existingExports(s *schemas.Study, dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if _, _, _, ok := s.IdentifyFile(e.Name()); (ok || isRedcapExport(s, e.Name())) && !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}
