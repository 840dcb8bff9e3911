package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Accept returns the stage of `cpi accept`: the data manager's decision to
// make a held export current after all. file names the export (its name
// as received, or the first 12 or more hex digits of its SHA-256); reason
// is required and kept in the ledger with the time and run. The export is
// read again from the archive with the holding guards off; it becomes
// current unless a newer export has meanwhile become current (then the
// stage fails and nothing changes). The trust's problem list, rejects and
// ingest_files follow.
func Accept(file, reason string) Stage {
	return func(ctx context.Context, env Env, tx *Tx) error {
		reason = strings.TrimSpace(reason)
		if reason == "" {
			return fmt.Errorf("accept: a reason is required (it is kept in the ledger)")
		}
		f, err := findHeld(tx.Ledger, file)
		if err != nil {
			return err
		}
		if err := tx.step("accept:record"); err != nil {
			return err
		}
		// The archive keeps the decision too, so `cpi rebuild` replays it.
		at := env.Clock()
		if err := archiveAccept(tx.w, f.SHA256, f.Name, reason, at, tx.Summary.RunID); err != nil {
			return err
		}
		return acceptEntry(ctx, env, tx, f, reason, at, tx.Summary.RunID)
	}
}

// acceptEntry reads the held export f again from the archive with the
// holding guards off and makes it current, recording the reason.
func acceptEntry(ctx context.Context, env Env, tx *Tx, f *FileEntry, reason string, at time.Time, runID int64) error {
	pf := plannedFile{accept: f, name: f.Name, sha: f.SHA256, seq: f.Seq, trust: f.Trust, now: f.ReceivedAt, runID: f.RunID}
	fates := &fileFates{listed: make([]FileOutcome, 1), index: map[*FileEntry]int{}}
	defer func() { tx.Summary.Files = append(tx.Summary.Files, fates.outcomes()...) }()
	var mu sync.Mutex
	if err := ingestFile(ctx, env, tx, &mu, fates, pf); err != nil {
		return fmt.Errorf("accept %s: %w", f.Name, err)
	}
	if f.Status != StatusCurrent {
		return fmt.Errorf("accept %s: it was read again but is %s (%s)", f.Name, f.Status, f.Reason)
	}
	f.Accepted = &Acceptance{At: at.UTC(), RunID: runID, Reason: reason}
	f.Reason = "accepted: " + reason
	env.Logger().Info("accepted by the data manager", "file", f.Name, "trust", f.Trust, "kind", f.Kind)
	return finishIngest(ctx, env, tx, []string{orUnknown(f.Trust)})
}

// AcceptAll is `cpi accept`: Accept, then every later stage whose outputs
// are out of date, as `cpi run` does.
func AcceptAll(file, reason string) []Stage {
	stages := []Stage{Accept(file, reason)}
	for _, d := range DerivedStages() {
		stages = append(stages, Incremental(d))
	}
	return stages
}

// findHeld finds the held export a data manager names.
func findHeld(l *Ledger, file string) (*FileEntry, error) {
	name := filepath.Base(file)
	var held []string
	var match []*FileEntry
	for _, f := range l.Files {
		if f.Status != StatusHeld {
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
