package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// TestRebuildAfterRepeatedAccept: an accept that crashed after its archive
// record and was then run again leaves two records; a rebuild without the
// ledger replays the first and skips the second.
func TestRebuildAfterRepeatedAccept(t *testing.T) {
	env := ingestTestEnv(t)
	wh, held := heldWarehouse(t, env)
	count := &crashAt{}
	ref := filepath.Join(t.TempDir(), "ref")
	copyTree(t, wh, ref)
	RunStages(context.Background(), env, ref, "accept", RunOptions{Hooks: count}, AcceptAll(held, "r")...)
	n := indexOf(count.steps, "accept:record") + 2 // first step after the archive record
	if _, err := RunStages(context.Background(), env, wh, "accept", RunOptions{Hooks: &crashAt{n: n}}, AcceptAll(held, "r")...); err == nil {
		t.Fatal("no crash")
	}
	if _, err := RunStages(context.Background(), env, wh, "accept", RunOptions{}, AcceptAll(held, "r")...); err != nil {
		t.Fatal(err)
	}
	w, _ := warehouse.OpenWarehouse(wh, false)
	gen, _ := w.CurrentDir()
	// the case rebuild exists for: a lost ledger
	os.Chmod(filepath.Join(gen, "ledger"), 0o755)
	if err := os.Remove(warehouse.LedgerPath(gen)); err != nil {
		t.Fatal(err)
	}
	if _, err := RebuildWarehouse(context.Background(), env, wh, RunOptions{}); err != nil {
		t.Fatalf("rebuild after a crashed then repeated accept: %v", err)
	}
}

// TestFutureDatedExportReadWhenDue: an export quarantined because its date
// was in the future is read when it is still in the inbox after that date.
func TestFutureDatedExportReadWhenDue(t *testing.T) {
	env := ingestTestEnv(t)
	wh := filepath.Join(t.TempDir(), "w")
	in := t.TempDir()
	// an export dated 2019-04-05, seen by a run on 2019-04-01 (more than a day early)
	b, _ := os.ReadFile(tewvExport)
	os.WriteFile(filepath.Join(in, "TEWV_participants_20190405.csv"), b, 0o600)
	os.Chtimes(filepath.Join(in, "TEWV_participants_20190405.csv"), time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC))
	day := time.Date(2019, 4, 1, 3, 0, 0, 0, time.UTC)
	env.Now = func() time.Time { return day }
	heldRun(t, env, wh, ingest.Ingest([]string{in}))
	// the night after its date: the same file, same name, still in the inbox
	day = time.Date(2019, 4, 6, 3, 0, 0, 0, time.UTC)
	sum, _ := heldRun(t, env, wh, ingest.Ingest([]string{in}))
	for _, f := range sum.Files {
		t.Logf("%s: %s (%s)", f.Name, f.Status, f.Reason)
	}
	if n := tewvParticipants(t, wh); n == 0 {
		t.Errorf("TEWV has no participants: the export, now due, is skipped as already received")
	}
}

// TestRebuildSameBytesUnderTwoNames: bytes first quarantined under a
// download name, then received under the right name after another export,
// become current; `cpi check` agrees with the archive and `cpi rebuild`
// reproduces the same tables (the entries are told apart by name, not by
// bytes alone).
func TestRebuildSameBytesUnderTwoNames(t *testing.T) {
	env := ingestTestEnv(t)
	wh := filepath.Join(t.TempDir(), "w")
	corrected := filepath.Join(t.TempDir(), "corrected.csv")
	writeWithoutLastParticipant(t, tewvExport, corrected)
	b, _ := os.ReadFile(corrected)
	night := func(name string, data []byte) {
		t.Helper()
		in := t.TempDir()
		os.WriteFile(filepath.Join(in, name), data, 0o600)
		heldRun(t, env, wh, RunAll(in)...)
	}
	night("TEWV_participants_20190329 (1).csv", b)
	orig, _ := os.ReadFile(tewvExport)
	night("TEWV_participants_20190329.csv", orig)
	night("TEWV_participants_20190329.csv", b)
	want := snapshot(t, wh)
	if n := tewvParticipants(t, wh); n != 32 {
		t.Fatalf("TEWV has %d participants, want the corrected export's 32", n)
	}
	var out strings.Builder
	if err := Check(context.Background(), env, wh, &out); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	rebuild(t, env, wh)
	sameSnapshot(t, "rebuild", snapshot(t, wh), want)
	out.Reset()
	if err := Check(context.Background(), env, wh, &out); err != nil {
		t.Fatalf("check after rebuild: %v\n%s", err, out.String())
	}
}
