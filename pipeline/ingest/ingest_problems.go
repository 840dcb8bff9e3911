package ingest

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// Problem lists and rejects describe, for each trust, its open files: its
// current exports, exports held, and files quarantined since the trust's
// last good export of that kind (for a file whose trust is not known, every
// quarantine). Each export's problems are kept in the generation when it
// is read (ledger/problems/<sha256>-<seq>.csv, written in bounded memory
// from the export's problemSet); problems/<TRUST>.csv and the trust's
// partition of rejects are rebuilt from the open files' lists whenever a
// file of the trust arrives or is accepted. A quiet night changes
// neither, and a late older export does not empty them.

// problemsPath is where an export's own problem list is kept.
func problemsPath(tx *warehouse.Tx, f *warehouse.FileEntry) string {
	return tx.Path("ledger", "problems", fmt.Sprintf("%s-%d.csv", f.SHA256, f.Seq))
}

// keepProblems writes the problems of an export read into the generation,
// as raw CSV (file, line, column, rule, severity, message). An export
// without problems leaves no file.
func keepProblems(tx *warehouse.Tx, f *warehouse.FileEntry, res *exportResult) error {
	path := problemsPath(tx, f)
	n := int64(len(res.head) + len(res.tail))
	if res.rows != nil {
		n += res.rows.Len()
	}
	if n == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("problem list of %s: %w", f.Name, err)
		}
		return nil
	}
	err := warehouse.WriteFileAtomic(path, warehouse.FileMode, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		err := res.eachProblem(func(p Problem) error {
			return cw.Write([]string{p.File, strconv.Itoa(p.Line), p.Column, p.Code, p.Severity, p.Message})
		})
		if err != nil {
			return err
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return fmt.Errorf("problem list of %s: %w", f.Name, err)
	}
	return nil
}

// eachKeptProblem reads back the problems kept for an export.
func eachKeptProblem(tx *warehouse.Tx, f *warehouse.FileEntry, fn func(Problem) error) error {
	fh, err := os.Open(problemsPath(tx, f))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("problem list of %s: %w", f.Name, err)
	}
	defer fh.Close()
	cr := csv.NewReader(fh)
	cr.FieldsPerRecord = 6
	cr.ReuseRecord = true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("the warehouse is damaged: problem list of %s: %w", f.Name, err)
		}
		line, err := strconv.Atoi(rec[1])
		if err != nil {
			return fmt.Errorf("the warehouse is damaged: problem list of %s: bad line number", f.Name)
		}
		p := Problem{File: rec[0], Line: line, Column: rec[2], Code: rec[3], Severity: rec[4], Message: rec[5]}
		if err := fn(p); err != nil {
			return err
		}
	}
}

// openFiles are the files a trust's problem list and rejects describe, in
// arrival order (trust "" : files whose trust is not known).
func openFiles(l *warehouse.Ledger, trust string) []*warehouse.FileEntry {
	var out []*warehouse.FileEntry
	for _, f := range l.Files {
		if f.Trust != trust {
			continue
		}
		switch f.Status {
		case warehouse.StatusCurrent, warehouse.StatusHeld:
			out = append(out, f)
		case warehouse.StatusQuarantined:
			if trust == "" || !resolvedLater(l, f) {
				out = append(out, f)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

// resolvedLater reports whether a quarantined file was followed by an
// export of the same trust (and kind, when known) that was read.
// A quarantine whose kind is not known (the file could not be read that
// far) is resolved only once exports of every kind have followed it.
func resolvedLater(l *warehouse.Ledger, q *warehouse.FileEntry) bool {
	later := map[string]bool{}
	for _, f := range l.Files {
		if f.Seq > q.Seq && f.Trust == q.Trust &&
			(f.Status == warehouse.StatusCurrent || f.Status == warehouse.StatusHeld || f.Status == warehouse.StatusSuperseded) {
			later[f.Kind] = true
		}
	}
	if q.Kind != "" {
		return later[q.Kind]
	}
	return later[schemas.KindParticipants] && later[schemas.KindFidelity]
}

// PlanTrusts are the trusts (orUnknown codes) that sent files in a plan.
func PlanTrusts(plan []PlannedFile) []string {
	seen := map[string]bool{}
	var out []string
	for _, pf := range plan {
		t := OrUnknown(pf.Trust)
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// FinishIngest writes what follows from the files read: the problem lists
// and rejects of the trusts given, ingest_files, and the lineage of
// ingest's tables. With no trust (nothing new), nothing is rewritten.
func FinishIngest(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, trusts []string) error {
	for _, trust := range trusts {
		if err := RefreshProblems(ctx, env, tx, trust); err != nil {
			return err
		}
	}
	noteHeld(tx)
	if len(trusts) == 0 {
		// Nothing was read: ingest's tables are as they were, and so is
		// what they were built from (a new study definition included).
		return nil
	}
	if err := WriteIngestFiles(ctx, env, tx); err != nil {
		return err
	}
	return warehouse.RecordOutputs(ctx, env, tx, "ingest", warehouse.IngestOutputs, warehouse.InputsNow(env, tx.Ledger, nil))
}

// noteHeld lists in the summary every export held and still waiting, so
// each night says so until a newer export supersedes it or it is accepted.
func noteHeld(tx *warehouse.Tx) {
	tx.Summary.Held, tx.Summary.FilesHeld = nil, 0
	for _, f := range tx.Ledger.Files {
		if f.Status == warehouse.StatusHeld {
			tx.Summary.Held = append(tx.Summary.Held, warehouse.FileOutcome{Name: f.Name, Trust: f.Trust, Kind: f.Kind, Status: warehouse.StatusHeld, Reason: f.Reason})
			tx.Summary.FilesHeld++
		}
	}
}

// RefreshProblems rewrites problems/<TRUST>.csv and the trust's rejects
// from its open files.
func RefreshProblems(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, trust string) error {
	code := trust
	if trust == "UNKNOWN" {
		code = ""
	}
	files := openFiles(tx.Ledger, code)
	if err := tx.Step("write problems/" + trust + ".csv"); err != nil {
		return err
	}
	if err := warehouse.CheckPathElem("trust code", trust); err != nil {
		return fmt.Errorf("problem list: %w", err)
	}
	err := warehouse.WriteFileAtomic(tx.Path("problems", trust+".csv"), warehouse.FileMode, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		if err := cw.Write([]string{"file", "line", "column", "rule", "severity", "message"}); err != nil {
			return err
		}
		for _, f := range files {
			err := eachKeptProblem(tx, f, func(p Problem) error {
				return cw.Write(problemRecord(p))
			})
			if err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return fmt.Errorf("problem list %s: %w", trust, err)
	}
	if code == "" {
		return nil
	}
	for _, kind := range []string{schemas.KindParticipants, schemas.KindFidelity} {
		if err := ctx.Err(); err != nil {
			return err
		}
		var of []*warehouse.FileEntry
		for _, f := range files {
			if f.Kind == kind {
				of = append(of, f)
			}
		}
		if err := writeRejects(env, tx, trust, kind, of); err != nil {
			return err
		}
	}
	return nil
}

// writeRejects writes the trust's rejects of one kind: the row errors of
// its open files of that kind, by SHA-256, line and column. A trust with no
// such file has no rejects file of that kind.
func writeRejects(env warehouse.Env, tx *warehouse.Tx, trust, kind string, files []*warehouse.FileEntry) error {
	const name = "rejects"
	if len(files) == 0 {
		err := os.Remove(tx.Path("tables", name, "trust="+trust, kind+".parquet"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rejects %s: %w", trust, err)
		}
		return nil
	}
	files = append([]*warehouse.FileEntry(nil), files...)
	sort.SliceStable(files, func(i, j int) bool { return files[i].SHA256 < files[j].SHA256 })
	tb := env.Study.Tables.Table(name)
	schema := warehouse.ArrowSchema(env, name, nil)
	tf, err := tx.CreateTableFile(schema, name, "trust", trust, kind)
	if err != nil {
		return err
	}
	rw := warehouse.NewRowWriter(schema, tf)
	col := func(c string) int { return warehouse.ColIndex(tb, c) }
	for _, f := range files {
		err := eachKeptProblem(tx, f, func(p Problem) error {
			if p.Severity != SeverityError {
				return nil
			}
			rw.Str(col("source_sha256"), f.SHA256)
			rw.Int32(col("source_line"), int32(p.Line), true)
			rw.Str(col("column"), p.Column)
			rw.Str(col("trust"), trust)
			rw.Str(col("source_name"), f.Name)
			rw.Str(col("kind"), kind)
			rw.Str(col("code"), p.Code)
			rw.Str(col("message"), p.Message)
			return rw.RowDone()
		})
		if err != nil {
			rw.Abort()
			return err
		}
	}
	return rw.Close()
}
