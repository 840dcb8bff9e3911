package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"time"
)

// Stage is one step of the pipeline: it reads tables from the generation
// being written and writes its own. Stages never re-parse raw exports (but
// ingest, whose input they are).
type Stage func(ctx context.Context, env Env, tx *Tx) error

// Summary is what a run did: the run summary printed at the end and kept
// in the ledger.
type Summary struct {
	RunID            int64                    `json:"run_id"`
	Command          string                   `json:"command"`
	FilesNew         int                      `json:"files_new"`
	FilesSkipped     int                      `json:"files_skipped"`
	FilesSuperseded  int                      `json:"files_superseded"`
	FilesQuarantined int                      `json:"files_quarantined"`
	RowsAccepted     int64                    `json:"rows_accepted"`
	RowsRejected     int64                    `json:"rows_rejected"`
	Warnings         int                      `json:"warnings"`
	Trusts           map[string]*TrustSummary `json:"trusts"`
	TablesWritten    []string                 `json:"tables_written"`
	StagesSkipped    []string                 `json:"stages_skipped,omitempty"`
	SilentTrusts     []string                 `json:"silent_trusts,omitempty"`
	NothingNew       bool                     `json:"nothing_new"`
	Rebuilt          []Rebuild                `json:"rebuilt,omitempty"`
	DurationSeconds  float64                  `json:"duration_seconds"`
}

// Rebuild is a stage `cpi run` ran, the outputs it rebuilt and why.
type Rebuild struct {
	Stage   string   `json:"stage"`
	Outputs []string `json:"outputs"`
	Because []string `json:"because"`
}

// TrustSummary is one trust's share of a run.
type TrustSummary struct {
	Files        int   `json:"files"`
	RowsAccepted int64 `json:"rows_accepted"`
	RowsRejected int64 `json:"rows_rejected"`
	Quarantined  int   `json:"quarantined"`
}

func newSummary(runID int64) *Summary {
	return &Summary{RunID: runID, Trusts: map[string]*TrustSummary{}}
}

func (s *Summary) trust(code string) *TrustSummary {
	t, ok := s.Trusts[code]
	if !ok {
		t = &TrustSummary{}
		s.Trusts[code] = t
	}
	return t
}

// problems is the ProblemsError of a run, or nil when nothing was rejected
// or quarantined.
func (s *Summary) problems() error {
	if s.RowsRejected == 0 && s.FilesQuarantined == 0 {
		return nil
	}
	return &ProblemsError{Rejected: s.RowsRejected, Quarantined: s.FilesQuarantined, Warnings: s.Warnings}
}

// RunOptions adjusts RunStages.
type RunOptions struct {
	// Create makes the warehouse if it does not exist.
	Create bool
	// Hooks lets tests stop the run at a write step.
	Hooks CrashHooks
}

// RunStages runs stages in one generation of the warehouse at dir: it takes
// the run lock, starts a generation, runs each stage in order, records the
// run in the ledger and commits. Any stage error abandons the generation,
// so the warehouse stays as it was. It returns the run's summary, and a
// *ProblemsError (after committing) when rows were rejected or files
// quarantined.
func RunStages(ctx context.Context, env Env, dir, command string, opts RunOptions, stages ...Stage) (*Summary, error) {
	started := env.now()
	w, err := OpenWarehouse(dir, opts.Create)
	if err != nil {
		return nil, err
	}
	if err := w.Lock(); err != nil {
		return nil, err
	}
	defer w.Unlock()
	tx, err := w.Begin(opts.Hooks)
	if err != nil {
		return nil, err
	}
	sum := tx.Summary
	sum.Command = command
	if err := verifyOutputs(ctx, tx.Dir, tx.Ledger, false); err != nil {
		tx.Rollback()
		return nil, err
	}
	if err := adoptOutputs(ctx, env, tx); err != nil {
		tx.Rollback()
		return nil, err
	}
	for _, stage := range stages {
		if err := ctx.Err(); err != nil {
			tx.Rollback()
			return nil, err
		}
		if err := stage(ctx, env, tx); err != nil {
			if !errors.Is(err, errCrash) {
				tx.Rollback()
			}
			return nil, err
		}
	}
	return commitRun(env, tx, command, started, true)
}

// commitRun records the run in the ledger and commits its generation. An
// error before the switch abandons the generation (but a simulated crash,
// which leaves it as a crash would); once "current" names the generation
// nothing deletes it, and an error after the switch says the run was
// committed. With problems, a run that rejected rows or quarantined files
// returns a *ProblemsError after committing (exit 3).
func commitRun(env Env, tx *Tx, command string, started time.Time, problems bool) (*Summary, error) {
	sum := tx.Summary
	sum.TablesWritten = tx.Written()
	sum.NothingNew = sum.FilesNew == 0 && len(sum.TablesWritten) == 0
	sum.SilentTrusts = silentTrusts(env, tx.Ledger, started)
	sum.DurationSeconds = env.now().Sub(started).Seconds()
	exit := 0
	if problems && sum.problems() != nil {
		exit = 3
	}
	tx.Ledger.Runs = append(tx.Ledger.Runs, RunEntry{
		ID: sum.RunID, Command: command, Started: started, Finished: env.now(),
		Summary: sum, ExitStatus: exit, ProgramVers: env.Version,
	})
	if err := tx.Commit(); err != nil {
		if tx.switched {
			// The new generation is current: nothing may delete it.
			return sum, fmt.Errorf("%s: the run was committed (generation %s is current), but finishing the commit failed: %w", command, filepath.Base(tx.Dir), err)
		}
		if !errors.Is(err, errCrash) {
			tx.Rollback()
		}
		return nil, fmt.Errorf("%s: %w", command, err)
	}
	if !problems {
		return sum, nil
	}
	return sum, sum.problems()
}

// errCrash is returned by test hooks that simulate a crash: the generation
// is left as a crash would leave it.
var errCrash = errors.New("simulated crash")

// silentTrusts names trusts that have sent nothing for longer than the
// study's allowance (or never sent anything).
func silentTrusts(env Env, l *Ledger, now time.Time) []string {
	last := l.LastReceived()
	limit := time.Duration(env.Study.Ingest.SilenceDays) * 24 * time.Hour
	var out []string
	for _, t := range env.Study.TrustCodes() {
		at, ok := last[t]
		if !ok || now.Sub(at) > limit {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}
