package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// RunOptions adjusts RunStages.
type RunOptions struct {
	// Create makes the warehouse if it does not exist.
	Create bool
	// Hooks lets tests stop the run at a write step.
	Hooks warehouse.CrashHooks
}

// RunStages runs stages in one generation of the warehouse at dir: it takes
// the run lock, starts a generation, runs each stage in order, records the
// run in the ledger and commits. Any stage error abandons the generation,
// so the warehouse stays as it was. It returns the run's summary, and a
// *ProblemsError (after committing) when rows were rejected or files
// quarantined.
func RunStages(ctx context.Context, env warehouse.Env, dir, command string, opts RunOptions, stages ...warehouse.Stage) (*warehouse.Summary, error) {
	started := env.Clock()
	w, err := warehouse.OpenWarehouse(dir, opts.Create)
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
	if err := warehouse.VerifyOutputs(ctx, tx.Dir, tx.Ledger, false); err != nil {
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
func commitRun(env warehouse.Env, tx *warehouse.Tx, command string, started time.Time, problems bool) (*warehouse.Summary, error) {
	sum := tx.Summary
	sum.TablesWritten = tx.Written()
	sum.SilentTrusts = silentTrusts(env, tx.Ledger, started)
	if sum.Started.IsZero() {
		sum.Started = started
	}
	sum.Finish(env.Clock())
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
	tx.Ledger.Runs = append(tx.Ledger.Runs, warehouse.RunEntry{
		ID: sum.RunID, Command: command, Started: sum.Started, Finished: sum.Finished,
		Summary: sum, ExitStatus: sum.ExitStatus, ProgramVers: env.Version,
	})
	if err := tx.Commit(); err != nil {
		if tx.Switched {
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
	return sum, sum.Problems()
}

// errCrash is returned by test hooks that simulate a crash: the generation
// is left as a crash would leave it.
var errCrash = errors.New("simulated crash")

// silentTrusts names trusts that have sent nothing for longer than the
// study's allowance (or never sent anything).
func silentTrusts(env warehouse.Env, l *warehouse.Ledger, now time.Time) []string {
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
