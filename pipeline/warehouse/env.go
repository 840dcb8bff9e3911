// Package pipeline holds cpi's stages (ingest, score, fidelity, compare,
// reports), the warehouse they read and write, and the synthetic study
// generator. Stages are functions from tables to tables: each reads what
// earlier stages wrote and never re-parses raw exports.
package warehouse

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/connectingpeople/cpi/schemas"
)

// Env is what every stage is given: the study, a logger, the program
// version, and where to draw progress (nil: no progress).
type Env struct {
	Study    *schemas.Study
	Log      *slog.Logger
	Version  string
	Progress *Progress
	// Now is the clock; nil means time.Now. The ledger, the run summary and
	// the export-date checks see it; file modification times are compared
	// with the real time, as the file system sets them.
	Now func() time.Time
	// SettleTime is how long an export must have been left alone before
	// ingest takes it (the study's ingest.settle_seconds, which cmd/cpi
	// passes here): same size and modification time over two looks this
	// far apart, that time at least this old. Zero takes files as they are,
	// but one modified in the future.
	SettleTime time.Duration
	// Sleep waits between ingest's two looks at the files; nil means
	// time.Sleep. Tests pass their own to change a file in between.
	Sleep func(time.Duration)

	// Task counts the running stage's work for its progress line, for
	// code a stage shares with others (ingest's export reader); nil: not
	// counted.
	Task *Task
}

func (e Env) Pause(d time.Duration) {
	if e.Sleep != nil {
		e.Sleep(d)
		return
	}
	if d > 0 {
		time.Sleep(d)
	}
}

func (e Env) Clock() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

func (e Env) Logger() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.New(slog.DiscardHandler)
}

// ProblemsError says a command finished but found problems: rows rejected,
// files quarantined or held (exit status 3).
type ProblemsError struct {
	Rejected    int64
	Quarantined int
	Held        int
	Warnings    int
}

func (e *ProblemsError) Error() string {
	msg := fmt.Sprintf("finished with problems: %d rows rejected, %d files quarantined, %d warnings", e.Rejected, e.Quarantined, e.Warnings)
	if e.Held > 0 {
		msg += fmt.Sprintf("; %d exports held (see the summary; `cpi accept` takes one)", e.Held)
	}
	return msg
}
