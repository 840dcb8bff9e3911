package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
	fidelityreport "github.com/connectingpeople/cpi/pipeline/report/fidelity"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// reportFidelityOptions are cpi report fidelity's flags.
type reportFidelityOptions struct {
	warehouse string
	team      string
	out       string
	all       bool
	control   bool
	outDir    string
}

func newReportFidelityCmd(g *globals) *cobra.Command {
	var opts reportFidelityOptions
	cmd := &cobra.Command{
		Use:   "fidelity --warehouse W (--team CODE [--out FILE] | --all [--control] [--out-dir DIR])",
		Short: "Write a team's fidelity report as HTML (or every intervention team's with --all)",
		Long: "Write the fidelity report of a team for a feedback meeting: total and band per rating\n" +
			"period, the components against their maximum, change between periods, the team against\n" +
			"the median of the other intervention teams, where to focus, and raters per period.\n" +
			"A control team's report is for the study team only (contamination monitoring): its own\n" +
			"scores against the thresholds, with no guidance and no comparison.\n" +
			"--team CODE writes fidelity-CODE.html in the current folder unless --out names a file;\n" +
			"--all writes fidelity-<TEAM>.html for every intervention team into --out-dir (default:\n" +
			"the current folder), and with --control the control teams' monitoring reports too.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.memory.lower(reportHeapBudget)
			if opts.warehouse == "" {
				return usagef("--warehouse is required")
			}
			switch {
			case opts.all && opts.team != "":
				return usagef("give either --team or --all, not both")
			case !opts.all && opts.team == "":
				return usagef("--team CODE (or --all) is required")
			case opts.all && opts.out != "":
				return usagef("--out names one file: with --all use --out-dir")
			case !opts.all && cmd.Flags().Changed("out-dir"):
				return usagef("--out-dir goes with --all: with --team use --out")
			case !opts.all && opts.control:
				return usagef("--control goes with --all: --team writes the report of the team named")
			}
			if !opts.all && opts.out != "" {
				if err := checkOutFile(opts.out, "fidelity-"+opts.team+".html"); err != nil {
					return err
				}
			}
			if opts.all {
				if info, err := os.Stat(opts.outDir); err == nil && !info.IsDir() {
					return usagef("--out-dir %s is a file: name a folder", opts.outDir)
				}
			}
			env, err := g.env()
			if err != nil {
				return err
			}
			teams := fidelityreport.ReportTeams(env.Study, opts.control)
			if !opts.all {
				if _, ok := env.Study.Team(opts.team); !ok {
					return usagef("unknown team %q; the study's teams are: %s", opts.team, strings.Join(env.Study.TeamCodes(), ", "))
				}
				teams = []string{opts.team}
			}
			path := func(team string) string {
				if !opts.all && opts.out != "" {
					return opts.out
				}
				return filepath.Join(opts.outDir, "fidelity-"+team+".html")
			}
			if err := pipeline.ReadyFor(cmd.Context(), env, opts.warehouse, "report fidelity"); err != nil {
				return err
			}
			w, err := warehouse.OpenWarehouse(opts.warehouse, false)
			if err != nil {
				return err
			}
			gen, err := w.CurrentDir()
			if err != nil {
				return err
			}
			if gen == "" {
				return fmt.Errorf("warehouse %s has nothing committed yet: run cpi run or cpi ingest first", opts.warehouse)
			}
			if err := fidelityreport.WriteReportFiles(cmd.Context(), env, gen, teams, path); err != nil {
				return err
			}
			for _, team := range teams {
				g.wrote(path(team))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.warehouse, "warehouse", "", "warehouse folder")
	f.StringVar(&opts.team, "team", "", "team code, e.g. TEWV-01")
	f.StringVar(&opts.out, "out", "", "HTML file to write (default: fidelity-<TEAM>.html in the current folder)")
	f.BoolVar(&opts.all, "all", false, "write every intervention team's report")
	f.BoolVar(&opts.control, "control", false, "with --all, also the control teams' monitoring reports (for the study team, not for the teams)")
	f.StringVar(&opts.outDir, "out-dir", ".", "folder for --all (one fidelity-<TEAM>.html per team)")
	return cmd
}
