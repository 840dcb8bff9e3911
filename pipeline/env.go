// Package pipeline holds cpi's stages (ingest, score, fidelity, compare,
// reports), the warehouse they read and write, and the synthetic study
// generator. Stages are functions from tables to tables: each reads what
// earlier stages wrote and never re-parses raw exports.
package pipeline

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
	// Now is the clock; nil means time.Now. Only the ledger and the run
	// summary see it.
	Now func() time.Time

	// task counts the running stage's work for its progress line, for
	// code a stage shares with others (ingest's export reader); nil: not
	// counted.
	task *Task
}

func (e Env) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

func (e Env) log() *slog.Logger {
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
	held := ""
	if e.Held > 0 {
		held = fmt.Sprintf(", %d files held", e.Held)
	}
	return fmt.Sprintf("finished with problems: %d rows rejected, %d files quarantined%s, %d warnings", e.Rejected, e.Quarantined, held, e.Warnings)
}
