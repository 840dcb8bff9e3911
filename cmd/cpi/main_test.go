package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestCommandLine drives cpi as a user would, from synth to the reports,
// and checks the exit statuses of DESIGN §4.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	x, w := filepath.Join(dir, "x"), filepath.Join(dir, "w")
	if code, _, stderr := cli(t, "synth", "--out", x, "--quiet"); code != 0 {
		t.Fatalf("synth: exit %d: %s", code, stderr)
	}
	if code, out, _ := cli(t, "validate", x); code != 0 || !strings.Contains(out, "0 rejected") {
		t.Fatalf("validate of a clean study: exit %d\n%s", code, out)
	}
	code, out, stderr := cli(t, "run", "--warehouse", w, "--inbox", x)
	if code != 0 || !strings.Contains(out, "files: 10 new") {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, _ = cli(t, "run", "--warehouse", w, "--inbox", x)
	if code != 0 || !strings.Contains(out, "nothing new: no table rewritten") || !strings.Contains(out, "10 skipped") {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
	if code, out, _ := cli(t, "tables", "--warehouse", w); code != 0 || !strings.Contains(out, "participants — 159 rows in 5 files") {
		t.Fatalf("tables: exit %d\n%s", code, out)
	}
	if code, out, _ := cli(t, "runs", "--warehouse", w); code != 0 || strings.Count(out, "\n") != 3 {
		t.Fatalf("runs: exit %d\n%s", code, out)
	}
	report := filepath.Join(dir, "team.html")
	if code, _, stderr := cli(t, "report", "fidelity", "--warehouse", w, "--team", "AWP-01", "--out", report); code != 0 {
		t.Fatalf("report fidelity: exit %d: %s", code, stderr)
	}
	if info, err := os.Stat(report); err != nil || info.Mode().Perm() != 0o640 {
		t.Fatalf("report file: %v %v", info, err)
	}
	if code, _, stderr := cli(t, "report", "fidelity", "--warehouse", w, "--team", "XYZ-01"); code != 2 || !strings.Contains(stderr, "TEWV-01") {
		t.Fatalf("unknown team: exit %d, want 2 and the study's teams: %s", code, stderr)
	}
	// A malformed export: finished, with problems: 3.
	bad := filepath.Join(dir, "TEWV_participants_20190401.csv")
	os.WriteFile(bad, []byte("participant_id,team_code,wave\nP1,TEWV-01,baseline\n"), 0o600)
	if code, out, _ := cli(t, "validate", bad); code != 3 || !strings.Contains(out, "QUARANTINED") {
		t.Fatalf("validate of a bad export: exit %d, want 3\n%s", code, out)
	}
	if code, _, _ := cli(t, "ingest", "--warehouse", w, bad); code != 3 {
		t.Fatalf("ingest of a bad export: exit %d, want 3", code)
	}
	// Bad usage: 2.
	for _, args := range [][]string{{"ingest", x}, {"bogus"}, {"run", "--warehouse", w}, {"tables", "--warehouse", w, "--nope"}, {"--log-format", "xml", "runs", "--warehouse", w}} {
		if code, _, _ := cli(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	// A missing warehouse: failed, 1.
	if code, _, _ := cli(t, "score", "--warehouse", filepath.Join(dir, "none")); code != 1 {
		t.Errorf("score of a missing warehouse: exit %d, want 1", code)
	}
	if code, out, _ := cli(t, "--version"); code != 0 || !strings.Contains(out, version) {
		t.Errorf("--version: exit %d %q", code, out)
	}
}

// TestCheckAndRebuild: `cpi check` exits 0 on a sound warehouse and 1
// naming a deleted partition; `cpi rebuild` repairs it (exit 0) and the
// check passes again.
func TestCheckAndRebuild(t *testing.T) {
	dir := t.TempDir()
	x, w := filepath.Join(dir, "x"), filepath.Join(dir, "w")
	if code, _, stderr := cli(t, "synth", "--out", x, "--quiet"); code != 0 {
		t.Fatalf("synth: exit %d: %s", code, stderr)
	}
	if code, out, stderr := cli(t, "run", "--warehouse", w, "--inbox", x, "--quiet"); code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, out, stderr := cli(t, "check", "--warehouse", w); code != 0 || !strings.Contains(out, "ok    archive") {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, stderr)
	}
	if err := os.RemoveAll(filepath.Join(w, "tables", "participants", "trust=AWP")); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := cli(t, "check", "--warehouse", w)
	if code != 1 || !strings.Contains(out, "FAIL  outputs    participants: tables/participants/trust=AWP/data.parquet is missing") || !strings.Contains(stderr, "cpi rebuild") {
		t.Fatalf("check of a damaged warehouse: exit %d, want 1\n%s\n%s", code, out, stderr)
	}
	if code, out, stderr := cli(t, "rebuild", "--warehouse", w); code != 0 || !strings.Contains(out, "run 2 (rebuild)") {
		t.Fatalf("rebuild: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, out, stderr := cli(t, "check", "--warehouse", w); code != 0 {
		t.Fatalf("check after the rebuild: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, _, _ := cli(t, "rebuild"); code != 2 {
		t.Errorf("rebuild without --warehouse: exit %d, want 2", code)
	}
}
