package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File statuses in the ledger and the ingest_files table.
const (
	StatusCurrent     = "current"
	StatusSuperseded  = "superseded"
	StatusQuarantined = "quarantined"
	StatusDuplicate   = "duplicate"
)

// Ledger is the warehouse's record of every file received and every run. It
// lives in the generation (ledger/ledger.json), so it switches together with
// the tables it describes.
type Ledger struct {
	Files []*FileEntry `json:"files"`
	// Receipts records every time a file's bytes arrived, including the same
	// bytes again (status duplicate) under any name.
	Receipts []Receipt  `json:"receipts"`
	Runs     []RunEntry `json:"runs"`
	// DerivedWith is the study hash and program version under which the
	// derived tables (scores onwards) were last made.
	DerivedWith string `json:"derived_with,omitempty"`
}

// FileEntry is one distinct export: its bytes (SHA-256) under a name. The
// same bytes have a second entry only when the first was quarantined for
// its name alone (see Ledger.receivedAs), so the pair (sha256, name) is
// the key.
type FileEntry struct {
	SHA256       string    `json:"sha256"`
	Name         string    `json:"name"`
	Trust        string    `json:"trust,omitempty"`
	Kind         string    `json:"kind,omitempty"`
	ExportDate   string    `json:"export_date,omitempty"` // YYYY-MM-DD
	ReceivedAt   time.Time `json:"received_at"`
	RunID        int64     `json:"run_id"`
	Seq          int64     `json:"seq"` // arrival order, for superseding when export dates tie
	RowsRead     int64     `json:"rows_read"`
	RowsAccepted int64     `json:"rows_accepted"`
	RowsRejected int64     `json:"rows_rejected"`
	Status       string    `json:"status"`
	Reason       string    `json:"reason,omitempty"`
	Warnings     int       `json:"warnings,omitempty"`
}

// Receipt is one arrival of a file.
type Receipt struct {
	SHA256     string    `json:"sha256"`
	Name       string    `json:"name"`
	ReceivedAt time.Time `json:"received_at"`
	RunID      int64     `json:"run_id"`
	Status     string    `json:"status"` // new or duplicate
}

// RunEntry is one run of a command that changed the warehouse.
type RunEntry struct {
	ID          int64     `json:"id"`
	Command     string    `json:"command"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	Summary     *Summary  `json:"summary"`
	ExitStatus  int       `json:"exit_status"`
	ProgramVers string    `json:"program_version"`
}

func ledgerPath(genDir string) string { return filepath.Join(genDir, "ledger", "ledger.json") }

// ReadLedger reads the ledger of a generation (empty when there is none).
func ReadLedger(genDir string) (*Ledger, error) {
	l := &Ledger{}
	if genDir == "" {
		return l, nil
	}
	b, err := os.ReadFile(ledgerPath(genDir))
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	if err := json.Unmarshal(b, l); err != nil {
		return nil, fmt.Errorf("read ledger %s: %w", ledgerPath(genDir), err)
	}
	return l, nil
}

// write saves the ledger into the generation.
func (l *Ledger) write(tx *Tx) error {
	if err := tx.step("write ledger"); err != nil {
		return err
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	err = writeFileAtomic(ledgerPath(tx.Dir), fileMode, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	return nil
}

// File returns the first entry of a SHA-256 (the same bytes may have a
// second entry under another name: see receivedAs).
func (l *Ledger) File(sha string) *FileEntry {
	for _, f := range l.Files {
		if f.SHA256 == sha {
			return f
		}
	}
	return nil
}

// receivedAs finds the earlier receipt that makes bytes arriving under name
// a duplicate: an entry of the same bytes under the same name; or, when
// nameBad (the name alone would quarantine the file), any entry of the
// bytes; or an entry of the bytes that was not quarantined for its name. So
// bytes first quarantined as "TEWV_participants_20190131 (1).csv" are read
// again when they arrive under their proper name, and bytes received once
// under a good name are not read again under another.
func (l *Ledger) receivedAs(sha, name string, nameBad bool) *FileEntry {
	for _, f := range l.Files {
		if f.SHA256 == sha && (f.Name == name || nameBad || !f.quarantinedForName()) {
			return f
		}
	}
	return nil
}

// quarantinedForName reports whether the file was set aside for its name
// alone: the same bytes under another name may be fine.
func (f *FileEntry) quarantinedForName() bool {
	if f.Status != StatusQuarantined {
		return false
	}
	code, _, _ := strings.Cut(f.Reason, ":")
	return isNameQuarantine(code)
}

// Current returns the current file of a trust and kind, or nil.
func (l *Ledger) Current(trust, kind string) *FileEntry {
	for _, f := range l.Files {
		if f.Trust == trust && f.Kind == kind && f.Status == StatusCurrent {
			return f
		}
	}
	return nil
}

// NextRunID is the id of a new run.
func (l *Ledger) NextRunID() int64 {
	var max int64
	for _, r := range l.Runs {
		max = maxInt64(max, r.ID)
	}
	for _, f := range l.Files {
		max = maxInt64(max, f.RunID)
	}
	return max + 1
}

func (l *Ledger) nextSeq() int64 {
	var max int64
	for _, f := range l.Files {
		max = maxInt64(max, f.Seq)
	}
	return max + 1
}

// newer reports whether a supersedes b: a later export date, or the same
// (or no) date and a later arrival.
func newer(a, b *FileEntry) bool {
	if a.ExportDate != b.ExportDate && a.ExportDate != "" && b.ExportDate != "" {
		return a.ExportDate > b.ExportDate
	}
	return a.Seq > b.Seq
}

// LastReceived is when each trust last sent a file that was not a duplicate.
func (l *Ledger) LastReceived() map[string]time.Time {
	out := map[string]time.Time{}
	for _, f := range l.Files {
		if f.Trust != "" && f.ReceivedAt.After(out[f.Trust]) {
			out[f.Trust] = f.ReceivedAt
		}
	}
	return out
}

func maxInt64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
