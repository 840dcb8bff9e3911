package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// copyInbox copies the named files of testdata/synth into dir.
func copyInbox(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "synth", n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func synthNames(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("..", "testdata", "synth"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// runNight is one `cpi run` over inbox; problems (exit 3) are expected.
func runNight(t *testing.T, env warehouse.Env, wh, inbox string, hooks warehouse.CrashHooks) error {
	t.Helper()
	_, err := RunStages(context.Background(), env, wh, "run", RunOptions{Create: true, Hooks: hooks}, RunAll(inbox)...)
	var pe *warehouse.ProblemsError
	if errors.As(err, &pe) {
		return nil
	}
	return err
}

// multiNightHistory builds a warehouse over three nights: the synthetic
// study and a file that matches no trust (quarantined); then a newer TEWV
// export (superseding), a late older one (superseded on arrival) and the
// first TEWV export again under a browser's download name (a duplicate),
// where the first attempt at that night crashes after archiving and
// recording its receipts and is run again; then a quiet night.
func multiNightHistory(t *testing.T, env warehouse.Env) string {
	t.Helper()
	inbox := t.TempDir()
	copyInbox(t, inbox, synthNames(t)...)
	if err := os.WriteFile(filepath.Join(inbox, "notes.csv"), []byte("participant_id,team_code,wave\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wh := filepath.Join(t.TempDir(), "w")
	if err := runNight(t, env, wh, inbox, nil); err != nil {
		t.Fatalf("night 1: %v", err)
	}
	tewv := filepath.Join(inbox, "TEWV_participants_20190329.csv")
	writeWithoutLastParticipant(t, tewv, filepath.Join(inbox, "TEWV_participants_20190330.csv"))
	writeWithoutLastParticipant(t, filepath.Join(inbox, "TEWV_participants_20190330.csv"), filepath.Join(inbox, "TEWV_participants_20190301.csv"))
	b, _ := os.ReadFile(tewv)
	if err := os.WriteFile(filepath.Join(inbox, "TEWV_participants_20190329 (1).csv"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := runNight(t, env, wh, inbox, &failAt{step: "write ledger", err: errCrash}); !errors.Is(err, errCrash) {
		t.Fatalf("night 2, first attempt: %v, want a crash", err)
	}
	if err := runNight(t, env, wh, inbox, nil); err != nil {
		t.Fatalf("night 2: %v", err)
	}
	if err := runNight(t, env, wh, inbox, nil); err != nil {
		t.Fatalf("night 3: %v", err)
	}
	return wh
}

// failAt fails a run at every write step of that name.
type failAt struct {
	step string
	err  error
}

func (f *failAt) Step(name string) error {
	if name == f.step {
		return fmt.Errorf("at %s: %w", name, f.err)
	}
	return nil
}

// ingestFilesBytes is the committed ingest_files table, byte for byte.
func ingestFilesBytes(t *testing.T, wh string) string {
	t.Helper()
	w, _ := warehouse.OpenWarehouse(wh, false)
	gen, _ := w.CurrentDir()
	b, err := os.ReadFile(filepath.Join(gen, "tables", "ingest_files", "data.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func currentLedger(t *testing.T, wh string) *warehouse.Ledger {
	t.Helper()
	w, err := openForRebuild(wh)
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

func filesJSON(l *warehouse.Ledger) string {
	b, _ := json.Marshal(l.Files)
	return string(b)
}

func rebuild(t *testing.T, env warehouse.Env, wh string) *warehouse.Summary {
	t.Helper()
	sum, err := RebuildWarehouse(context.Background(), env, wh, RunOptions{})
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	return sum
}

// TestRebuildReproducesHistory: after three nights (superseding exports, a
// quarantined file, a duplicate, a crashed attempt), `cpi rebuild` from the
// archive alone gives byte-identical tables (ingest_files included),
// reports and problem lists, and the same ledger of files; so it does with
// a deleted partition and a changed table file, and with the ledger gone.
func TestRebuildReproducesHistory(t *testing.T) {
	env := ingestTestEnv(t)
	wh := multiNightHistory(t, env)
	want, wantFiles, wantLedger := snapshot(t, wh), ingestFilesBytes(t, wh), currentLedger(t, wh)
	statuses := map[string]int{}
	for _, f := range wantLedger.Files {
		statuses[f.Status]++
	}
	if statuses[warehouse.StatusQuarantined] != 1 || statuses[warehouse.StatusSuperseded] != 2 || len(wantLedger.Receipts) != 39 {
		t.Fatalf("history: statuses %v, %d receipts: not the history the test means to build", statuses, len(wantLedger.Receipts))
	}
	same := func(what string) {
		t.Helper()
		sameSnapshot(t, what, snapshot(t, wh), want)
		if ingestFilesBytes(t, wh) != wantFiles {
			t.Errorf("%s: ingest_files differs", what)
		}
		if got := currentLedger(t, wh); filesJSON(got) != filesJSON(wantLedger) {
			t.Errorf("%s: the ledger's files differ:\n%s\nwant\n%s", what, filesJSON(got), filesJSON(wantLedger))
		}
	}

	sum := rebuild(t, env, wh)
	same("rebuild")
	l := currentLedger(t, wh)
	if n := len(l.Runs); n != len(wantLedger.Runs)+1 || l.Runs[n-1].Command != "rebuild" || l.Runs[n-1].ID != sum.RunID || sum.RunID != wantLedger.NextRunID() {
		t.Errorf("runs after the rebuild: %+v", l.Runs)
	}
	if len(l.Receipts) != len(wantLedger.Receipts) {
		t.Errorf("%d receipts after the rebuild, want %d", len(l.Receipts), len(wantLedger.Receipts))
	}

	w, _ := warehouse.OpenWarehouse(wh, false)
	gen, _ := w.CurrentDir()
	os.RemoveAll(filepath.Join(gen, "tables", "participants", "trust=AWP"))
	files, _ := filepath.Glob(filepath.Join(gen, "tables", "scores", "trust=TEWV", "*.parquet"))
	b, _ := os.ReadFile(files[0])
	b[len(b)/2] ^= 1
	os.Remove(files[0])
	os.WriteFile(files[0], b, 0o640)
	rebuild(t, env, wh)
	same("rebuild over a deleted partition and a changed file")

	gen, _ = w.CurrentDir()
	os.Remove(warehouse.LedgerPath(gen))
	rebuild(t, env, wh)
	same("rebuild without a ledger")
	if err := runNight(t, env, wh, filepath.Join("..", "testdata", "synth"), nil); err != nil {
		t.Fatalf("a run after the rebuild: %v", err)
	}
	same("a quiet run after the rebuild")
}

// TestRebuildRefusesDamagedArchive: an archived export that does not hold
// the bytes received stops the rebuild, naming it, and changes nothing.
func TestRebuildRefusesDamagedArchive(t *testing.T) {
	env := ingestTestEnv(t)
	inbox := t.TempDir()
	copyInbox(t, inbox, "TEWV_participants_20190329.csv", "TEWV_fidelity_20190329.csv")
	wh := filepath.Join(t.TempDir(), "w")
	if err := runNight(t, env, wh, inbox, nil); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, wh)
	l := currentLedger(t, wh)
	p := filepath.Join(wh, "archive", l.Files[0].SHA256)
	if err := os.Truncate(p, 100); err != nil {
		t.Fatal(err)
	}
	_, err := RebuildWarehouse(context.Background(), env, wh, RunOptions{})
	if err == nil || !strings.Contains(err.Error(), l.Files[0].Name) || !strings.Contains(err.Error(), "archive is damaged") {
		t.Fatalf("got %v, want the damaged export named", err)
	}
	sameSnapshot(t, "refused rebuild", snapshot(t, wh), want)
}

// TestCrashAtEveryRebuildStep stops a rebuild (of a warehouse whose
// ledger is gone) at each of its write steps: the warehouse is then as
// before (the old generation current, untouched) or, after the switch, as
// after; and a second rebuild completes with the tables of an
// uninterrupted one.
func TestCrashAtEveryRebuildStep(t *testing.T) {
	env := ingestTestEnv(t)
	inbox := t.TempDir()
	copyInbox(t, inbox, "TEWV_participants_20190329.csv", "TEWV_fidelity_20190329.csv")
	base := filepath.Join(t.TempDir(), "base")
	if err := runNight(t, env, base, inbox, nil); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, base)
	w, _ := warehouse.OpenWarehouse(base, false)
	gen, _ := w.CurrentDir()
	os.Remove(warehouse.LedgerPath(gen))

	count := &crashAt{}
	ref := filepath.Join(t.TempDir(), "ref")
	copyTree(t, base, ref)
	start := time.Now()
	if _, err := RebuildWarehouse(context.Background(), env, ref, RunOptions{Hooks: count}); err != nil {
		t.Fatal(err)
	}
	t.Logf("a rebuild takes %v", time.Since(start))
	sameSnapshot(t, "uninterrupted rebuild", snapshot(t, ref), want)
	steps := count.steps
	t.Logf("%d write steps", len(steps))
	for n := 1; n <= len(steps); n++ {
		wh := filepath.Join(t.TempDir(), fmt.Sprintf("w%d", n))
		copyTree(t, base, wh)
		_, err := RebuildWarehouse(context.Background(), env, wh, RunOptions{Hooks: &crashAt{n: n}})
		if !errors.Is(err, errCrash) {
			t.Fatalf("step %d (%s): the rebuild did not stop: %v", n, steps[n-1], err)
		}
		now, _ := (&warehouse.Warehouse{Dir: wh}).CurrentDir()
		if afterSwitch := n > indexOf(steps, "commit:switch"); afterSwitch {
			if filepath.Base(now) == filepath.Base(gen) {
				t.Fatalf("step %d (%s): the rebuilt generation is not current", n, steps[n-1])
			}
			sameSnapshot(t, fmt.Sprintf("crash at step %d (%s), after the switch", n, steps[n-1]), snapshot(t, wh), want)
		} else {
			if filepath.Base(now) != filepath.Base(gen) {
				t.Fatalf("step %d (%s): current is %s, want the old %s", n, steps[n-1], now, gen)
			}
			if _, err := os.Stat(warehouse.LedgerPath(now)); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("step %d (%s): the old generation changed", n, steps[n-1])
			}
			sameSnapshot(t, fmt.Sprintf("crash at step %d (%s), before the switch", n, steps[n-1]), snapshot(t, wh), want)
		}
		if _, err := RebuildWarehouse(context.Background(), env, wh, RunOptions{}); err != nil {
			t.Fatalf("step %d (%s): the rebuild after the crash: %v", n, steps[n-1], err)
		}
		sameSnapshot(t, fmt.Sprintf("crash at step %d (%s)", n, steps[n-1]), snapshot(t, wh), want)
	}
}

// TestCommitErrorAfterSwitchKeepsGeneration: an error after `current`
// has switched (here at the cleanup of old generations) loses nothing:
// the new generation stays current with all its files, the error says the
// run was committed, and the next run builds on it. The same for a
// rebuild.
func TestCommitErrorAfterSwitchKeepsGeneration(t *testing.T) {
	env := ingestTestEnv(t)
	inbox := t.TempDir()
	copyInbox(t, inbox, "TEWV_participants_20190329.csv", "TEWV_fidelity_20190329.csv")
	wh := filepath.Join(t.TempDir(), "w")
	hook := &failAt{step: "commit:cleanup", err: errors.New("disk full")}
	for _, what := range []string{"run", "rebuild"} {
		var err error
		if what == "run" {
			_, err = RunStages(context.Background(), env, wh, "run", RunOptions{Create: true, Hooks: hook}, RunAll(inbox)...)
		} else {
			_, err = RebuildWarehouse(context.Background(), env, wh, RunOptions{Hooks: hook})
		}
		if err == nil || !strings.Contains(err.Error(), "was committed") || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("%s: got %v, want an error saying the run was committed", what, err)
		}
		w, err := warehouse.OpenWarehouse(wh, false)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		gen, _ := w.CurrentDir()
		l, err := warehouse.ReadLedger(gen)
		if err != nil || len(l.Runs) == 0 || l.Runs[len(l.Runs)-1].Command != what {
			t.Fatalf("%s: the committed generation %s lost its ledger or run: %v", what, gen, err)
		}
		if err := warehouse.VerifyOutputs(context.Background(), gen, l, true); err != nil {
			t.Errorf("%s: the committed generation lost files: %v", what, err)
		}
		readerSeesWholeTables(t, wh)
	}
	if err := runNight(t, env, wh, inbox, nil); err != nil {
		t.Fatalf("the run after: %v", err)
	}
}

// TestRebuildReplaysAccept: a held export accepted with `cpi accept` is
// accepted again, at its moment, by a rebuild: the same tables and ledger.
func TestRebuildReplaysAccept(t *testing.T) {
	env := ingestTestEnv(t)
	wh, held := heldWarehouse(t, env)
	if _, err := heldRun(t, env, wh, AcceptAll(held, "checked with the trust")...); err != nil {
		t.Fatal(err)
	}
	want, wantLedger := snapshot(t, wh), currentLedger(t, wh)
	w, _ := warehouse.OpenWarehouse(wh, false)
	matches, _ := filepath.Glob(filepath.Join(w.ReceiptsDir(), "*-accept-*.json"))
	if len(matches) != 1 {
		t.Fatalf("accept records %v", matches)
	}
	if info, _ := os.Stat(matches[0]); info.Mode().Perm() != warehouse.ArchiveMode {
		t.Errorf("accept record mode %v", info.Mode().Perm())
	}
	rebuild(t, env, wh)
	sameSnapshot(t, "rebuild with an accept", snapshot(t, wh), want)
	if got := currentLedger(t, wh); filesJSON(got) != filesJSON(wantLedger) || len(got.Receipts) != len(wantLedger.Receipts) {
		t.Errorf("ledger after replaying the accept:\n%s\nwant\n%s", filesJSON(got), filesJSON(wantLedger))
	}
}

// copyTree copies a warehouse (hard links become copies; symlinks stay).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case d.IsDir():
			return os.MkdirAll(target, 0o750)
		case rel == ".lock":
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, b, info.Mode().Perm()); err != nil {
			return err
		}
		return os.Chtimes(target, info.ModTime(), info.ModTime())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRebuildWritesMissingRecords: a warehouse whose archive has no
// records of its receipts (written before they were kept) fails `cpi
// check`; `cpi rebuild` takes the receipts from the ledger, writes their
// records, and reproduces the tables; the check then passes.
func TestRebuildWritesMissingRecords(t *testing.T) {
	env := ingestTestEnv(t)
	inbox := t.TempDir()
	copyInbox(t, inbox, "TEWV_participants_20190329.csv", "TEWV_fidelity_20190329.csv")
	wh := filepath.Join(t.TempDir(), "w")
	if err := runNight(t, env, wh, inbox, nil); err != nil {
		t.Fatal(err)
	}
	if err := runNight(t, env, wh, inbox, nil); err != nil {
		t.Fatal(err)
	}
	want, wantFiles := snapshot(t, wh), ingestFilesBytes(t, wh)
	w, _ := warehouse.OpenWarehouse(wh, false)
	if err := os.RemoveAll(w.ReceiptsDir()); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := Check(context.Background(), env, wh, &out); err == nil || !strings.Contains(out.String(), "has no record in the archive") {
		t.Fatalf("check without records: %v\n%s", err, out.String())
	}
	rebuild(t, env, wh)
	sameSnapshot(t, "rebuild from the ledger's receipts", snapshot(t, wh), want)
	if ingestFilesBytes(t, wh) != wantFiles {
		t.Error("ingest_files differs")
	}
	recs, _ := filepath.Glob(filepath.Join(w.ReceiptsDir(), "*.json"))
	if len(recs) != 4 {
		t.Errorf("%d records written, want 4 (two files, twice)", len(recs))
	}
	out.Reset()
	if err := Check(context.Background(), env, wh, &out); err != nil {
		t.Fatalf("check after the rebuild: %v\n%s", err, out.String())
	}
}
