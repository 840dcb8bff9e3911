package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// TestIngestSettledFilesTakenWithoutWait: files last modified longer ago
// than the settling time are taken at once (no wait: they were left alone
// before the run looked); one modified within it makes the run wait once,
// and one whose bytes change after hashing is still deferred.
func TestIngestSettledFilesTakenWithoutWait(t *testing.T) {
	env := ingestTestEnv(t)
	env.SettleTime = 5 * time.Second
	var slept []time.Duration
	env.Sleep = func(d time.Duration) { slept = append(slept, d) }
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox")
	os.MkdirAll(inbox, 0o750)
	wh := filepath.Join(dir, "w")
	old := time.Now().Add(-time.Hour)
	for _, f := range []struct{ name, team string }{{"TEWV_participants_20190301.csv", "TEWV-01"}, {"BDCT_participants_20190301.csv", "BDCT-01"}} {
		p := ingestTestCSV(t, inbox, f.name, env, schemas.KindParticipants, []map[string]string{ingestTestRow("P00001", f.team, "baseline", "2018-03-01", nil)})
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := RunStages(context.Background(), env, wh, "run", RunOptions{Create: true}, RunAll(inbox)...)
	if err != nil || sum.FilesNew != 2 || len(slept) != 0 {
		t.Fatalf("old files: new %d, slept %v, err %v: want both taken without a wait", sum.FilesNew, slept, err)
	}

	// A file modified within the settling time: one wait, then taken
	// (the wait is only recorded here, so it is still young: deferred).
	young := ingestTestCSV(t, inbox, "TEWV_participants_20190302.csv", env, schemas.KindParticipants, []map[string]string{ingestTestRow("P00002", "TEWV-01", "baseline", "2018-03-01", nil)})
	sum, err = RunStages(context.Background(), env, wh, "run", RunOptions{}, RunAll(inbox)...)
	if err != nil || len(slept) != 1 || slept[0] < 4*time.Second || outcomes(sum)["TEWV_participants_20190302.csv"] != warehouse.OutcomeDeferred {
		t.Fatalf("young file: outcomes %v, slept %v, err %v: want one wait and the file deferred", sum.Files, slept, err)
	}

	// Old at the first look, but its bytes change after hashing: deferred.
	if err := os.Chtimes(young, old, old); err != nil {
		t.Fatal(err)
	}
	slept = nil
	hook := &stepHook{name: "ingest:archive", fn: func() {
		appendRows(t, env, young, ingestTestRow("P00003", "TEWV-02", "baseline", "2018-03-01", nil))
	}}
	sum, err = RunStages(context.Background(), env, wh, "run", RunOptions{Hooks: hook}, RunAll(inbox)...)
	if err != nil || len(slept) != 0 || outcomes(sum)["TEWV_participants_20190302.csv"] != warehouse.OutcomeDeferred {
		t.Fatalf("changed after hashing: outcomes %v, slept %v, err %v", sum.Files, slept, err)
	}
}
