package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// RebuildWarehouse is `cpi rebuild`: it builds a new generation of the
// warehouse at dir from nothing but its archive and commits it, whatever
// state the current generation is in (a deleted partition, a changed
// table file, a missing or corrupt ledger: repairing those is its
// purpose). A damaged archive (an unreadable record, an export that does
// not hold the bytes received) stops it before anything is written,
// naming what is damaged.
//
// It replays every committed receipt in the order the files arrived, one
// original run at a time: the same bytes (from archive/<sha256>, checked
// against their hash first) under the same names, with the same arrival
// times, run ids and arrival order, so the ledger's files and ingest_files
// come out as they were, and each night's problem lists as that night
// wrote them. A data manager's accepts are replayed at their moment among
// the runs. Then every derived stage runs. Given the same study
// definition and program, the tables, ingest_files included, and the
// reports are byte-identical to those of the warehouse that received the
// files.
//
// Which receipts: with a readable ledger, exactly the ledger's (a record
// of a run attempt that crashed before committing is left out; a receipt
// the archive has no record of, from a warehouse older than the records,
// is taken from the ledger and its record written). Without a readable
// ledger, every record in the archive, but of each run id only its last
// attempt: a run id is reused only by the attempts after a crash, so the
// last attempt is the one that committed (or, for the latest run, the one
// that crashed last: its files were received and are taken as received).
//
// The run history of the old ledger is carried over when it is readable;
// the rebuild is recorded as run "rebuild". It takes the run lock and is
// crash-safe like any run. Problems in the data were reported on the
// nights they arrived: a rebuild that reproduces them exits 0.
func RebuildWarehouse(ctx context.Context, env warehouse.Env, dir string, opts RunOptions) (*warehouse.Summary, error) {
	started := env.Clock()
	w, err := openForRebuild(dir)
	if err != nil {
		return nil, err
	}
	if err := w.Lock(); err != nil {
		return nil, err
	}
	defer w.Unlock()
	old := w.ReadableLedger(env)
	plan, err := planRebuild(ctx, env, w, old)
	if err != nil {
		return nil, err
	}
	tx, err := w.BeginFresh(opts.Hooks)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*warehouse.Summary, error) {
		if !errors.Is(err, errCrash) {
			tx.Rollback()
		}
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	tx.Summary = warehouse.NewSummary(plan.runID)
	tx.Summary.Command = "rebuild"
	if old != nil {
		tx.Ledger.Runs = slices.Clone(old.Runs)
	}
	if err := tx.Step("rebuild:records"); err != nil {
		return fail(err)
	}
	for _, rec := range plan.backfill {
		if err := w.WriteArchiveRecord(rec, warehouse.ReceiptFileName(rec)); err != nil {
			return fail(err)
		}
	}
	for _, ev := range plan.events {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if ev.accept != nil {
			err = replayAccept(ctx, env, tx, *ev.accept)
		} else {
			err = replayRun(ctx, env, tx, ev.receipts)
		}
		if err != nil {
			return fail(err)
		}
	}
	if len(tx.Ledger.Files) > 0 {
		if err := ingest.WriteIngestFiles(ctx, env, tx); err != nil {
			return fail(err)
		}
	}
	if err := warehouse.RecordOutputs(ctx, env, tx, "ingest", warehouse.IngestOutputs, warehouse.InputsNow(env, tx.Ledger, nil)); err != nil {
		return fail(err)
	}
	for _, d := range DerivedStages() {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		tx.Summary.Rebuilt = append(tx.Summary.Rebuilt, warehouse.Rebuild{Stage: d.Name, Outputs: d.Outputs, Because: []string{"rebuild"}})
		if err := runRecorded(ctx, env, tx, d); err != nil {
			return fail(err)
		}
	}
	return commitRun(env, tx, "rebuild", started, false)
}

// openForRebuild opens a warehouse that has an archive, whatever its
// current generation looks like.
func openForRebuild(dir string) (*warehouse.Warehouse, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("warehouse %s: %w", dir, err)
	}
	info, err := os.Stat(filepath.Join(abs, "archive"))
	if err != nil || !info.IsDir() {
		return nil, fmt.Errorf("warehouse %s: no archive to rebuild from", dir)
	}
	return &warehouse.Warehouse{Dir: abs}, nil
}

// rebuildPlan is what a rebuild replays.
type rebuildPlan struct {
	events   []replayEvent
	backfill []warehouse.ArchiveRecord // receipts the archive had no record of
	runID    int64                     // the rebuild's own run id
}

// replayEvent is one original run's receipts, or one accept.
type replayEvent struct {
	receipts []warehouse.ArchiveRecord
	accept   *warehouse.ArchiveRecord
}

// planRebuild chooses the records to replay (see RebuildWarehouse), checks every
// export they name against its hash, and orders them: runs by id, each
// run's receipts by arrival; accepts at their moment before the first run
// that started after them.
func planRebuild(ctx context.Context, env warehouse.Env, w *warehouse.Warehouse, old *warehouse.Ledger) (*rebuildPlan, error) {
	recs, bad, err := w.ReadArchiveRecords()
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("rebuild: the archive is damaged (%s); nothing was changed", joinProblems(bad))
	}
	var receipts, accepts []warehouse.ArchiveRecord
	for _, r := range recs {
		if r.Kind == warehouse.RecordAccept {
			accepts = append(accepts, r)
		} else {
			receipts = append(receipts, r)
		}
	}
	// With a readable ledger, only the accepts it records are replayed: an
	// accept that crashed before its commit leaves a record in the archive
	// but none in the ledger.
	plan := &rebuildPlan{}
	if old != nil {
		accepts = slices.DeleteFunc(accepts, func(r warehouse.ArchiveRecord) bool {
			return !slices.ContainsFunc(old.Files, func(f *warehouse.FileEntry) bool {
				return f.SHA256 == r.SHA256 && f.Name == r.Name && f.Accepted != nil && f.Accepted.At.Equal(r.At)
			})
		})
	}
	if old != nil {
		receipts, plan.backfill = ledgerReceipts(w, old, receipts)
	} else {
		receipts = lastAttempts(receipts)
	}
	if len(receipts) == 0 {
		return nil, fmt.Errorf("rebuild: the archive of %s records no file received: nothing to rebuild from", w.Dir)
	}
	if err := checkArchived(ctx, w, append(slices.Clone(receipts), accepts...)); err != nil {
		return nil, err
	}
	byRun := map[int64][]warehouse.ArchiveRecord{}
	var runs []int64
	for _, r := range receipts {
		if _, ok := byRun[r.RunID]; !ok {
			runs = append(runs, r.RunID)
		}
		byRun[r.RunID] = append(byRun[r.RunID], r)
	}
	slices.Sort(runs)
	sort.SliceStable(accepts, func(i, j int) bool { return accepts[i].At.Before(accepts[j].At) })
	for _, id := range runs {
		rs := byRun[id]
		sortArrivals(rs)
		for len(accepts) > 0 && accepts[0].At.Before(rs[0].At) {
			plan.events = append(plan.events, replayEvent{accept: &accepts[0]})
			accepts = accepts[1:]
		}
		plan.events = append(plan.events, replayEvent{receipts: rs})
		plan.runID = max(plan.runID, id)
	}
	for i := range accepts {
		plan.events = append(plan.events, replayEvent{accept: &accepts[i]})
	}
	if old != nil {
		plan.runID = max(plan.runID, old.NextRunID()-1)
	}
	plan.runID++
	env.Logger().Info("rebuild: replaying the archive", "runs", len(runs), "receipts", len(receipts), "accepts", len(plan.events)-len(runs))
	return plan, nil
}

// sortArrivals orders one run's receipts as they arrived: by time, a new
// file before a duplicate of it (a duplicate is met after the first copy),
// then by arrival order.
func sortArrivals(rs []warehouse.ArchiveRecord) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if !a.At.Equal(b.At) {
			return a.At.Before(b.At)
		}
		if (a.Status == warehouse.ReceiptNew) != (b.Status == warehouse.ReceiptNew) {
			return a.Status == warehouse.ReceiptNew
		}
		return a.Seq < b.Seq
	})
}

// ledgerReceipts returns the records of the ledger's receipts, and the
// records to write for receipts the archive has no record of (taken from
// the ledger).
func ledgerReceipts(w *warehouse.Warehouse, l *warehouse.Ledger, recs []warehouse.ArchiveRecord) (keep, backfill []warehouse.ArchiveRecord) {
	receipts := l.Receipts
	if len(receipts) == 0 {
		// A ledger older than receipts: each file arrived once.
		for _, f := range l.Files {
			receipts = append(receipts, warehouse.Receipt{SHA256: f.SHA256, Name: f.Name, ReceivedAt: f.ReceivedAt, RunID: f.RunID, Status: warehouse.ReceiptNew})
		}
	}
	ix := warehouse.IndexReceipts(recs)
	for _, r := range receipts {
		if i := ix.Find(r); i >= 0 {
			keep = append(keep, recs[i])
			continue
		}
		rec := warehouse.ArchiveRecord{Kind: warehouse.RecordReceipt, SHA256: r.SHA256, Name: r.Name, At: r.ReceivedAt, RunID: r.RunID, Status: r.Status, Attempt: "ledger"}
		if info, err := os.Stat(w.ArchivePath(r.SHA256)); err == nil {
			rec.Size = info.Size()
		}
		if f := l.FileFor(r); f != nil && r.Status == warehouse.ReceiptNew {
			rec.Seq = f.Seq
		}
		keep = append(keep, rec)
		backfill = append(backfill, rec)
	}
	return keep, backfill
}

// lastAttempts keeps, of each run id, the records of its last attempt:
// the one whose latest receipt is the latest (attempts that tie are all
// kept).
func lastAttempts(recs []warehouse.ArchiveRecord) []warehouse.ArchiveRecord {
	latest := map[int64]time.Time{}
	for _, r := range recs {
		if r.At.After(latest[r.RunID]) {
			latest[r.RunID] = r.At
		}
	}
	last := map[int64]map[string]bool{}
	for _, r := range recs {
		if r.At.Equal(latest[r.RunID]) {
			if last[r.RunID] == nil {
				last[r.RunID] = map[string]bool{}
			}
			last[r.RunID][r.Attempt] = true
		}
	}
	var out []warehouse.ArchiveRecord
	for _, r := range recs {
		if last[r.RunID][r.Attempt] {
			out = append(out, r)
		}
	}
	return out
}

// checkArchived hashes every export the records name: a rebuild never
// reads bytes that are not the ones received.
func checkArchived(ctx context.Context, w *warehouse.Warehouse, recs []warehouse.ArchiveRecord) error {
	seen := map[string]bool{}
	var problems []string
	for _, r := range recs {
		if seen[r.SHA256] {
			continue
		}
		seen[r.SHA256] = true
		sha, _, err := warehouse.HashFile(ctx, w.ArchivePath(r.SHA256))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			problems = append(problems, fmt.Sprintf("archive/%s (%s) is missing", r.SHA256, r.Name))
		case err != nil:
			return fmt.Errorf("rebuild: check archive/%s: %w", r.SHA256, err)
		case sha != r.SHA256:
			problems = append(problems, fmt.Sprintf("archive/%s (%s) does not hold the bytes received", r.SHA256, r.Name))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("rebuild: the archive is damaged (%s); nothing was changed", joinProblems(problems))
	}
	return nil
}

// replayRun ingests one original run's receipts from the archive, as that
// run did: new files (in their arrival order, with their arrival times and
// run id) into the tables, duplicates (the same bytes under a name already
// taken, see Ledger.receivedAs) into the ledger's receipts, and the problem
// lists of the trusts that sent something. The run's clock is its first
// arrival, so the export-date guards judge as they did that night.
func replayRun(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, recs []warehouse.ArchiveRecord) error {
	if len(recs) > 0 {
		at := recs[0].At
		env.Now = func() time.Time { return at }
	}
	var plan []ingest.PlannedFile
	seen := map[string]bool{}
	for _, r := range recs {
		code, _ := ingest.NameProblem(env, r.Name)
		if tx.Ledger.ReceivedAs(r.SHA256, r.Name, code != "") != nil || seen[r.SHA256+"\x00"+r.Name] || r.Status == warehouse.StatusDuplicate {
			tx.Ledger.Receipts = append(tx.Ledger.Receipts, warehouse.Receipt{SHA256: r.SHA256, Name: r.Name, ReceivedAt: r.At, RunID: r.RunID, Status: warehouse.StatusDuplicate})
			tx.Summary.FilesSkipped++
			continue
		}
		seen[r.SHA256+"\x00"+r.Name] = true
		seq := r.Seq
		if seq == 0 {
			seq = tx.Ledger.NextSeq() + int64(len(plan))
		}
		pf := replayFile(env, r.SHA256, r.Name, seq, r.At, r.RunID)
		pf.Idx = len(plan)
		plan = append(plan, pf)
	}
	if len(plan) == 0 {
		return nil
	}
	fates := &ingest.FileFates{Listed: make([]warehouse.FileOutcome, len(plan)), Index: map[*warehouse.FileEntry]int{}}
	if err := ingest.RunIngestPlan(ctx, env, tx, plan, fates); err != nil {
		return err
	}
	return ingest.FinishIngest(ctx, env, tx, ingest.PlanTrusts(plan))
}

// replayFile is the plan to ingest an archived export under its original
// name, arrival time, order and run.
func replayFile(env warehouse.Env, sha, name string, seq int64, at time.Time, runID int64) ingest.PlannedFile {
	pf := ingest.PlannedFile{Name: name, Sha: sha, Seq: seq, Now: at, RunID: runID}
	if site, _, _, ok := env.Study.IdentifyFile(name); ok {
		pf.Trust = site.Trust
	}
	return pf
}

// replayAccept replays a data manager's accept of a held export, as `cpi
// accept` did it: the archived file read again with the holding guards off,
// made current, the reason and time recorded.
func replayAccept(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, rec warehouse.ArchiveRecord) error {
	i := slices.IndexFunc(tx.Ledger.Files, func(f *warehouse.FileEntry) bool {
		return f.SHA256 == rec.SHA256 && f.Name == rec.Name && f.Status == warehouse.StatusHeld
	})
	if i < 0 {
		// An accept that was tried again after a crash leaves one record
		// per attempt; the first replayed takes the file, and the others
		// find it no longer held.
		env.Logger().Warn("rebuild: an accept in the archive finds its export no longer held; skipped", "file", rec.Name)
		return nil
	}
	at := rec.At
	env.Now = func() time.Time { return at }
	return acceptEntry(ctx, env, tx, tx.Ledger.Files[i], rec.Reason, at, rec.RunID)
}

func joinProblems(ps []string) string {
	const show = 10
	if len(ps) > show {
		return fmt.Sprintf("%s; and %d more", joinProblems(ps[:show]), len(ps)-show)
	}
	out := ""
	for i, p := range ps {
		if i > 0 {
			out += "; "
		}
		out += p
	}
	return out
}
