package warehouse

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
	// StatusHeld is an export that would have become current but failed a
	// guard (participants lost, rows rejected): the previous export stays
	// current until a newer one arrives or `cpi accept` takes it.
	StatusHeld = "held"
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
	// Outputs records every stage output of the generation: its files and
	// what it was built from (see lineage.go). Nil in a ledger written
	// before lineage was kept.
	Outputs map[string]*OutputRecord `json:"outputs,omitempty"`
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
	// Units are the participants (ratings, for fidelity) accepted: what the
	// next export of the trust is compared with.
	Units int64 `json:"units,omitempty"`
	// Accepted records a held export taken by `cpi accept`.
	Accepted *Acceptance `json:"accepted,omitempty"`
}

// Acceptance is the data manager's decision to make a held export current.
type Acceptance struct {
	At     time.Time `json:"at"`
	RunID  int64     `json:"run_id"`
	Reason string    `json:"reason"`
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

func LedgerPath(genDir string) string { return filepath.Join(genDir, "ledger", "ledger.json") }

// ReadLedger reads the ledger of a generation; genDir "" (no generation
// yet) gives an empty ledger. A committed generation always has one, so a
// missing or unreadable ledger is damage, never an empty history.
func ReadLedger(genDir string) (*Ledger, error) {
	l := &Ledger{}
	if genDir == "" {
		return l, nil
	}
	b, err := os.ReadFile(LedgerPath(genDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the warehouse is damaged: its ledger %s is missing; nothing was changed (restore it, or run `cpi rebuild`)", LedgerPath(genDir))
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	if err := json.Unmarshal(b, l); err != nil {
		return nil, fmt.Errorf("the warehouse is damaged: its ledger %s cannot be read (%v); nothing was changed (restore it, or run `cpi rebuild`)", LedgerPath(genDir), err)
	}
	return l, nil
}

// write saves the ledger into the generation.
func (l *Ledger) write(tx *Tx) error {
	if err := tx.Step("write ledger"); err != nil {
		return err
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	err = WriteFileAtomic(LedgerPath(tx.Dir), FileMode, func(w io.Writer) error {
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
// FileFor returns the entry a receipt of status new made: the same bytes,
// name, run and arrival (the same bytes may have entries under other
// names), or nil.
func (l *Ledger) FileFor(r Receipt) *FileEntry {
	for _, f := range l.Files {
		if f.SHA256 == r.SHA256 && f.Name == r.Name && f.RunID == r.RunID && f.ReceivedAt.Equal(r.ReceivedAt) {
			return f
		}
	}
	return nil
}

func (l *Ledger) File(sha string) *FileEntry {
	for _, f := range l.Files {
		if f.SHA256 == sha {
			return f
		}
	}
	return nil
}

// ReceivedAs finds the earlier receipt that makes bytes arriving under name
// a duplicate: an entry of the same bytes under the same name; or, when
// nameBad (the name alone would quarantine the file), any entry of the
// bytes; or an entry of the bytes that was not quarantined for its name. So
// bytes first quarantined as "TEWV_participants_20190131 (1).csv" are read
// again when they arrive under their proper name, and bytes received once
// under a good name are not read again under another.
func (l *Ledger) ReceivedAs(sha, name string, nameBad bool) *FileEntry {
	for _, f := range l.Files {
		if !nameBad && f.quarantinedFor(QuarantineFutureDate) {
			continue // its date has come: the same file is read now
		}
		if f.SHA256 == sha && (f.Name == name || nameBad || !f.quarantinedForName()) {
			return f
		}
	}
	return nil
}

// quarantinedFor reports whether the file was quarantined with code.
func (f *FileEntry) quarantinedFor(code string) bool {
	c, _, _ := strings.Cut(f.Reason, ":")
	return f.Status == StatusQuarantined && c == code
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
	for _, r := range l.Receipts {
		max = maxInt64(max, r.RunID)
	}
	return max + 1
}

func (l *Ledger) NextSeq() int64 {
	var max int64
	for _, f := range l.Files {
		max = maxInt64(max, f.Seq)
	}
	return max + 1
}

// Newer reports whether a supersedes b: a later export date, or the same
// (or no) date and a later arrival.
func Newer(a, b *FileEntry) bool {
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

// OpenCurrent opens the warehouse at dir for reading: its folder, the
// committed generation ("" when nothing is committed yet) and that
// generation's ledger.
func OpenCurrent(dir string) (*Warehouse, string, *Ledger, error) {
	wh, err := OpenWarehouse(dir, false)
	if err != nil {
		return nil, "", nil, err
	}
	gen, err := wh.CurrentDir()
	if err != nil {
		return nil, "", nil, err
	}
	l, err := ReadLedger(gen)
	if err != nil {
		return nil, "", nil, err
	}
	return wh, gen, l, nil
}

// Quarantine codes decided by ingest (readers add their own FileError codes).
const (
	QuarantineUnknownSite    = "unknown_site"
	QuarantineFutureDate     = "future_export_date" // the name's export date is after the run's date (+ the study's allowance)
	QuarantineBadDate        = "bad_export_date"    // the name's export date is no calendar date
	QuarantineUnknownKind    = "unknown_kind"
	QuarantineMissingColumns = "missing_columns"
	QuarantineNoRows         = "no_rows"
	QuarantineNoAcceptedRows = "no_accepted_rows"
	QuarantinePrivacy        = "privacy_" // + the rule: privacy_nhs_number, …
)

// isNameQuarantine reports whether a quarantine code comes from the file's
// name alone.
func isNameQuarantine(code string) bool {
	switch code {
	case QuarantineUnknownSite, QuarantineBadDate, QuarantineFutureDate:
		return true
	}
	return false
}
