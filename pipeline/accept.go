package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// Accept returns the stage of `cpi accept`: the data manager's decision to
// make a held export current after all. file names the export (its name
// as received, or the first 12 or more hex digits of its SHA-256); reason
// is required and kept in the ledger with the time and run. The export is
// read again from the archive with the holding guards off; it becomes
// current unless a newer export has meanwhile become current (then the
// stage fails and nothing changes). The trust's problem list, rejects and
// ingest_files follow.
func Accept(file, reason string) warehouse.Stage {
	return func(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
		reason = strings.TrimSpace(reason)
		if reason == "" {
			return fmt.Errorf("accept: a reason is required (it is kept in the ledger)")
		}
		f, err := findHeld(tx.Ledger, file)
		if err != nil {
			return err
		}
		if err := tx.Step("accept:record"); err != nil {
			return err
		}
		// The archive keeps the decision too, so `cpi rebuild` replays it.
		at := env.Clock()
		if err := warehouse.ArchiveAccept(tx.W, f.SHA256, f.Name, reason, at, tx.Summary.RunID); err != nil {
			return err
		}
		return acceptEntry(ctx, env, tx, f, reason, at, tx.Summary.RunID)
	}
}

// acceptEntry reads the held export f again from the archive with the
// holding guards off and makes it current, recording the reason.
func acceptEntry(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, f *warehouse.FileEntry, reason string, at time.Time, runID int64) error {
	pf := ingest.PlannedFile{Accept: f, Name: f.Name, Sha: f.SHA256, Seq: f.Seq, Trust: f.Trust, Now: f.ReceivedAt, RunID: f.RunID}
	fates := &ingest.FileFates{Listed: make([]warehouse.FileOutcome, 1), Index: map[*warehouse.FileEntry]int{}}
	defer func() { tx.Summary.Files = append(tx.Summary.Files, fates.Outcomes()...) }()
	var mu sync.Mutex
	if err := ingest.IngestFile(ctx, env, tx, &mu, fates, pf); err != nil {
		return fmt.Errorf("accept %s: %w", f.Name, err)
	}
	if f.Status != warehouse.StatusCurrent {
		return fmt.Errorf("accept %s: it was read again but is %s (%s)", f.Name, f.Status, f.Reason)
	}
	f.Accepted = &warehouse.Acceptance{At: at.UTC(), RunID: runID, Reason: reason}
	f.Reason = "accepted: " + reason
	env.Logger().Info("accepted by the data manager", "file", f.Name, "trust", f.Trust, "kind", f.Kind)
	return ingest.FinishIngest(ctx, env, tx, []string{ingest.OrUnknown(f.Trust)})
}

// AcceptAll is `cpi accept`: Accept, then every later stage whose outputs
// are out of date, as `cpi run` does.
func AcceptAll(file, reason string) []warehouse.Stage {
	stages := []warehouse.Stage{Accept(file, reason)}
	for _, d := range DerivedStages() {
		stages = append(stages, Incremental(d))
	}
	return stages
}

// findHeld finds the held export a data manager names.
func findHeld(l *warehouse.Ledger, file string) (*warehouse.FileEntry, error) {
	name := filepath.Base(file)
	var held []string
	var match []*warehouse.FileEntry
	for _, f := range l.Files {
		if f.Status != warehouse.StatusHeld {
			continue
		}
		held = append(held, f.Name)
		if f.Name == name || (len(file) >= 12 && strings.HasPrefix(f.SHA256, strings.ToLower(file))) {
			match = append(match, f)
		}
	}
	switch {
	case len(match) == 1:
		return match[0], nil
	case len(match) > 1:
		return nil, fmt.Errorf("accept: %d held exports are named %s: give the SHA-256 of the one to accept (see ingest_files)", len(match), name)
	case len(held) == 0:
		return nil, fmt.Errorf("accept: no export is held, so there is nothing to accept")
	}
	return nil, fmt.Errorf("accept: %s is not a held export; held now: %s", name, strings.Join(held, ", "))
}
