package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/connectingpeople/cpi/pipeline/ingest/readers"
	"github.com/connectingpeople/cpi/pipeline/redcap"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// Ingest returns the ingest stage for the given files and folders (DESIGN
// §6). First the paths are planned (see planIngest): leftovers ignored,
// what is no regular file refused, every file hashed, bytes already
// received skipped as duplicate receipts (a file's identity is its bytes
// and its name: see Ledger.receivedAs), files still being written deferred
// to the next run, and the rest archived and given their arrival order.
// Then the trusts are ingested at the same time, each trust's files in
// arrival order, each read from its archived copy: find the trust from the
// file name and the kind from the header; quarantine the whole file for its
// name (unknown trust, an impossible or future export date), on a
// file-level failure, a direct identifier, or when no row is left
// (cumulative exports would otherwise empty the trust's tables); otherwise
// accept or reject each row (rows_read = rows_accepted + rows_rejected,
// checked). A file newer than its trust's current file of the same kind
// becomes current: its accepted rows are streamed, participant by
// participant, into that trust's partitions of participants and responses
// (or fidelity_ratings), and its rejects replace the trust's rejects of
// that kind; a participants export not in participant order is read again
// and sorted (its interviews held in a temporary file meanwhile: see
// rowSpill). The ledger records every file, ingest_files mirrors
// it, a problem list per trust that sent something is written to
// problems/<TRUST>.csv, and every file's fate goes to Summary.Files.
//
// Errors that stop the stage are I/O failures, cancellation and paths that
// overlap the warehouse (ErrWarehouseInInbox); problems in the data never
// are.
func Ingest(paths []string) warehouse.Stage {
	return func(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
		if err := CheckPaths(tx.W.Dir, paths); err != nil {
			return err
		}
		first := len(tx.Ledger.Receipts)
		fates := &FileFates{Index: map[*warehouse.FileEntry]int{}}
		defer func() { tx.Summary.Files = append(tx.Summary.Files, fates.Outcomes()...) }()
		plan, err := planIngest(ctx, env, tx, paths, fates)
		if err != nil {
			return err
		}
		if err := RunIngestPlan(ctx, env, tx, plan, fates); err != nil {
			return err
		}
		if err := warehouse.ArchiveReceipts(ctx, tx, tx.Ledger.Receipts[first:]); err != nil {
			return err
		}
		return FinishIngest(ctx, env, tx, PlanTrusts(plan))
	}
}

// FileFates collects each file's fate in this run for the summary: one per
// file listed (by listing order), then earlier exports superseded. Guarded
// by the ingest workers' mutex.
type FileFates struct {
	Listed []warehouse.FileOutcome
	extra  []warehouse.FileOutcome
	Index  map[*warehouse.FileEntry]int // entries made in this run -> listing index
}

func (f *FileFates) set(i int, o warehouse.FileOutcome) { f.Listed[i] = o }

// superseded records that entry is no longer current, because of name.
func (f *FileFates) superseded(entry *warehouse.FileEntry, reason string) {
	if i, ok := f.Index[entry]; ok {
		f.Listed[i].Status, f.Listed[i].Reason = warehouse.OutcomeSuperseded, reason
		return
	}
	f.extra = append(f.extra, warehouse.FileOutcome{Name: entry.Name, Trust: entry.Trust, Kind: entry.Kind, Status: warehouse.OutcomeSuperseded, Reason: reason})
}

func (f *FileFates) Outcomes() []warehouse.FileOutcome {
	var out []warehouse.FileOutcome
	for _, o := range f.Listed {
		if o.Status != "" {
			out = append(out, o)
		}
	}
	return append(out, f.extra...)
}

// PlannedFile is a new export to read, in arrival order; its bytes are
// already in the archive, and are read from there.
type PlannedFile struct {
	Accept    *warehouse.FileEntry // a held export to make current (cpi accept)
	Name, Sha string
	Idx       int // listing index, for its fate
	Seq       int64
	Trust     string // from the name; "" when it matches no trust
	Now       time.Time
	RunID     int64 // the run that received it; 0: this run (rebuild replays older runs)
}

// candidate is a file met in the paths, between its two looks.
type candidate struct {
	path, name string
	idx        int
	first      look
	sha        string
	size       int64
	nameBad    bool
}

// planIngest decides what this run reads. It lists the paths (leftovers
// ignored, what is no regular file refused), takes a first look at every
// file (size, modification time) and hashes it; records bytes already
// received (or met earlier in this run) as duplicate receipts (see
// Ledger.receivedAs: a file's identity is its bytes and its name); then,
// once, waits out the settling time and looks again: a file that changed,
// or is younger than the settling time, is deferred to the next run. The
// others are archived (the archive checks the bytes are still those
// hashed; if not, the file is deferred too) and given their arrival order.
// Only the archived copy is read afterwards.
func planIngest(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, paths []string, fates *FileFates) ([]PlannedFile, error) {
	listed, err := listExports(env.Study, paths)
	if err != nil {
		return nil, err
	}
	fates.Listed = make([]warehouse.FileOutcome, len(listed))
	log := env.Logger()
	var cands []candidate
	lookStart := time.Now()
	for i, lf := range listed {
		switch lf.status {
		case warehouse.OutcomeIgnored:
			fates.set(i, warehouse.FileOutcome{Name: lf.name, Status: warehouse.OutcomeIgnored, Reason: lf.reason})
			log.Info("ignored: "+lf.reason, "file", lf.name)
			continue
		case warehouse.OutcomeRefused:
			fates.set(i, warehouse.FileOutcome{Name: lf.name, Status: warehouse.OutcomeRefused, Reason: lf.reason})
			tx.Summary.Warnings++
			log.Warn("skipped: "+lf.reason, "file", lf.name)
			continue
		}
		first, err := lookAt(lf.path)
		if err != nil {
			return nil, fmt.Errorf("ingest %s: %w", lf.name, err)
		}
		cands = append(cands, candidate{path: lf.path, name: lf.name, idx: i, first: first})
	}
	firstLook := time.Now()
	for i := range cands {
		c := &cands[i]
		if c.sha, c.size, err = warehouse.HashFile(ctx, c.path); err != nil {
			return nil, fmt.Errorf("ingest %s: %w", c.name, err)
		}
		code, _ := NameProblem(env, c.name)
		c.nameBad = code != ""
	}
	goodName := map[string]string{} // sha -> a good name it has in this run
	for _, c := range cands {
		if _, ok := goodName[c.sha]; !ok && !c.nameBad {
			goodName[c.sha] = c.name
		}
	}
	seen := map[string][]candidate{} // sha -> new files with those bytes, earlier in this run
	var fresh []candidate
	for _, c := range cands {
		now := env.Clock()
		as := ""
		prev := tx.Ledger.ReceivedAs(c.sha, c.name, c.nameBad)
		if prev != nil {
			as = prev.Name
		}
		for _, e := range seen[c.sha] {
			if as == "" && (e.name == c.name || c.nameBad || !e.nameBad) {
				as = e.name
			}
		}
		if g, ok := goodName[c.sha]; as == "" && ok && c.nameBad {
			as = g // the same bytes are here under a good name too
		}
		if as != "" {
			tx.Ledger.Receipts = append(tx.Ledger.Receipts, warehouse.Receipt{SHA256: c.sha, Name: c.name, ReceivedAt: now, RunID: tx.Summary.RunID, Status: warehouse.StatusDuplicate})
			tx.Summary.FilesSkipped++
			o := warehouse.SkippedOutcome(c.name, prev)
			if prev == nil && as != c.name {
				o.Reason = "the same bytes as " + as + ", also in this run"
			}
			fates.set(c.idx, o)
			log.Info("skipped: already received", "file", c.name, "as", as, "sha256", c.sha[:12])
			continue
		}
		seen[c.sha] = append(seen[c.sha], c)
		fresh = append(fresh, c)
	}
	if len(fresh) == 0 {
		return nil, nil
	}
	// One wait for all the files, not one per file; none when every file
	// had already been left alone for the settling time when first looked
	// at (the second look, after hashing, and the archive's check of the
	// bytes still catch one that changed since).
	if !settledAt(fresh, lookStart, env.SettleTime) {
		wait := env.SettleTime - time.Since(firstLook)
		if wait > 0 {
			log.Info("waiting for new files to settle before the second look", "files", len(fresh), "seconds", wait.Round(time.Second).Seconds())
		}
		env.Pause(wait)
	}
	defer_ := func(c candidate, why string) {
		fates.set(c.idx, warehouse.FileOutcome{Name: c.name, Status: warehouse.OutcomeDeferred, Reason: why})
		log.Warn("deferred to the next run: "+why, "file", c.name)
	}
	seq := tx.Ledger.NextSeq()
	var plan []PlannedFile
	for _, c := range fresh {
		second, err := lookAt(c.path)
		if errors.Is(err, fs.ErrNotExist) {
			defer_(c, "removed while the run looked at it")
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ingest %s: %w", c.name, err)
		}
		if why := unsettled(c.first, second, c.size, time.Now(), env.SettleTime); why != "" {
			defer_(c, why)
			continue
		}
		if err := tx.Step("ingest:archive"); err != nil {
			return nil, err
		}
		if err := tx.W.Archive(ctx, c.path, c.sha); err != nil {
			if errors.Is(err, warehouse.ErrFileChanged) {
				defer_(c, "still being written: its bytes changed after they were hashed")
				continue
			}
			return nil, err
		}
		if day, ok := redcap.ParseFileName(env.Study, c.name); ok && !c.nameBad {
			parts, next, split, err := planRedcap(ctx, env, tx, c, day, fates, seq)
			if err != nil {
				return nil, err
			}
			if split {
				plan, seq = append(plan, parts...), next
				continue
			}
		}
		pf := PlannedFile{Name: c.name, Sha: c.sha, Idx: c.idx, Seq: seq, Now: env.Clock()}
		if site, _, _, ok := env.Study.IdentifyFile(c.name); ok {
			pf.Trust = site.Trust
		}
		plan = append(plan, pf)
		seq++
	}
	return plan, nil
}

// settledAt says whether every candidate's first look, taken after start,
// saw a modification time at least settle before start: each file had
// been left alone for the settling time before the run looked at it, so
// waiting it out again would tell nothing new.
func settledAt(cands []candidate, start time.Time, settle time.Duration) bool {
	for _, c := range cands {
		if c.first.mod.After(start.Add(-settle)) {
			return false
		}
	}
	return true
}

// RunIngestPlan ingests the planned files: each trust's files in arrival
// order (a trust's newer export supersedes its older one), different trusts
// at the same time on every core. The outcome does not depend on the
// interleaving: a trust's tables, rejects and problems come only from its
// own files, and arrival order was fixed by the plan.
func RunIngestPlan(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, plan []PlannedFile, fates *FileFates) error {
	byTrust := map[string][]PlannedFile{}
	var trusts []string
	for _, pf := range plan {
		key := OrUnknown(pf.Trust)
		if _, ok := byTrust[key]; !ok {
			trusts = append(trusts, key)
		}
		byTrust[key] = append(byTrust[key], pf)
	}
	var mu sync.Mutex // guards tx.Ledger, tx.Summary and fates
	task := env.Progress.Start("ingest", "files", int64(len(plan))).Counting("rows")
	defer task.Done()
	env.Task = task
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan string)
	errs := make(chan error, len(trusts))
	workers := min(runtime.GOMAXPROCS(0), len(trusts))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range jobs {
				for _, pf := range byTrust[key] {
					if err := IngestFile(ctx, env, tx, &mu, fates, pf); err != nil {
						errs <- fmt.Errorf("ingest %s: %w", pf.Name, err)
						cancel()
						return
					}
					task.Add(1)
				}
			}
		}()
	}
	for _, key := range trusts {
		select {
		case jobs <- key:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The ledger lists files in arrival order whatever finished first.
	sort.SliceStable(tx.Ledger.Files, func(i, j int) bool { return tx.Ledger.Files[i].Seq < tx.Ledger.Files[j].Seq })
	return nil
}

// IngestFile handles one new export, already archived (or, with
// pf.accept, a held one to make current). Its rows are read from the
// archived copy, never from the path it arrived at: what is loaded is what
// the archive and source_sha256 hold. mu guards the ledger, the summary
// and fates, shared with the other trusts' workers. The export's problems
// are kept in the generation (see keepProblems).
func IngestFile(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, mu *sync.Mutex, fates *FileFates, pf PlannedFile) error {
	name, sha, now := pf.Name, pf.Sha, pf.Now
	runID := tx.Summary.RunID
	if pf.RunID != 0 {
		runID = pf.RunID
	}
	entry := &warehouse.FileEntry{SHA256: sha, Name: name, ReceivedAt: now, RunID: runID, Seq: pf.Seq}
	if pf.Accept != nil {
		entry = pf.Accept
	}
	var cur *warehouse.FileEntry // the file this one replaces, if it becomes current
	// The export date is in the name and the kind in the header, so whether
	// the file will be current is known before its rows are read: only then
	// are its rows streamed into the tables.
	sinkFor := func(res *exportResult) (exportSink, error) {
		entry.Trust, entry.Kind, entry.ExportDate = res.trust, res.kind, res.exportDate
		mu.Lock()
		cur = tx.Ledger.Current(res.trust, res.kind)
		mu.Unlock()
		if cur != nil && !warehouse.Newer(entry, cur) {
			return nil, nil
		}
		if err := tx.Step("ingest:tables"); err != nil {
			return nil, err
		}
		if pf.Accept == nil {
			res.holdIf = func(res *exportResult) (string, string) { return holdReason(env.Study, res, cur) }
		}
		return newTableSink(env, tx, res, sha)
	}
	src, err := ReadSplitRecord(tx.W, sha)
	if err != nil {
		return err
	}
	res, err := readExport(ctx, env, tx.W.ArchivePath(sha), name, src, sinkFor, tx.Dir)
	defer res.close()
	if err != nil {
		return err
	}
	if err := keepProblems(tx, entry, res); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	entry.Trust, entry.Kind, entry.ExportDate = res.trust, res.kind, res.exportDate
	entry.RowsRead, entry.RowsAccepted, entry.RowsRejected = res.rowsRead, res.rowsAccepted, res.rowsRejected
	entry.Units = res.units
	entry.Warnings = res.warnings
	sum := tx.Summary
	ts := sum.Trust(OrUnknown(res.trust))
	if pf.Accept == nil {
		tx.Ledger.Files = append(tx.Ledger.Files, entry)
		tx.Ledger.Receipts = append(tx.Ledger.Receipts, warehouse.Receipt{SHA256: sha, Name: name, ReceivedAt: now, RunID: runID, Status: warehouse.ReceiptNew})
		sum.FilesNew++
		sum.Warnings += res.warnings
		ts.Files++
	}
	fates.Index[entry] = pf.Idx
	fate := warehouse.FileOutcome{Name: name, Trust: res.trust, Kind: res.kind}
	log := env.Logger().With("file", name, "sha256", sha[:12])
	if res.quarantine != "" {
		entry.Status = warehouse.StatusQuarantined
		entry.Reason = res.quarantine + ": " + res.quarantineMsg
		sum.FilesQuarantined++
		sum.RowsRejected += res.rowsRejected
		ts.Quarantined++
		ts.RowsRejected += res.rowsRejected
		fate.Status, fate.Reason = warehouse.OutcomeQuarantined, entry.Reason
		fates.set(pf.Idx, fate)
		log.Warn("quarantined", "trust", res.trust, "reason", res.quarantine, "detail", res.quarantineMsg)
		return nil
	}
	sum.RowsAccepted += res.rowsAccepted
	sum.RowsRejected += res.rowsRejected
	ts.RowsAccepted += res.rowsAccepted
	ts.RowsRejected += res.rowsRejected
	if res.held != "" {
		entry.Status = warehouse.StatusHeld
		entry.Reason = res.held + ": " + res.heldMsg
		fate.Status, fate.Reason = warehouse.OutcomeHeld, entry.Reason
		fates.set(pf.Idx, fate)
		log.Warn("held: the trust's previous export stays current until a newer export arrives or `cpi accept` takes this one", "trust", res.trust, "kind", res.kind, "reason", res.held, "detail", res.heldMsg)
		return nil
	}
	if !res.wrote {
		if pf.Accept != nil {
			return fmt.Errorf("%s can no longer become current: a newer export (%s) is current", name, cur.Name)
		}
		entry.Status = warehouse.StatusSuperseded
		entry.Reason = "superseded_on_arrival: an export of " + cur.ExportDate + " (" + cur.Name + ") is newer"
		sum.FilesSuperseded++
		fate.Status, fate.Reason = warehouse.OutcomeSuperseded, entry.Reason
		fates.set(pf.Idx, fate)
		log.Info("accepted but superseded on arrival", "trust", res.trust, "kind", res.kind, "rows_read", res.rowsRead, "rows_accepted", res.rowsAccepted, "rows_rejected", res.rowsRejected)
		return nil
	}
	if cur != nil {
		cur.Status = warehouse.StatusSuperseded
		cur.Reason = "superseded: " + name + " is newer"
		sum.FilesSuperseded++
		fates.superseded(cur, cur.Reason)
	}
	// Held exports older than the new current one are superseded with it.
	for _, f := range tx.Ledger.Files {
		if f != entry && f.Status == warehouse.StatusHeld && f.Trust == entry.Trust && f.Kind == entry.Kind && warehouse.Newer(entry, f) {
			f.Status = warehouse.StatusSuperseded
			f.Reason = "superseded: " + name + " is newer (it had been held)"
			sum.FilesSuperseded++
			fates.superseded(f, f.Reason)
		}
	}
	entry.Status = warehouse.StatusCurrent
	fate.Status, fate.Reason = warehouse.OutcomeNew, warehouse.CurrentReason(cur)
	if pf.Accept != nil {
		fate.Reason = "accepted by the data manager; " + fate.Reason
	}
	fates.set(pf.Idx, fate)
	log.Info("accepted", "trust", res.trust, "kind", res.kind, "rows_read", res.rowsRead, "rows_accepted", res.rowsAccepted, "rows_rejected", res.rowsRejected, "warnings", res.warnings)
	return nil
}

// holdReason says whether an export that would become current is to be
// held back instead: more of its rows were rejected than the study allows,
// or it has lost more of the participants (or ratings) of the trust's
// current export than the study allows (a mostly rejected export has lost
// them too: the rejects are the clearer reason). The messages give counts, never
// values.
func holdReason(s *schemas.Study, res *exportResult, cur *warehouse.FileEntry) (string, string) {
	g := s.Ingest
	if res.rowsRead > 0 && g.HoldRejected >= 0 && float64(res.rowsRejected) > g.HoldRejected*float64(res.rowsRead) {
		return HoldRejectedRows, fmt.Sprintf("%d of its %d rows were rejected (%.1f%%), more than the study allows (%.1f%%)",
			res.rowsRejected, res.rowsRead, 100*float64(res.rowsRejected)/float64(res.rowsRead), 100*g.HoldRejected)
	}
	if cur != nil && cur.Units > 0 && g.HoldLoss >= 0 {
		lost := cur.Units - res.units
		if float64(lost) > g.HoldLoss*float64(cur.Units) {
			unit := "participants"
			if res.kind == schemas.KindFidelity {
				unit = "ratings"
			}
			return HoldLostUnits, fmt.Sprintf("the export has %d %s, the current one (%s) %d: %.1f%% lost, more than the study allows (%.1f%%)",
				res.units, unit, cur.Name, cur.Units, 100*float64(lost)/float64(cur.Units), 100*g.HoldLoss)
		}
	}
	return "", ""
}

// Reasons an export is held.
const (
	HoldLostUnits    = "held_lost_participants"
	HoldRejectedRows = "held_rejected_rows"
)

func OrUnknown(trust string) string {
	if trust == "" {
		return "UNKNOWN"
	}
	return trust
}

// exportResult is what reading and validating one export found.
type exportResult struct {
	name string
	// problemFile is the file its problems name: the export, or for a
	// part of a REDCap export that REDCap export.
	problemFile string
	trust       string
	kind        string
	exportDate  string
	exportDay   time.Time

	rowsRead, rowsAccepted, rowsRejected int64
	units                                int64 // participants (ratings) accepted
	warnings                             int
	// The problems found, in this order: head (the header's), rows (row
	// errors, sorted by line; nil when the rows' problems do not count,
	// as in a file quarantined while it was read), tail (a quarantine).
	head          []Problem
	rows          *problemSet
	tail          []Problem
	quarantine    string // quarantine code, "" when the file was read
	quarantineMsg string
	// holdIf, set by the sink's opener, says whether an export read in full
	// is to be held back instead of becoming current (code "" : no).
	holdIf        func(*exportResult) (code, msg string)
	held, heldMsg string

	fields []schemas.Field
	wrote  bool // the rows went into the tables
}

// quarantineFile sets the whole export aside: nothing of it enters the
// tables, and the rows read so far (all of them, or those before the
// problem that stopped the reading) count as rejected.
func (r *exportResult) quarantineFile(code, msg string, line int, column string) {
	r.quarantine, r.quarantineMsg = code, msg
	r.tail = append(r.tail, Problem{File: r.problemFile, Line: line, Column: column, Code: code, Severity: SeverityQuarantine, Message: msg})
	// Nothing of a quarantined file enters the tables: every row read counts
	// as rejected.
	r.rowsRejected = r.rowsRead
	r.rowsAccepted = 0
	r.wrote = false
}

// readExport reads and checks one export, streaming accepted rows into the
// sink that sinkFor opens (nil sinkFor, or a nil sink: check only). An
// export not in participant order is read a second time and sorted, its
// interviews held meanwhile in a temporary file in sortDir ("": TMPDIR).
// Row problems beyond a few thousand wait in a temporary file there too.
// The caller closes the result.
func readExport(ctx context.Context, env warehouse.Env, path, name string, src *SplitRecord, sinkFor func(*exportResult) (exportSink, error), tmpDir string) (*exportResult, error) {
	res, err := inspectExport(ctx, env, path, name, src, sinkFor, tmpDir, false)
	if errors.Is(err, errUnsorted) {
		env.Logger().Info("rows not in participant order: sorting them", "file", name)
		return inspectExport(ctx, env, path, name, src, sinkFor, tmpDir, true)
	}
	return res, err
}

// close releases the temporary file of the result's problems.
func (r *exportResult) close() {
	if r != nil && r.rows != nil {
		r.rows.Close()
	}
}

// eachProblem calls fn with every problem of the export, in the order of
// its problem list.
func (r *exportResult) eachProblem(fn func(Problem) error) error {
	for _, p := range r.head {
		if err := fn(p); err != nil {
			return err
		}
	}
	if r.rows != nil {
		err := r.rows.Each(func(p Problem) error {
			p.File = r.problemFile
			return fn(p)
		})
		if err != nil {
			return err
		}
	}
	for _, p := range r.tail {
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// inspectExport reads and validates one export: the whole of `cpi
// validate`, and the reading half of ingest, which passes sinkFor to have
// accepted rows written. Its error is an I/O failure, cancellation or
// errUnsorted (see readExport); problems with the data are in the result.
// Whatever the outcome, a sink it opened is either closed with every row
// or aborted. With sorted set, rows are sorted (buffered), through a
// file in tmpDir ("": TMPDIR). A part of a REDCap export (src not nil) is
// read as any export, but its problems name the REDCap export and its
// lines, its rows carry their lines in the REDCap export, and the cells
// the split made blanks for a missing-data code are counted per column.
func inspectExport(ctx context.Context, env warehouse.Env, path, name string, src *SplitRecord, sinkFor func(*exportResult) (exportSink, error), tmpDir string, sorted bool) (res *exportResult, err error) {
	res = &exportResult{name: name, problemFile: name}
	if src != nil {
		res.problemFile = src.SourceName
	}
	rowProbs := NewProblemSet(tmpDir)
	defer func() {
		if err != nil || res == nil || res.rows == nil {
			rowProbs.Close()
		}
	}()
	site, day, _, ok := env.Study.IdentifyFile(name)
	if ok {
		res.trust = site.Trust
		if !day.IsZero() {
			res.exportDay = day
			res.exportDate = day.Format("2006-01-02")
		}
	} else if site, _ = env.Study.BadExportDate(name); site != nil {
		res.trust = site.Trust
	}
	if code, msg := NameProblem(env, name); code != "" {
		res.quarantineFile(code, msg, 0, "")
		return res, nil
	}
	if _, ok := redcap.ParseFileName(env.Study, name); ok {
		code, msg, line, col, err := redcapQuarantine(env.Study, path)
		if err != nil {
			return nil, err
		}
		res.quarantineFile(code, msg, line, col)
		return res, nil
	}
	canonHeaders := [][]string{FieldNames(env.Study.ExportFields(schemas.KindParticipants)), FieldNames(env.Study.ExportFields(schemas.KindFidelity))}
	rr, canonical, err := readers.OpenExport(path, site, canonHeaders, readers.ReadLimits{})
	if err != nil {
		var fe *readers.FileError
		if errors.As(err, &fe) {
			res.quarantineFile(fe.Code, fe.Msg, fe.Line, columnLabel(fe.Column))
			return res, nil
		}
		return nil, err
	}
	defer rr.Close()
	h, probs, q := MapHeader(env.Study, site, canonical, rr.Header())
	for i := range probs {
		probs[i].File = res.problemFile
	}
	if q != "" {
		res.head = append(res.head, probs[:len(probs)-1]...)
		last := probs[len(probs)-1]
		res.quarantineFile(q, last.Message, last.Line, last.Column)
		return res, nil
	}
	res.head = append(res.head, probs...)
	res.warnings += len(probs)
	if src != nil {
		mp := src.missingProblems()
		res.head = append(res.head, mp...)
		res.warnings += len(mp)
	}
	res.kind = h.kind
	res.fields = h.fields
	rc := NewRowChecker(env.Study, site, canonical, site.Trust, res.exportDay, h)
	var sink exportSink
	if sinkFor != nil {
		if sink, err = sinkFor(res); err != nil {
			return nil, err
		}
	}
	defer func() {
		if sink != nil && (err != nil || !res.wrote) {
			sink.abort()
		}
	}()
	df, _ := rr.(dateFormatter)
	var p parsedRow
	sortDir := ""
	if sorted {
		sortDir = tmpDir
		if sortDir == "" {
			sortDir = os.TempDir()
		}
	}
	acc := newAccumulator(env.Study, h, site.Trust, sink, sortDir, rowProbs)
	defer acc.close()
	for {
		if res.rowsRead%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		cells, line, err := rr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var fe *readers.FileError
			if errors.As(err, &fe) {
				l := fe.Line
				if src != nil && l > 1 {
					l = src.line(res.rowsRead + 1)
				}
				res.quarantineFile(fe.Code, fe.Msg, l, columnLabel(fe.Column))
				return res, nil
			}
			return nil, err
		}
		res.rowsRead++
		if src != nil {
			line = src.line(res.rowsRead)
		}
		if res.rowsRead%1024 == 0 {
			env.Task.AddSub(1024)
		}
		if col, rule, bad := rc.Privacy(cells, line, df); bad {
			res.quarantineFile(warehouse.QuarantinePrivacy+string(rule),
				fmt.Sprintf("a cell looks like a direct identifier (%s) in %s: exports must be anonymised", rule, columnName(h, col)), line, columnName(h, col))
			return res, nil
		}
		rc.check(cells, line, &p)
		if err := acc.add(&p); err != nil {
			return nil, err
		}
	}
	if res.rowsRead == 0 {
		// Exports are cumulative: one without rows would empty the trust's
		// tables. Almost surely a mistake, so it is set aside and the
		// trust's previous export stays current.
		res.quarantineFile(warehouse.QuarantineNoRows, "the export has a header but no rows; the trust's previous export stays current", 0, "")
		return res, nil
	}
	accepted, err := acc.finish()
	if err != nil {
		return nil, err
	}
	res.rows = rowProbs
	res.units = int64(acc.units)
	if accepted == 0 {
		// Every row rejected: like an empty export, it would empty the
		// trust's tables. Its problems stay listed; nothing is loaded.
		res.rowsRead = int64(acc.rows)
		res.quarantineFile(warehouse.QuarantineNoAcceptedRows, "every row of the export was rejected (see the problems listed); the trust's previous export stays current", 0, "")
		return res, nil
	}
	res.rowsAccepted = int64(accepted)
	res.rowsRejected = res.rowsRead - res.rowsAccepted
	if got := int64(acc.rejected); got != res.rowsRejected {
		return nil, fmt.Errorf("row accounting: %d rows read, %d accepted, %d rejected", res.rowsRead, res.rowsAccepted, got)
	}
	if sink != nil && res.holdIf != nil {
		if code, msg := res.holdIf(res); code != "" {
			res.held, res.heldMsg = code, msg
			return res, nil // the deferred abort drops what the sink wrote
		}
	}
	if sink != nil {
		if err := sink.close(); err != nil {
			return nil, err
		}
		res.wrote = true
	}
	return res, nil
}

func FieldNames(fs []schemas.Field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}

func columnLabel(col int) string {
	if col <= 0 {
		return ""
	}
	return fmt.Sprintf("column %d", col)
}

// columnName names an export column by its canonical name when known.
func columnName(h *header, col int) string {
	if col < len(h.names) {
		for _, f := range h.fields {
			if f.Name == h.names[col] {
				return f.Name
			}
		}
	}
	return fmt.Sprintf("column %d", col+1)
}
