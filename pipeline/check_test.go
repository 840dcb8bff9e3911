package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// TestCheck: `cpi check` passes a sound warehouse, and names every
// problem of a damaged one at once: a truncated archived export, a
// changed table file, a deleted partition, a file no output records, a
// writable archive file; then a missing ledger. After `cpi rebuild` (of
// the tables; the archive is restored by hand) it passes again.
func TestCheck(t *testing.T) {
	env := ingestTestEnv(t)
	inbox := t.TempDir()
	copyInbox(t, inbox, "TEWV_participants_20190329.csv", "TEWV_fidelity_20190329.csv", "awp-cpi-participants-20190329.csv")
	wh := filepath.Join(t.TempDir(), "w")
	if err := runNight(t, env, wh, inbox, nil); err != nil {
		t.Fatal(err)
	}
	check := func() (string, error) {
		t.Helper()
		var out bytes.Buffer
		err := Check(context.Background(), env, wh, &out)
		return out.String(), err
	}
	out, err := check()
	if err != nil || strings.Contains(out, "FAIL") || strings.Count(out, "\nok ") != 5 {
		t.Fatalf("check of a sound warehouse: %v\n%s", err, out)
	}

	w, _ := warehouse.OpenWarehouse(wh, false)
	gen, _ := w.CurrentDir()
	l := currentLedger(t, wh)
	var awp *warehouse.FileEntry
	for _, f := range l.Files {
		if f.Trust == "AWP" {
			awp = f
		}
	}
	archived := w.ArchivePath(awp.SHA256)
	original, _ := os.ReadFile(archived)
	if err := os.Truncate(archived, 100); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(gen, "tables", "participants", "trust=TEWV", "*.parquet"))
	b, _ := os.ReadFile(files[0])
	b[len(b)/2] ^= 1
	os.Remove(files[0])
	os.WriteFile(files[0], b, 0o640)
	os.RemoveAll(filepath.Join(gen, "tables", "scores", "trust=AWP"))
	os.WriteFile(filepath.Join(gen, "tables", "notes.txt"), []byte("x"), 0o640)
	tewv := w.ArchivePath(l.Files[0].SHA256)
	os.Chmod(tewv, 0o640)

	out, err = check()
	var ce *CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("check of a damaged warehouse: %v, want a *CheckError\n%s", err, out)
	}
	for _, want := range []string{
		"archive/" + awp.SHA256 + " does not hold the bytes received (" + awp.Name + ")",
		awp.Name + " 11478 bytes, the archive holds 100", // the AWP record's size (the bundled file's)
		"participants: tables/participants/trust=TEWV",   // changed
		"scores: tables/scores/trust=AWP",                // deleted partition
		"tables/notes.txt is in no output",
		"archive/" + l.Files[0].SHA256 + " is writable",
	} {
		if !strings.Contains(err.Error(), want) || !strings.Contains(out, want) {
			t.Errorf("check does not name %q:\n%s", want, out)
		}
	}
	if len(ce.Problems) != 6 {
		t.Errorf("%d problems, want 6: %v", len(ce.Problems), ce.Problems)
	}

	os.Remove(warehouse.LedgerPath(gen))
	out, err = check()
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "ledger") || !strings.Contains(out, "FAIL  ledger") {
		t.Fatalf("check without a ledger: %v\n%s", err, out)
	}

	os.Chmod(archived, 0o640)
	os.WriteFile(archived, original, 0o440)
	os.Chmod(archived, 0o440)
	os.Chmod(tewv, 0o440)
	if _, err := RebuildWarehouse(context.Background(), env, wh, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := check(); err != nil {
		t.Fatalf("check after the rebuild: %v\n%s", err, out)
	}
}
