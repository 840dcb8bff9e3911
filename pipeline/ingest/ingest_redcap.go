package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/connectingpeople/cpi/pipeline/redcap"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// A REDCap records export (<STUDY>_redcap_<YYYYMMDD>.csv, see
// redcap.FileName) holds every trust's participants. Ingest splits it by
// data access group (redcap.Split) into one canonical participants export
// per trust with rows in it, named as that trust's canonical export of the
// REDCap export's date (<TRUST>_participants_<YYYYMMDD>.csv), archives
// each part, and plans the parts as exports in their own right: each goes
// through the same validation, privacy guard, superseding (a trust's part
// supersedes that trust's previous participants export; a trust with no
// rows in the REDCap export keeps its current one), row accounting
// (rows_read = rows_accepted + rows_rejected per part) and problem lists
// as any export. A part's bytes already received (the same REDCap export
// sent again, or a trust whose rows did not change under the same date)
// are a duplicate receipt. The REDCap export itself is archived too; a
// REDCap export that cannot be split is planned as it is, and reading it
// quarantines it with the split's code (see redcapQuarantine).

// planRedcap splits the archived REDCap export of candidate c into its
// trusts' parts and returns them planned from seq on (ok false: the export
// cannot be split, and is to be planned itself).
func planRedcap(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, c candidate, day time.Time, fates *FileFates, seq int64) (plan []PlannedFile, next int64, ok bool, err error) {
	parts, err := splitArchived(env.Study, tx.W.ArchivePath(c.sha))
	if err != nil {
		var se *redcap.SplitError
		if errors.As(err, &se) {
			return nil, seq, false, nil
		}
		return nil, seq, false, fmt.Errorf("split %s: %w", c.name, err)
	}
	log := env.Logger()
	log.Info("REDCap export split by data access group", "file", c.name, "parts", len(parts))
	export := &SplitExport{Kind: RecordSplitExport, SHA256: c.sha, Name: c.name}
	for _, p := range parts {
		sum := sha256.Sum256(p.CSV)
		export.Parts = append(export.Parts, hex.EncodeToString(sum[:]))
	}
	if err := writeSplitExport(tx.W, export); err != nil {
		return nil, seq, false, fmt.Errorf("split record of %s: %w", c.name, err)
	}
	for i, p := range parts {
		name := schemas.CanonicalFileName(p.Trust, schemas.KindParticipants, day)
		sha := export.Parts[i]
		idx := len(fates.Listed)
		fates.Listed = append(fates.Listed, warehouse.FileOutcome{})
		now := env.Clock()
		if prev := tx.Ledger.ReceivedAs(sha, name, false); prev != nil {
			tx.Ledger.Receipts = append(tx.Ledger.Receipts, warehouse.Receipt{SHA256: sha, Name: name, ReceivedAt: now, RunID: tx.Summary.RunID, Status: warehouse.StatusDuplicate})
			tx.Summary.FilesSkipped++
			fates.set(idx, warehouse.SkippedOutcome(name, prev))
			log.Info("skipped: part already received", "file", name, "from", c.name)
			continue
		}
		if err := archiveBytes(ctx, tx, p.CSV, sha); err != nil {
			return nil, seq, false, fmt.Errorf("archive part %s of %s: %w", p.Trust, c.name, err)
		}
		rec := &SplitRecord{Kind: RecordSplit, SHA256: sha, Name: name, Trust: p.Trust, SourceSHA256: c.sha, SourceName: c.name, Lines: p.Lines, Missing: p.Missing}
		if err := writeSplitRecord(tx.W, rec); err != nil {
			return nil, seq, false, fmt.Errorf("split record of part %s of %s: %w", p.Trust, c.name, err)
		}
		plan = append(plan, PlannedFile{Name: name, Sha: sha, Idx: idx, Seq: seq, Now: now, Trust: p.Trust})
		seq++
	}
	return plan, seq, true, nil
}

// splitArchived splits the REDCap export at path.
func splitArchived(s *schemas.Study, path string) ([]redcap.Part, error) {
	p, err := redcap.Build(s)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return redcap.Split(s, p, bytes.NewReader(b))
}

// archiveBytes archives b, whose SHA-256 is sha, through a temporary file.
func archiveBytes(ctx context.Context, tx *warehouse.Tx, b []byte, sha string) error {
	tmp, err := os.CreateTemp("", ".cpi-redcap-part-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return tx.W.Archive(ctx, tmp.Name(), sha)
}

// redcapQuarantine is why a REDCap export read as a file (one that could
// not be split, or `cpi validate` on one) is set aside: the split's code
// and message, and line and column.
func redcapQuarantine(s *schemas.Study, path string) (code, msg string, line int, column string, err error) {
	_, err = splitArchived(s, path)
	var se *redcap.SplitError
	if errors.As(err, &se) {
		return se.Code, se.Msg, se.Line, se.Column, nil
	}
	if err != nil {
		return "", "", 0, "", err
	}
	return CodeRedcapWhole, "a REDCap export is read by ingest, split by data access group into each trust's part; validate the parts, or ingest it", 0, "", nil
}

// CodeRedcapWhole quarantines a REDCap export read whole rather than
// split (cpi validate).
const CodeRedcapWhole = "redcap_not_split"

// validateRedcap is `cpi validate` of a REDCap export that can be split:
// each trust's part checked as ingest would check it, named as ingest names
// it (ok false: not a REDCap export, or one that cannot be split, which
// validateFile quarantines).
func validateRedcap(ctx context.Context, env warehouse.Env, path, file string) ([]FileCheck, bool, error) {
	day, ok := redcap.ParseFileName(env.Study, file)
	if !ok {
		return nil, false, nil
	}
	parts, err := splitArchived(env.Study, path)
	var se *redcap.SplitError
	if errors.As(err, &se) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var out []FileCheck
	for _, p := range parts {
		name := schemas.CanonicalFileName(p.Trust, schemas.KindParticipants, day)
		src := &SplitRecord{Kind: RecordSplit, Name: name, Trust: p.Trust, SourceName: file, Lines: p.Lines, Missing: p.Missing}
		c, err := validatePart(ctx, env, name, p.CSV, src)
		if err != nil {
			return nil, false, err
		}
		out = append(out, c)
	}
	return out, true, nil
}

func validatePart(ctx context.Context, env warehouse.Env, name string, b []byte, src *SplitRecord) (FileCheck, error) {
	tmp, err := os.CreateTemp("", ".cpi-redcap-part-*")
	if err != nil {
		return FileCheck{}, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return FileCheck{}, err
	}
	if err := tmp.Close(); err != nil {
		return FileCheck{}, err
	}
	return validateFile(ctx, env, tmp.Name(), name, src)
}

// WarnRedcapMissingCode counts, per column of a REDCap export's part, the
// cells that held one of the project's missing-data codes (study key
// redcap.missing_codes): loaded as blanks, never as values.
const WarnRedcapMissingCode = "redcap_missing_code"

// SplitRecord is the split's own record of one part of a REDCap export,
// kept read-only beside the archived part (archive/splits/<sha256>.json,
// the part's SHA-256): which REDCap export the part came from, the line in
// it of each of the part's rows, and the cells made blanks for a
// missing-data code. Ingest reads it whenever it reads the part, so `cpi
// rebuild`, which has only the archive, gives the same problem lists,
// rejects and source lines as the night the REDCap export arrived.
type SplitRecord struct {
	Kind         string `json:"kind"` // RecordSplit
	SHA256       string `json:"sha256"`
	Name         string `json:"name"`
	Trust        string `json:"trust"`
	SourceSHA256 string `json:"source_sha256"`
	SourceName   string `json:"source_name"`
	// Lines[i] is the REDCap export's line of the part's i-th data row.
	Lines   []int                 `json:"lines"`
	Missing []redcap.MissingCount `json:"missing,omitempty"`
}

// RecordSplit is a SplitRecord's kind.
const RecordSplit = "redcap_split"

// SplitsDir is where the split records are kept.
func SplitsDir(w *warehouse.Warehouse) string { return filepath.Join(w.Dir, "archive", "splits") }

func splitRecordPath(w *warehouse.Warehouse, sha string) string {
	return filepath.Join(SplitsDir(w), sha+".json")
}

// writeSplitRecord keeps the split's record of a part, read-only. A part's
// record already kept (the part's bytes came before, or a crashed run
// wrote it) is left as it is: it describes the part's first arrival.
func writeSplitRecord(w *warehouse.Warehouse, r *SplitRecord) error {
	return writeJSONOnce(splitRecordPath(w, r.SHA256), r)
}

// writeJSONOnce writes v as one line of JSON to path, read-only and
// atomically, unless path is already there (a record is written once).
func writeJSONOnce(path string, v any) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return warehouse.WriteFileAtomic(path, warehouse.ArchiveMode, func(out io.Writer) error {
		_, err := out.Write(append(b, '\n'))
		return err
	})
}

// ReadSplitRecord reads the split's record of the archived export sha
// (nil: the export is no part of a REDCap export). A record that cannot
// be read or does not describe sha is damage.
func ReadSplitRecord(w *warehouse.Warehouse, sha string) (*SplitRecord, error) {
	b, err := os.ReadFile(splitRecordPath(w, sha))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("split record of %s: %w", sha[:12], err)
	}
	r := &SplitRecord{}
	if err := json.Unmarshal(b, r); err != nil || r.Kind != RecordSplit || r.SHA256 != sha {
		return nil, fmt.Errorf("the archive is damaged: archive/splits/%s.json is no split record of that part", sha)
	}
	return r, nil
}

// SplitRecords reads every split record of the archive, by part SHA-256.
func SplitRecords(w *warehouse.Warehouse) (map[string]*SplitRecord, error) {
	entries, err := os.ReadDir(SplitsDir(w))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("split records: %w", err)
	}
	out := map[string]*SplitRecord{}
	for _, e := range entries {
		sha, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() || warehouse.IsTemp(e.Name()) || strings.HasSuffix(e.Name(), splitExportSuffix) {
			continue
		}
		r, err := ReadSplitRecord(w, sha)
		if err != nil {
			return nil, err
		}
		out[sha] = r
	}
	return out, nil
}

// line is the REDCap export's line of the part's n-th data row (1-based);
// 0 when the record does not know it.
func (r *SplitRecord) line(n int64) int {
	if n < 1 || n > int64(len(r.Lines)) {
		return 0
	}
	return r.Lines[n-1]
}

// missingProblems are the warnings of the cells made blanks: one per
// column, with the count, never a value.
func (r *SplitRecord) missingProblems() []Problem {
	var out []Problem
	for _, m := range r.Missing {
		out = append(out, Problem{File: r.SourceName, Line: 0, Column: m.Column, Code: WarnRedcapMissingCode, Severity: SeverityWarning,
			Message: fmt.Sprintf("%d cells held one of the REDCap project's missing-data codes (redcap.missing_codes): loaded as blanks", m.Cells)})
	}
	return out
}

// SplitExport is the split's record of a REDCap export itself, kept
// read-only beside its parts' records (archive/splits/<sha256>.export.json,
// the REDCap export's SHA-256): the parts it was split into, new or
// already received. Only the parts carry receipts; `cpi check` counts the
// REDCap export as received when its parts' receipts are in the ledger.
type SplitExport struct {
	Kind   string   `json:"kind"` // RecordSplitExport
	SHA256 string   `json:"sha256"`
	Name   string   `json:"name"`
	Parts  []string `json:"parts"` // the parts' SHA-256, in the study's trust order
}

// RecordSplitExport is a SplitExport's kind.
const RecordSplitExport = "redcap_export"

const splitExportSuffix = ".export.json"

func writeSplitExport(w *warehouse.Warehouse, r *SplitExport) error {
	return writeJSONOnce(filepath.Join(SplitsDir(w), r.SHA256+splitExportSuffix), r)
}

// SplitExports reads the records of every REDCap export split, by its
// SHA-256. A record that cannot be read is damage.
func SplitExports(w *warehouse.Warehouse) (map[string]*SplitExport, error) {
	entries, err := os.ReadDir(SplitsDir(w))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("split records: %w", err)
	}
	out := map[string]*SplitExport{}
	for _, e := range entries {
		sha, ok := strings.CutSuffix(e.Name(), splitExportSuffix)
		if !ok || e.IsDir() || warehouse.IsTemp(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(SplitsDir(w), e.Name()))
		if err != nil {
			return nil, fmt.Errorf("split records: %w", err)
		}
		r := &SplitExport{}
		if err := json.Unmarshal(b, r); err != nil || r.Kind != RecordSplitExport || r.SHA256 != sha {
			return nil, fmt.Errorf("the archive is damaged: archive/splits/%s is no record of a REDCap export split", e.Name())
		}
		out[sha] = r
	}
	return out, nil
}
