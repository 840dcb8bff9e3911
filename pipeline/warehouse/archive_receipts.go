package warehouse

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The archive describes itself: besides the bytes of every export
// (archive/<sha256>), it keeps one small read-only record per arrival of a
// file, duplicates included, and one per data manager's accept:
//
//	W/archive/receipts/<received_at>-<run_id>-<seq>-<sha12>-<h8>.json
//	W/archive/receipts/<accepted_at>-accept-<sha12>.json
//
// A receipt record holds what the ledger's receipt and file entry say of
// the arrival (original name, arrival time, run, arrival order, size,
// hash), so `cpi rebuild` can reproduce the tables from the archive alone.
// Records are written before the run's generation commits, so a run that
// crashed may leave records of files it never committed; each run attempt
// marks its records with a random attempt id (see replayReceipts for how
// rebuild tells the committed attempt from abandoned ones). h8 is the start
// of the record's own hash: two records never share a name unless they
// are the same bytes, so writing one again is harmless.

// Kinds of archive records.
const (
	RecordReceipt = "receipt"
	RecordAccept  = "accept"
)

// ReceiptNew is a receipt's status when the bytes were new to the warehouse.
const ReceiptNew = "new"

// ArchiveRecord is one record of the archive: an arrival of a file
// (Kind receipt) or a data manager's accept of a held export (Kind accept).
type ArchiveRecord struct {
	Kind   string `json:"kind"`
	SHA256 string `json:"sha256"`
	// Name is the file's name as received.
	Name string `json:"name"`
	Size int64  `json:"size"`
	// At is when the file arrived, or when it was accepted.
	At    time.Time `json:"at"`
	RunID int64     `json:"run_id,omitempty"`
	// Seq is the file's arrival order in the ledger (status new); 0 for a
	// duplicate.
	Seq     int64  `json:"seq,omitempty"`
	Status  string `json:"status,omitempty"`  // receipt: new or duplicate
	Attempt string `json:"attempt,omitempty"` // receipt: the run attempt that wrote it
	Reason  string `json:"reason,omitempty"`  // accept: the data manager's reason

	File string // the record's file name, when read from the archive
}

func (w *Warehouse) ReceiptsDir() string { return filepath.Join(w.Dir, "archive", "receipts") }

// recordTime is a record's time in its file name: sortable, UTC.
func recordTime(t time.Time) string { return t.UTC().Format("20060102T150405.000000000Z") }

// newAttemptID is a random id for the records of one run attempt.
func newAttemptID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// WriteArchiveRecord writes a record into archive/receipts, read-only. A
// record of the same name is the same bytes (the name carries their hash,
// or for an accept the file and moment), so it is left as it is.
func (w *Warehouse) WriteArchiveRecord(rec ArchiveRecord, name func(body []byte) string) error {
	body, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("archive record: %w", err)
	}
	body = append(body, '\n')
	path := filepath.Join(w.ReceiptsDir(), name(body))
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	err = WriteFileAtomic(path, ArchiveMode, func(out io.Writer) error {
		_, err := out.Write(body)
		return err
	})
	if err != nil {
		return fmt.Errorf("archive record %s: %w", filepath.Base(path), err)
	}
	return nil
}

func ReceiptFileName(rec ArchiveRecord) func([]byte) string {
	return func(body []byte) string {
		h := sha256.Sum256(body)
		return fmt.Sprintf("%s-%d-%d-%s-%s.json", recordTime(rec.At), rec.RunID, rec.Seq, ShortSHA(rec.SHA256), hex.EncodeToString(h[:4]))
	}
}

// ArchiveReceipts writes the archive's record of each receipt (new files
// and duplicates) of this run attempt; the files' bytes are already in the
// archive. It runs before the generation commits.
func ArchiveReceipts(ctx context.Context, tx *Tx, receipts []Receipt) error {
	if len(receipts) == 0 {
		return nil
	}
	if err := tx.Step("ingest:receipts"); err != nil {
		return err
	}
	if tx.attempt == "" {
		tx.attempt = newAttemptID()
	}
	for _, r := range receipts {
		if err := ctx.Err(); err != nil {
			return err
		}
		info, err := os.Stat(tx.W.ArchivePath(r.SHA256))
		if err != nil {
			return fmt.Errorf("receipt of %s: %w", r.Name, err)
		}
		rec := ArchiveRecord{Kind: RecordReceipt, SHA256: r.SHA256, Name: r.Name, Size: info.Size(), At: r.ReceivedAt,
			RunID: r.RunID, Status: r.Status, Attempt: tx.attempt}
		if r.Status == ReceiptNew {
			if f := tx.Ledger.FileFor(r); f != nil {
				rec.Seq = f.Seq
			}
		}
		if err := tx.W.WriteArchiveRecord(rec, ReceiptFileName(rec)); err != nil {
			return err
		}
	}
	// The records and the exports archived by this run must outlast a
	// crash once the generation that names them is current.
	for _, d := range []string{tx.W.ReceiptsDir(), filepath.Join(tx.W.Dir, "archive")} {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("archive receipts: %w", err)
		}
	}
	return nil
}

// ArchiveAccept records in the archive that the data manager accepted the
// held export sha (received as name) at the given moment, with their
// reason. `cpi accept` writes it before its generation commits, and `cpi
// rebuild` replays it, in time order among the receipts, through
// replayAccept.
func ArchiveAccept(w *Warehouse, sha, name, reason string, at time.Time, runID int64) error {
	info, err := os.Stat(w.ArchivePath(sha))
	if err != nil {
		return fmt.Errorf("accept %s: the export is not in the archive: %w", name, err)
	}
	rec := ArchiveRecord{Kind: RecordAccept, SHA256: sha, Name: name, Size: info.Size(), At: at.UTC(), RunID: runID, Reason: reason}
	err = w.WriteArchiveRecord(rec, func([]byte) string {
		return fmt.Sprintf("%s-accept-%s.json", recordTime(rec.At), ShortSHA(sha))
	})
	if err != nil {
		return err
	}
	return syncDir(w.ReceiptsDir())
}

// ReadArchiveRecords reads every record of the archive, in file-name
// order. Unreadable records are returned as problems, naming the file.
func (w *Warehouse) ReadArchiveRecords() ([]ArchiveRecord, []string, error) {
	entries, err := os.ReadDir(w.ReceiptsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read archive records: %w", err)
	}
	var recs []ArchiveRecord
	var problems []string
	for _, e := range entries {
		if e.IsDir() || IsTemp(e.Name()) || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		rel := "archive/receipts/" + e.Name()
		b, err := os.ReadFile(filepath.Join(w.ReceiptsDir(), e.Name()))
		if err != nil {
			return nil, nil, fmt.Errorf("read archive record %s: %w", e.Name(), err)
		}
		var rec ArchiveRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			problems = append(problems, rel+" cannot be read: "+err.Error())
			continue
		}
		if len(rec.SHA256) != 64 || rec.Name == "" || rec.At.IsZero() || (rec.Kind != RecordReceipt && rec.Kind != RecordAccept) {
			problems = append(problems, rel+" is not a complete receipt or accept record")
			continue
		}
		rec.File = e.Name()
		recs = append(recs, rec)
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].File < recs[j].File })
	return recs, problems, nil
}

// receiptIndex finds the record of a ledger receipt: the same bytes under
// the same name, in the same run, at the same moment.
type receiptIndex map[string]int

func receiptKey(sha, name string, runID int64, at time.Time) string {
	return fmt.Sprintf("%s\x00%s\x00%d\x00%s", sha, name, runID, at.UTC().Format(time.RFC3339Nano))
}

func IndexReceipts(recs []ArchiveRecord) receiptIndex {
	ix := receiptIndex{}
	for i, r := range recs {
		if r.Kind != RecordReceipt {
			continue
		}
		if _, ok := ix[receiptKey(r.SHA256, r.Name, r.RunID, r.At)]; !ok {
			ix[receiptKey(r.SHA256, r.Name, r.RunID, r.At)] = i
		}
	}
	return ix
}

// Find returns the index of the record of r, or -1.
func (ix receiptIndex) Find(r Receipt) int {
	if i, ok := ix[receiptKey(r.SHA256, r.Name, r.RunID, r.ReceivedAt)]; ok {
		return i
	}
	return -1
}
