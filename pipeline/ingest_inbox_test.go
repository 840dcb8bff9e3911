package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// stepHook runs fn at the first write step of the given name.
type stepHook struct {
	name string
	fn   func()
	done bool
}

func (h *stepHook) Step(name string) error {
	if name == h.name && !h.done {
		h.done = true
		h.fn()
	}
	return nil
}

// appendRows adds canonical participants rows to the end of an export.
func appendRows(t *testing.T, env warehouse.Env, path string, rows ...map[string]string) {
	t.Helper()
	names := ingest.FieldNames(env.Study.ExportFields(schemas.KindParticipants))
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, r := range rows {
		cells := make([]string, len(names))
		for i, n := range names {
			cells[i] = r[n]
		}
		if _, err := f.WriteString(strings.Join(cells, ",") + "\n"); err != nil {
			t.Fatal(err)
		}
	}
}

func ledgerOf(t *testing.T, wh string) *warehouse.Ledger {
	t.Helper()
	w, err := warehouse.OpenWarehouse(wh, false)
	if err != nil {
		t.Fatal(err)
	}
	gen, _ := w.CurrentDir()
	l, err := warehouse.ReadLedger(gen)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// outcomes maps each file of a summary to "status" or "status: reason".
func outcomes(sum *warehouse.Summary) map[string]string {
	out := map[string]string{}
	for _, f := range sum.Files {
		out[f.Name] = f.Status
	}
	return out
}

// TestIngestReadsTheArchivedCopy: rows appended to the inbox file after it
// was hashed and archived (here while its header is being read) are not
// loaded: the rows come from the archive, which source_sha256 names.
func TestIngestReadsTheArchivedCopy(t *testing.T) {
	env := ingestTestEnv(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "w")
	var rows []map[string]string
	for i := 1; i <= 2000; i++ { // well past the reader's 64 KiB buffer
		rows = append(rows, ingestTestRow(fmt.Sprintf("P%05d", i), "TEWV-01", "baseline", "2018-03-01", nil))
	}
	p := ingestTestCSV(t, dir, "TEWV_participants_20190301.csv", env, schemas.KindParticipants, rows)
	sha := fileSHA(t, p)
	hook := &stepHook{name: "ingest:tables", fn: func() {
		appendRows(t, env, p, ingestTestRow("P99999", "TEWV-02", "baseline", "2018-03-01", nil))
	}}
	_, err := RunStages(context.Background(), env, wh, "ingest", RunOptions{Create: true, Hooks: hook}, ingest.Ingest([]string{p}))
	if err != nil || !hook.done {
		t.Fatalf("ingest: %v (hook ran: %v)", err, hook.done)
	}
	ids := ingestTestStrings(t, wh, "participants", "study_id")
	if len(ids) != 2000 || slices.Contains(ids, "TEWV-P99999") {
		t.Errorf("%d participants loaded (P99999 among them: %v), want the 2000 archived", len(ids), slices.Contains(ids, "TEWV-P99999"))
	}
	for _, s := range ingestTestStrings(t, wh, "responses", "source_sha256") {
		if s != sha {
			t.Fatalf("responses name %s, want the archived %s", s[:12], sha[:12])
		}
	}
	l := ledgerOf(t, wh)
	if len(l.Files) != 1 || l.Files[0].SHA256 != sha || l.Files[0].RowsRead != 2000 {
		t.Errorf("ledger %+v, want one file of 2000 rows", l.Files)
	}
	if got := fileSHA(t, filepath.Join(wh, "archive", sha)); got != sha {
		t.Errorf("archive holds %s", got[:12])
	}
}

// TestIngestDefersFilesStillBeingWritten: a file that grows between the
// two looks, one modified in the future or within the settling time, and
// one whose bytes change after they were hashed are left for the next run
// with a warning, not loaded, not a problem (no exit 3); the wait is one
// for all files.
func TestIngestDefersFilesStillBeingWritten(t *testing.T) {
	env := ingestTestEnv(t)
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox")
	os.MkdirAll(inbox, 0o750)
	wh := filepath.Join(dir, "w")
	row := func(pid string) []map[string]string {
		return []map[string]string{ingestTestRow(pid, "TEWV-01", "baseline", "2018-03-01", nil)}
	}
	growing := ingestTestCSV(t, inbox, "TEWV_participants_20190301.csv", env, schemas.KindParticipants, row("P00001"))
	future := ingestTestCSV(t, inbox, "BDCT_participants_20190301.csv", env, schemas.KindParticipants, []map[string]string{ingestTestRow("P00001", "BDCT-01", "baseline", "2018-03-01", nil)})
	if err := os.Chtimes(future, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var slept []time.Duration
	env.Sleep = func(d time.Duration) {
		slept = append(slept, d)
		appendRows(t, env, growing, ingestTestRow("P00002", "TEWV-02", "baseline", "2018-03-01", nil))
	}
	sum, err := RunStages(context.Background(), env, wh, "run", RunOptions{Create: true}, RunAll(inbox)...)
	if err != nil {
		t.Fatalf("a night with files still being written: %v, want no problem", err)
	}
	got := outcomes(sum)
	if got["TEWV_participants_20190301.csv"] != warehouse.OutcomeDeferred || got["BDCT_participants_20190301.csv"] != warehouse.OutcomeDeferred || sum.FilesNew != 0 || len(slept) != 1 {
		t.Fatalf("outcomes %v, files new %d, slept %v: want both deferred after one wait", sum.Files, sum.FilesNew, slept)
	}
	if l := ledgerOf(t, wh); len(l.Files) != 0 {
		t.Errorf("ledger %+v, want nothing received", l.Files)
	}
	if entries, _ := os.ReadDir(filepath.Join(wh, "archive")); len(entries) != 0 {
		t.Errorf("archive holds %d files, want none", len(entries))
	}

	// Within the settling time: deferred; the one wait is the settling time.
	env.Sleep = func(d time.Duration) { slept = append(slept, d) }
	env.SettleTime = time.Hour
	slept = nil
	sum, err = RunStages(context.Background(), env, wh, "run", RunOptions{}, RunAll(inbox)...)
	if err != nil || outcomes(sum)["TEWV_participants_20190301.csv"] != warehouse.OutcomeDeferred || len(slept) != 1 || slept[0] < 59*time.Minute {
		t.Fatalf("young file: %v %v, slept %v", sum.Files, err, slept)
	}

	// Bytes changed after hashing (between the looks and the archive): deferred too.
	env.SettleTime = 0
	hook := &stepHook{name: "ingest:archive", fn: func() {
		appendRows(t, env, growing, ingestTestRow("P00003", "TEWV-02", "baseline", "2018-03-01", nil))
	}}
	sum, err = RunStages(context.Background(), env, wh, "run", RunOptions{Hooks: hook}, RunAll(inbox)...)
	if err != nil || outcomes(sum)["TEWV_participants_20190301.csv"] != warehouse.OutcomeDeferred {
		t.Fatalf("changed after hashing: %+v %v", sum.Files, err)
	}

	// Left alone, the files are taken next time, whole.
	os.Chtimes(future, time.Now(), time.Now().Add(-time.Minute))
	sum, err = RunStages(context.Background(), env, wh, "run", RunOptions{}, RunAll(inbox)...)
	if err != nil || sum.FilesNew != 2 {
		t.Fatalf("settled: %+v %v", sum, err)
	}
	if ids := ingestTestStrings(t, wh, "participants", "study_id"); strings.Join(ids, " ") != "BDCT-P00001 TEWV-P00001 TEWV-P00002 TEWV-P00003" {
		t.Errorf("participants %v", ids)
	}
}

// TestIngestSameBytesUnderTheirProperName: bytes quarantined under a
// browser's download name are loaded when they arrive under the right
// name; side by side in one night, the download copy is a duplicate.
func TestIngestSameBytesUnderTheirProperName(t *testing.T) {
	env := ingestTestEnv(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "w")
	rows := []map[string]string{ingestTestRow("P00001", "TEWV-01", "baseline", "2018-03-01", nil)}
	night1, night2 := filepath.Join(dir, "n1"), filepath.Join(dir, "n2")
	os.MkdirAll(night1, 0o750)
	os.MkdirAll(night2, 0o750)
	dl := ingestTestCSV(t, night1, "TEWV_participants_20190131 (1).csv", env, schemas.KindParticipants, rows)
	_, err := ingestTestRun(t, env, wh, dl)
	var pe *warehouse.ProblemsError
	if !errors.As(err, &pe) || pe.Quarantined != 1 {
		t.Fatalf("download name: %v, want quarantined", err)
	}
	good := ingestTestCSV(t, night2, "TEWV_participants_20190131.csv", env, schemas.KindParticipants, rows)
	if _, err := ingestTestRun(t, env, wh, good); err != nil {
		t.Fatalf("proper name: %v", err)
	}
	if ids := ingestTestStrings(t, wh, "participants", "study_id"); strings.Join(ids, " ") != "TEWV-P00001" {
		t.Fatalf("participants %v, want the trust's export loaded", ids)
	}
	l := ledgerOf(t, wh)
	status := map[string]string{}
	for _, f := range l.Files {
		status[f.Name] = f.Status
	}
	if status["TEWV_participants_20190131 (1).csv"] != warehouse.StatusQuarantined || status["TEWV_participants_20190131.csv"] != warehouse.StatusCurrent {
		t.Errorf("ledger %v", status)
	}
	// ingest_files: one row per (sha256, name).
	shas := ingestTestStrings(t, wh, "ingest_files", "sha256")
	names := ingestTestStrings(t, wh, "ingest_files", "name")
	if len(shas) != 2 || shas[0] != shas[1] || names[0] == names[1] {
		t.Errorf("ingest_files %v %v, want the same bytes under two names", shas, names)
	}
	// Once received under a good name, the bytes are not read again under
	// another, good or bad.
	again := filepath.Join(dir, "n3")
	os.MkdirAll(again, 0o750)
	b, _ := os.ReadFile(good)
	os.WriteFile(filepath.Join(again, "TEWV_participants_20190131 (2).csv"), b, 0o600)
	os.WriteFile(filepath.Join(again, "TEWV_participants_20190201.csv"), b, 0o600)
	sum, err := ingestTestRun(t, env, wh, again)
	if err != nil || sum.FilesSkipped != 2 || sum.FilesNew != 0 {
		t.Fatalf("again: %+v %v", sum, err)
	}

	// Both in one night: the download copy is skipped, not quarantined.
	wh2 := filepath.Join(dir, "w2")
	both := filepath.Join(dir, "both")
	os.MkdirAll(both, 0o750)
	os.WriteFile(filepath.Join(both, "TEWV_participants_20190131 (1).csv"), b, 0o600)
	os.WriteFile(filepath.Join(both, "TEWV_participants_20190131.csv"), b, 0o600)
	sum, err = ingestTestRun(t, env, wh2, both)
	if err != nil || sum.FilesNew != 1 || sum.FilesSkipped != 1 {
		t.Fatalf("side by side: %+v %v", sum, err)
	}
	if got := outcomes(sum); got["TEWV_participants_20190131 (1).csv"] != warehouse.OutcomeSkipped || got["TEWV_participants_20190131.csv"] != warehouse.OutcomeNew {
		t.Errorf("outcomes %v", sum.Files)
	}
}

// TestIngestExportDateGuards: an export date past the run's date plus the
// allowance quarantines the file (it would otherwise be current for good),
// as does an impossible date; a real export after it becomes current.
func TestIngestExportDateGuards(t *testing.T) {
	env := ingestTestEnv(t)
	env.Now = func() time.Time { return time.Date(2019, 3, 1, 22, 0, 0, 0, time.UTC) }
	dir := t.TempDir()
	wh := filepath.Join(dir, "w")
	rows := func(pid string) []map[string]string {
		return []map[string]string{ingestTestRow(pid, "TEWV-01", "baseline", "2018-03-01", nil)}
	}
	reasons := func() map[string]string {
		out := map[string]string{}
		for _, f := range ledgerOf(t, wh).Files {
			code, _, _ := strings.Cut(f.Reason, ":")
			out[f.Name] = f.Status + " " + code
		}
		return out
	}
	for _, c := range []struct{ name, want string }{
		{"TEWV_participants_20910131.csv", "quarantined future_export_date"},
		{"TEWV_participants_20190303.csv", "quarantined future_export_date"},
		{"TEWV_participants_20190230.csv", "quarantined bad_export_date"},
		{"bdct_cpi_participants_30-02-2019.csv", "quarantined bad_export_date"},
		{"TEWV_participants_20190302.csv", "current "}, // the run's date plus one day
	} {
		sub := filepath.Join(dir, strings.TrimSuffix(c.name, ".csv"))
		os.MkdirAll(sub, 0o750)
		p := ingestTestCSV(t, sub, c.name, env, schemas.KindParticipants, rows("P"+c.name[len(c.name)-9:len(c.name)-4]))
		ingestTestRun(t, env, wh, p)
		if got := reasons()[c.name]; got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	// A later real export is current, not "superseded on arrival".
	env.Now = func() time.Time { return time.Date(2019, 4, 1, 9, 0, 0, 0, time.UTC) }
	p := ingestTestCSV(t, dir, "TEWV_participants_20190401.csv", env, schemas.KindParticipants, rows("P00401"))
	if _, err := ingestTestRun(t, env, wh, p); err != nil {
		t.Fatal(err)
	}
	if got := reasons()["TEWV_participants_20190401.csv"]; got != "current " {
		t.Errorf("real export after a mistyped one: %q, want current", got)
	}
	// validate says the same.
	checks, err := ingest.Validate(context.Background(), env, []string{filepath.Join(dir, "TEWV_participants_20190230")})
	if err != nil || len(checks) != 1 || checks[0].Quarantine != warehouse.QuarantineBadDate {
		t.Errorf("validate: %+v %v", checks, err)
	}
}

// TestIngestInboxOddEntries: symbolic links to files are followed and
// archived; FIFOs, folders named like exports and dangling links are
// reported and skipped without blocking; leftovers of editors, the OS and
// browsers are ignored (no exit 3); a warehouse in its own inbox is refused.
func TestIngestInboxOddEntries(t *testing.T) {
	env := ingestTestEnv(t)
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox")
	elsewhere := filepath.Join(dir, "elsewhere")
	os.MkdirAll(inbox, 0o750)
	os.MkdirAll(elsewhere, 0o750)
	target := ingestTestCSV(t, elsewhere, "TEWV_participants_20190301.csv", env, schemas.KindParticipants, []map[string]string{
		ingestTestRow("P00001", "TEWV-01", "baseline", "2018-03-01", nil),
	})
	if err := os.Symlink(target, filepath.Join(inbox, "TEWV_participants_20190301.csv")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(inbox, "BDCT_participants_20190301.csv"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(inbox, "AWP_participants_20190301.csv"), 0o750)
	os.Symlink(filepath.Join(dir, "gone.csv"), filepath.Join(inbox, "EPUT_participants_20190301.csv"))
	leftovers := []string{"Thumbs.db", ".DS_Store", "desktop.ini", "~$HPFT participants export 20190301.xlsx", "TEWV_fidelity_20190301.csv.crdownload", "x.part", "y.tmp"}
	for _, n := range leftovers {
		os.WriteFile(filepath.Join(inbox, n), []byte("junk"), 0o600)
	}
	wh := filepath.Join(dir, "w")
	done := make(chan struct{})
	var sum *warehouse.Summary
	var err error
	go func() {
		defer close(done)
		sum, err = ingestTestRun(t, env, wh, inbox)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("ingest blocked on the FIFO")
	}
	if err != nil {
		t.Fatalf("ingest: %v, want no problem", err)
	}
	if ids := ingestTestStrings(t, wh, "participants", "study_id"); strings.Join(ids, " ") != "TEWV-P00001" {
		t.Errorf("participants %v, want the linked export", ids)
	}
	if _, err := os.Stat(filepath.Join(wh, "archive", fileSHA(t, target))); err != nil {
		t.Errorf("linked export not archived: %v", err)
	}
	got := outcomes(sum)
	want := map[string]string{
		"TEWV_participants_20190301.csv": warehouse.OutcomeNew,
		"BDCT_participants_20190301.csv": warehouse.OutcomeRefused,
		"AWP_participants_20190301.csv":  warehouse.OutcomeRefused,
		"EPUT_participants_20190301.csv": warehouse.OutcomeRefused,
	}
	for _, n := range leftovers {
		want[n] = warehouse.OutcomeIgnored
	}
	for n, s := range want {
		if got[n] != s {
			t.Errorf("%s: %q, want %q", n, got[n], s)
		}
	}
	if len(sum.Files) != len(want) {
		t.Errorf("%d outcomes, want %d: %+v", len(sum.Files), len(want), sum.Files)
	}

	// A warehouse inside its own inbox: refused before anything is read.
	inner := filepath.Join(inbox, "warehouse")
	if _, err := RunStages(context.Background(), env, inner, "run", RunOptions{Create: true}, RunAll(inbox)...); !errors.Is(err, ingest.ErrWarehouseInInbox) {
		t.Errorf("warehouse in the inbox: %v, want ErrWarehouseInInbox", err)
	}
	if _, err := ingestTestRun(t, env, wh, filepath.Join(wh, "archive")); !errors.Is(err, ingest.ErrWarehouseInInbox) {
		t.Errorf("ingest of the warehouse's archive: %v, want ErrWarehouseInInbox", err)
	}
}
