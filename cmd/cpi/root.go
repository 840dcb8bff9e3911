package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/connectingpeople/cpi/pipeline"
	"github.com/connectingpeople/cpi/pipeline/compare"
	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// globals are the flags every command shares.
type globals struct {
	studyFile   string
	logFormat   string
	quiet       bool
	profile     string // --cpuprofile: a CPU profile of the command, for go tool pprof
	profileFile *os.File
	memProfile  string // --memprofile: an allocation profile at the end of the command
	trace       string // --trace: an execution trace of the command, for go tool trace
	traceFile   *os.File
	stdout      io.Writer
	stderr      io.Writer
	// settle, when set, replaces the study's ingest.settle_seconds (tests
	// take files as they are rather than wait).
	settle *time.Duration
	// memory is the collector's budget (tuneMemory), which a command may
	// lower; nil in tests.
	memory *gcTuner
}

// study loads the study definition named by --study, or the embedded one.
func (g *globals) study() (*schemas.Study, error) {
	s, err := schemas.Load(g.studyFile, schemas.KnownAnalyses(compare.Names()...))
	if err != nil {
		return nil, usageError{fmt.Errorf("study definition: %w", err)}
	}
	return s, nil
}

// logger writes to stderr in the chosen format; --quiet keeps warnings and
// errors only. With a progress line on stderr, each record is written with
// the line cleared (see progressHandler).
func (g *globals) logger(p *warehouse.Progress) *slog.Logger {
	level := slog.LevelInfo
	if g.quiet {
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(g.stderr, opts)
	if g.logFormat == "json" {
		h = slog.NewJSONHandler(g.stderr, opts)
	}
	if p != nil {
		h = progressHandler{inner: h, p: p}
	}
	return slog.New(h)
}

// env is what a stage needs from the command line.
func (g *globals) env() (warehouse.Env, error) {
	s, err := g.study()
	if err != nil {
		return warehouse.Env{}, err
	}
	settle := time.Duration(s.Ingest.SettleSeconds) * time.Second
	if g.settle != nil {
		settle = *g.settle
	}
	p := g.progress()
	return warehouse.Env{Study: s, Log: g.logger(p), Version: version, Progress: p, SettleTime: settle}, nil
}

// usageError is a mistake in the command line: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// needArgs asks for at least one positional argument, and says which
// (cobra's own message names no argument).
func needArgs(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usagef("%s needs %s (usage: cpi %s)", cmd.Name(), what, cmd.Use)
		}
		return nil
	}
}

// usageArgs makes a cobra argument check's error a usage error (exit 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "cpi",
		Short:         "Research data pipeline of the Connecting People implementation study",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if g.logFormat != "text" && g.logFormat != "json" {
				return usagef("--log-format must be text or json")
			}
			return g.startProfile()
		},
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.studyFile, "study", "", "study definition YAML (default: the embedded one)")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	pf.BoolVar(&g.quiet, "quiet", false, "log warnings and errors only")
	pf.StringVar(&g.profile, "cpuprofile", "", "write a CPU profile of the command to this file")
	_ = pf.MarkHidden("cpuprofile")
	pf.StringVar(&g.memProfile, "memprofile", "", "write an allocation profile of the command to this file")
	_ = pf.MarkHidden("memprofile")
	pf.StringVar(&g.trace, "trace", "", "write an execution trace of the command to this file")
	_ = pf.MarkHidden("trace")
	for _, add := range commands {
		root.AddCommand(add(g))
	}
	return root
}

// commands lists every subcommand's constructor; each lives in its own file.
var commands = []func(*globals) *cobra.Command{
	newSynthCmd,
	newValidateCmd,
	newIngestCmd,
	newScoreCmd,
	newFidelityCmd,
	newCompareCmd,
	newRunCmd,
	newReportCmd,
	newTablesCmd,
	newRunsCmd,
	newStatusCmd,
	newAcceptCmd,
	newCheckCmd,
	newRebuildCmd,
	newRedcapCmd,
}

// run executes the command line and maps the outcome to an exit status:
// 0 all accepted; 3 finished but something was rejected or quarantined;
// 1 failed; 2 bad usage. mem is the collector's tuner (tuneMemory).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, mem *gcTuner) int {
	return runWith(ctx, &globals{stdout: stdout, stderr: stderr, memory: mem}, args)
}

func runWith(ctx context.Context, g *globals, args []string) int {
	root := newRoot(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if perr := g.stopProfile(); perr != nil && err == nil {
		err = perr
	}
	return exitCode(err, g.stderr)
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var problems *warehouse.ProblemsError
	var usage usageError
	var damaged *pipeline.CheckError
	switch {
	case errors.As(err, &damaged):
		fmt.Fprintf(stderr, "cpi: the warehouse failed %d checks (listed above); restore the files named, or run `cpi rebuild`\n", len(damaged.Problems))
		return 1
	case errors.As(err, &problems):
		fmt.Fprintln(stderr, "cpi:", err)
		return 3
	case errors.As(err, &usage), isCobraUsage(err), errors.Is(err, ingest.ErrWarehouseInInbox):
		fmt.Fprintln(stderr, "cpi:", err)
		fmt.Fprintln(stderr, "Run 'cpi --help' for usage.")
		return 2
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "cpi: interrupted; the warehouse is as it was before the run")
		return 1
	default:
		fmt.Fprintln(stderr, "cpi:", err)
		return 1
	}
}
