package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline/redcap"
	"github.com/connectingpeople/cpi/schemas"
)

// newRedcapCmd is `cpi redcap`: the REDCap project of the study.
func newRedcapCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "redcap",
		Short: "Set up and read the study's REDCap project",
		Args:  usageArgs(cobra.NoArgs),
	}
	cmd.AddCommand(newRedcapDictionaryCmd(g))
	return cmd
}

// newRedcapDictionaryCmd is `cpi redcap dictionary --out DIR`.
func newRedcapDictionaryCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "dictionary --out DIR",
		Short: "Write the REDCap data dictionary, events, instrument-event mapping and DAGs",
		Long: `Write into DIR (created 0700) what a REDCap administrator uploads to create
the study's project, all derived from the study definition:
  ` + redcap.DictionaryFile + `          the data dictionary (REDCap's 18 columns): form
                                 "interview", form "demographics", one form per instrument
  ` + redcap.EventsFile + `                   one event per wave (<wave>_arm_1)
  ` + redcap.MappingFile + `  which forms are collected at which event
  ` + redcap.DAGsFile + `       one data access group per team (TEWV-01: tewv_01)
One line per file written goes to stdout.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef("redcap dictionary needs --out DIR")
			}
			s, err := g.study()
			if err != nil {
				return err
			}
			p, err := redcap.Build(s)
			if err != nil {
				return fmt.Errorf("redcap dictionary: %w", err)
			}
			files, err := p.WriteProject(out)
			if err != nil {
				return fmt.Errorf("redcap dictionary: %w", err)
			}
			if !g.quiet {
				for _, f := range files {
					fmt.Fprintln(g.stdout, f)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "folder to write the project files into (created 0700 if missing)")
	return cmd
}

// isRedcapExport reports whether name is a REDCap records export of the
// study.
func isRedcapExport(s *schemas.Study, name string) bool {
	_, ok := redcap.ParseFileName(s, name)
	return ok
}
