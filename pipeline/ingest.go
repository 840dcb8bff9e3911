package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/connectingpeople/cpi/schemas"
)

// Ingest returns the ingest stage for the given files and folders (DESIGN
// §6). First, in path order, every file is identified by SHA-256 (bytes
// already received, or met earlier in the run, are skipped as duplicate
// receipts) and given its arrival order. Then the trusts are ingested at
// the same time, each trust's files in arrival order: keep the raw bytes in
// the archive; find the trust from the file name and the kind from the
// header; read, map and validate every row; quarantine the whole file on a
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
// it, and a problem list per trust that sent something is written to
// problems/<TRUST>.csv.
//
// Errors that stop the stage are I/O failures and cancellation; problems in
// the data never are.
func Ingest(paths []string) Stage {
	return func(ctx context.Context, env Env, tx *Tx) error {
		first := len(tx.Ledger.Receipts)
		plan, err := planIngest(ctx, env, tx, paths)
		if err != nil {
			return err
		}
		problemsByTrust, err := runIngestPlan(ctx, env, tx, plan)
		if err != nil {
			return err
		}
		if err := archiveReceipts(ctx, tx, tx.Ledger.Receipts[first:]); err != nil {
			return err
		}
		if tx.Summary.FilesNew > 0 {
			if err := writeProblemLists(tx, problemsByTrust); err != nil {
				return err
			}
			if err := writeIngestFiles(ctx, env, tx); err != nil {
				return err
			}
		}
		return recordOutputs(ctx, env, tx, "ingest", ingestOutputs, inputsNow(env, tx.Ledger, nil))
	}
}

// ctxReader stops a long copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// plannedFile is a new export to read, in arrival order.
type plannedFile struct {
	path, name, sha string
	seq             int64
	trust           string // from the name; "" when it matches no trust
	now             time.Time
	runID           int64 // the run that received it; 0: this run (rebuild replays older runs)
}

// planIngest hashes every file in path order, records the ones already
// received (or met earlier in this run) as duplicate receipts, and gives
// the others their arrival order.
func planIngest(ctx context.Context, env Env, tx *Tx, paths []string) ([]plannedFile, error) {
	files, err := listExports(paths)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	seq := tx.Ledger.nextSeq()
	var plan []plannedFile
	for _, path := range files {
		name := filepath.Base(path)
		sha, _, err := hashFile(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("ingest %s: %w", name, err)
		}
		now := env.now()
		if prev := tx.Ledger.File(sha); prev != nil || seen[sha] {
			tx.Ledger.Receipts = append(tx.Ledger.Receipts, Receipt{SHA256: sha, Name: name, ReceivedAt: now, RunID: tx.Summary.RunID, Status: StatusDuplicate})
			tx.Summary.FilesSkipped++
			env.log().Info("skipped: already received", "file", name, "sha256", sha[:12])
			continue
		}
		seen[sha] = true
		pf := plannedFile{path: path, name: name, sha: sha, seq: seq, now: now}
		if site, _, _, ok := env.Study.IdentifyFile(name); ok {
			pf.trust = site.Trust
		}
		plan = append(plan, pf)
		seq++
	}
	return plan, nil
}

// runIngestPlan ingests the planned files: each trust's files in arrival
// order (a trust's newer export supersedes its older one), different trusts
// at the same time on every core. The outcome does not depend on the
// interleaving: a trust's tables, rejects and problems come only from its
// own files, and arrival order was fixed by the plan.
func runIngestPlan(ctx context.Context, env Env, tx *Tx, plan []plannedFile) (map[string][]Problem, error) {
	byTrust := map[string][]plannedFile{}
	var trusts []string
	for _, pf := range plan {
		key := orUnknown(pf.trust)
		if _, ok := byTrust[key]; !ok {
			trusts = append(trusts, key)
		}
		byTrust[key] = append(byTrust[key], pf)
	}
	var (
		mu       sync.Mutex // guards tx.Ledger, tx.Summary and problems
		problems = map[string][]Problem{}
		done     int
	)
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
					probs, err := ingestFile(ctx, env, tx, &mu, pf)
					if err != nil {
						errs <- fmt.Errorf("ingest %s: %w", pf.name, err)
						cancel()
						return
					}
					mu.Lock()
					problems[key] = append(problems[key], probs...)
					done++
					if env.Progress != nil {
						fmt.Fprintf(env.Progress, "\ringest %d/%d files", done, len(plan))
					}
					mu.Unlock()
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
	if env.Progress != nil && len(plan) > 0 {
		fmt.Fprintln(env.Progress)
	}
	if err := <-errs; err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The ledger lists files in arrival order whatever finished first.
	sort.SliceStable(tx.Ledger.Files, func(i, j int) bool { return tx.Ledger.Files[i].Seq < tx.Ledger.Files[j].Seq })
	return problems, nil
}

// listExports expands folders (recursively, hidden files and folders left
// out) into files, sorted by path so every run meets them in the same order.
func listExports(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		if !info.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if path != p && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
	}
	sort.Strings(out)
	return out, nil
}

func hashFile(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ingestFile handles one new export and returns its problems. mu guards
// the ledger and the summary, shared with the other trusts' workers.
func ingestFile(ctx context.Context, env Env, tx *Tx, mu *sync.Mutex, pf plannedFile) ([]Problem, error) {
	path, name, sha, now := pf.path, pf.name, pf.sha, pf.now
	runID := tx.Summary.RunID
	if pf.runID != 0 {
		runID = pf.runID
	}
	if err := tx.step("ingest:archive"); err != nil {
		return nil, err
	}
	if err := tx.w.Archive(ctx, path, sha); err != nil {
		return nil, err
	}
	entry := &FileEntry{SHA256: sha, Name: name, ReceivedAt: now, RunID: runID, Seq: pf.seq}
	var cur *FileEntry // the file this one replaces, if it becomes current
	// The export date is in the name and the kind in the header, so whether
	// the file will be current is known before its rows are read: only then
	// are its rows streamed into the tables.
	sinkFor := func(res *exportResult) (exportSink, error) {
		entry.Trust, entry.Kind, entry.ExportDate = res.trust, res.kind, res.exportDate
		mu.Lock()
		cur = tx.Ledger.Current(res.trust, res.kind)
		mu.Unlock()
		if cur != nil && !newer(entry, cur) {
			return nil, nil
		}
		if err := tx.step("ingest:tables"); err != nil {
			return nil, err
		}
		return newTableSink(env, tx, res, sha)
	}
	res, err := readExport(ctx, env, path, name, sinkFor, tx.Dir)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	entry.Trust, entry.Kind, entry.ExportDate = res.trust, res.kind, res.exportDate
	entry.RowsRead, entry.RowsAccepted, entry.RowsRejected = res.rowsRead, res.rowsAccepted, res.rowsRejected
	entry.Warnings = res.warnings
	tx.Ledger.Files = append(tx.Ledger.Files, entry)
	tx.Ledger.Receipts = append(tx.Ledger.Receipts, Receipt{SHA256: sha, Name: name, ReceivedAt: now, RunID: runID, Status: receiptNew})
	sum := tx.Summary
	sum.FilesNew++
	sum.Warnings += res.warnings
	ts := sum.trust(orUnknown(res.trust))
	ts.Files++
	log := env.log().With("file", name, "sha256", sha[:12])
	if res.quarantine != "" {
		entry.Status = StatusQuarantined
		entry.Reason = res.quarantine + ": " + res.quarantineMsg
		sum.FilesQuarantined++
		sum.RowsRejected += res.rowsRejected
		ts.Quarantined++
		ts.RowsRejected += res.rowsRejected
		log.Warn("quarantined", "trust", res.trust, "reason", res.quarantine, "detail", res.quarantineMsg)
		return res.problems, nil
	}
	sum.RowsAccepted += res.rowsAccepted
	sum.RowsRejected += res.rowsRejected
	ts.RowsAccepted += res.rowsAccepted
	ts.RowsRejected += res.rowsRejected
	if !res.wrote {
		entry.Status = StatusSuperseded
		entry.Reason = "superseded_on_arrival: an export of " + cur.ExportDate + " (" + cur.Name + ") is newer"
		sum.FilesSuperseded++
		log.Info("accepted but superseded on arrival", "trust", res.trust, "kind", res.kind, "rows_read", res.rowsRead, "rows_accepted", res.rowsAccepted, "rows_rejected", res.rowsRejected)
		return res.problems, nil
	}
	if cur != nil {
		cur.Status = StatusSuperseded
		cur.Reason = "superseded: " + name + " is newer"
		sum.FilesSuperseded++
	}
	entry.Status = StatusCurrent
	log.Info("accepted", "trust", res.trust, "kind", res.kind, "rows_read", res.rowsRead, "rows_accepted", res.rowsAccepted, "rows_rejected", res.rowsRejected, "warnings", res.warnings)
	return res.problems, nil
}

func orUnknown(trust string) string {
	if trust == "" {
		return "UNKNOWN"
	}
	return trust
}

// exportResult is what reading and validating one export found.
type exportResult struct {
	name       string
	trust      string
	kind       string
	exportDate string
	exportDay  time.Time

	rowsRead, rowsAccepted, rowsRejected int64
	warnings                             int
	problems                             []Problem // warnings, row errors, quarantine
	quarantine                           string    // quarantine code, "" when the file was read
	quarantineMsg                        string

	fields []schemas.Field
	wrote  bool // the rows went into the tables
}

// quarantineFile sets the whole export aside: nothing of it enters the
// tables, and the rows read so far (all of them, or those before the
// problem that stopped the reading) count as rejected.
func (r *exportResult) quarantineFile(code, msg string, line int, column string) {
	r.quarantine, r.quarantineMsg = code, msg
	r.problems = append(r.problems, Problem{File: r.name, Line: line, Column: column, Code: code, Severity: SeverityQuarantine, Message: msg})
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
func readExport(ctx context.Context, env Env, path, name string, sinkFor func(*exportResult) (exportSink, error), sortDir string) (*exportResult, error) {
	res, err := inspectExport(ctx, env, path, name, sinkFor, "")
	if errors.Is(err, errUnsorted) {
		env.log().Info("rows not in participant order: sorting them", "file", name)
		if sortDir == "" {
			sortDir = os.TempDir()
		}
		return inspectExport(ctx, env, path, name, sinkFor, sortDir)
	}
	return res, err
}

// inspectExport reads and validates one export: the whole of `cpi
// validate`, and the reading half of ingest, which passes sinkFor to have
// accepted rows written. Its error is an I/O failure, cancellation or
// errUnsorted (see readExport); problems with the data are in the result.
// Whatever the outcome, a sink it opened is either closed with every row
// or aborted. With sortDir set, rows are sorted (buffered), through a
// file there.
func inspectExport(ctx context.Context, env Env, path, name string, sinkFor func(*exportResult) (exportSink, error), sortDir string) (res *exportResult, err error) {
	res = &exportResult{name: name}
	site, day, _, ok := env.Study.IdentifyFile(name)
	if !ok {
		res.quarantineFile(QuarantineUnknownSite, "the file name matches no trust's export names (canonical: <TRUST>_<participants|fidelity>_<YYYYMMDD>.csv)", 0, "")
		return res, nil
	}
	res.trust = site.Trust
	if !day.IsZero() {
		res.exportDay = day
		res.exportDate = day.Format("2006-01-02")
	}
	canonHeaders := [][]string{fieldNames(env.Study.ExportFields(schemas.KindParticipants)), fieldNames(env.Study.ExportFields(schemas.KindFidelity))}
	rr, canonical, err := OpenExport(path, site, canonHeaders, ReadLimits{})
	if err != nil {
		var fe *FileError
		if errors.As(err, &fe) {
			res.quarantineFile(fe.Code, fe.Msg, fe.Line, columnLabel(fe.Column))
			return res, nil
		}
		return nil, err
	}
	defer rr.Close()
	h, probs, q := mapHeader(env.Study, site, canonical, rr.Header())
	for i := range probs {
		probs[i].File = name
	}
	if q != "" {
		res.problems = append(res.problems, probs[:len(probs)-1]...)
		last := probs[len(probs)-1]
		res.quarantineFile(q, last.Message, last.Line, last.Column)
		return res, nil
	}
	res.problems = append(res.problems, probs...)
	res.warnings += len(probs)
	res.kind = h.kind
	res.fields = h.fields
	rc := newRowChecker(env.Study, site, canonical, site.Trust, res.exportDay, h)
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
	acc := newAccumulator(env.Study, h, site.Trust, sink, sortDir)
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
			var fe *FileError
			if errors.As(err, &fe) {
				res.quarantineFile(fe.Code, fe.Msg, fe.Line, columnLabel(fe.Column))
				return res, nil
			}
			return nil, err
		}
		res.rowsRead++
		if col, rule, bad := rc.privacy(cells, line, df); bad {
			res.quarantineFile(QuarantinePrivacy+string(rule),
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
		res.quarantineFile(QuarantineNoRows, "the export has a header but no rows; the trust's previous export stays current", 0, "")
		return res, nil
	}
	rejected, accepted, err := acc.finish()
	if err != nil {
		return nil, err
	}
	for i := range rejected {
		rejected[i].File = name
	}
	res.problems = append(res.problems, rejected...)
	if accepted == 0 {
		// Every row rejected: like an empty export, it would empty the
		// trust's tables. Its problems stay listed; nothing is loaded.
		res.rowsRead = int64(acc.rows)
		res.quarantineFile(QuarantineNoAcceptedRows, "every row of the export was rejected (see the problems listed); the trust's previous export stays current", 0, "")
		return res, nil
	}
	res.rowsAccepted = int64(accepted)
	res.rowsRejected = res.rowsRead - res.rowsAccepted
	if got := int64(acc.rejected); got != res.rowsRejected {
		return nil, fmt.Errorf("row accounting: %d rows read, %d accepted, %d rejected", res.rowsRead, res.rowsAccepted, got)
	}
	if sink != nil {
		if err := sink.close(res.problems); err != nil {
			return nil, err
		}
		res.wrote = true
	}
	return res, nil
}

func fieldNames(fs []schemas.Field) []string {
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
