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
// in the ledger. Its counts and its lists are one account: FilesNew counts
// the new, superseded-on-arrival, held and quarantined files of Files,
// NothingNew holds exactly when no file was new and nothing was rebuilt.
type Summary struct {
	RunID      int64     `json:"run_id"`
	Command    string    `json:"command"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
	ExitStatus int       `json:"exit_status"`

	FilesNew         int           `json:"files_new"`
	FilesSkipped     int           `json:"files_skipped"`
	FilesSuperseded  int           `json:"files_superseded"`
	FilesHeld        int           `json:"files_held"`
	FilesQuarantined int           `json:"files_quarantined"`
	Files            []FileOutcome `json:"files,omitempty"`

	RowsAccepted  int64                    `json:"rows_accepted"`
	RowsRejected  int64                    `json:"rows_rejected"`
	Warnings      int                      `json:"warnings"`
	Trusts        map[string]*TrustSummary `json:"trusts"`
	TablesWritten []string                 `json:"tables_written"`
	Rebuilt       []Rebuild                `json:"rebuilt,omitempty"`
	StagesSkipped []string                 `json:"stages_skipped,omitempty"`
	SilentTrusts  []string                 `json:"silent_trusts,omitempty"`
	NothingNew    bool                     `json:"nothing_new"`
	// Held lists every export held (this run or before) and waiting for a
	// newer export or `cpi accept`; FilesHeld counts them.
	Held []FileOutcome `json:"held,omitempty"`

	DurationSeconds float64 `json:"duration_seconds"`
}

// FileOutcome is what a run did with one file it met, by name: Status is
// one of the Outcome constants, Reason says why in words a data manager
// can act on (never a value from the export).
type FileOutcome struct {
	Name   string `json:"name"`
	Trust  string `json:"trust"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// The statuses of a FileOutcome.
const (
	OutcomeNew         = "new"         // loaded: now the trust's current export
	OutcomeSkipped     = "skipped"     // bytes already received
	OutcomeSuperseded  = "superseded"  // a newer export of the trust is current
	OutcomeHeld        = "held"        // waits for a newer export or cpi accept
	OutcomeQuarantined = "quarantined" // set aside whole; nothing of it loaded
	OutcomeDeferred    = "deferred"    // still being written: left for the next run
	OutcomeIgnored     = "ignored"     // not an export (editor, OS or download leftovers)
	OutcomeRefused     = "refused"     // cannot be read as a file (FIFO, device, folder)
)

// Rebuild is one stage's rewrite of tables or reports and what made it
// necessary ("responses changed", "study definition changed", "program
// version changed", "output missing: scores").
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
	if s.RowsRejected == 0 && s.FilesQuarantined == 0 && s.FilesHeld == 0 {
		return nil
	}
	return &ProblemsError{Rejected: s.RowsRejected, Quarantined: s.FilesQuarantined, Held: s.FilesHeld, Warnings: s.Warnings}
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
	sum.Started = started
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

// commitRun writes the codes table (when stale) and the data package,
// records the run in the ledger and commits its generation. An
// error before the switch abandons the generation (but a simulated crash,
// which leaves it as a crash would); once "current" names the generation
// nothing deletes it, and an error after the switch says the run was
// committed. With problems, a run that rejected rows or quarantined files
// returns a *ProblemsError after committing (exit 3).
func commitRun(env Env, tx *Tx, command string, started time.Time, problems bool) (*Summary, error) {
	sum := tx.Summary
	sum.TablesWritten = tx.Written()
	sum.SilentTrusts = silentTrusts(env, tx.Ledger, started)
	if sum.Started.IsZero() {
		sum.Started = started
	}
	sum.finish(env.now())
	if !problems {
		sum.ExitStatus = 0
	}
	if err := writeCodesIfStale(context.Background(), env, tx); err != nil {
		if !errors.Is(err, errCrash) {
			tx.Rollback()
		}
		return nil, fmt.Errorf("%s: %w", command, err)
	}
	if err := writeDataPackage(env, tx); err != nil {
		if !errors.Is(err, errCrash) {
			tx.Rollback()
		}
		return nil, fmt.Errorf("%s: %w", command, err)
	}
	tx.Ledger.Runs = append(tx.Ledger.Runs, RunEntry{
		ID: sum.RunID, Command: command, Started: sum.Started, Finished: sum.Finished,
		Summary: sum, ExitStatus: sum.ExitStatus, ProgramVers: env.Version,
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
