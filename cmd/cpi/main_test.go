package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cli runs cpi as the command line would, but takes exports as they are
// (no settling wait: the tests' files are complete when written).
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	var noWait time.Duration
	code := runWith(context.Background(), &globals{stdout: &out, stderr: &errb, settle: &noWait}, args)
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
	if code != 0 || !strings.Contains(out, "files: 10 new") || !strings.Contains(out, "exit 0, all accepted") {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, _ = cli(t, "run", "--warehouse", w, "--inbox", x)
	if code != 0 || !strings.Contains(out, "nothing new: no export loaded, no table or report rebuilt") || !strings.Contains(out, "10 skipped") {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
	if code, out, _ := cli(t, "tables", "--warehouse", w); code != 0 || !strings.Contains(out, "participants — 159 rows in 5 files") ||
		!strings.Contains(out, "codes: TEWV = Tees, Esk and Wear Valleys NHS FT; BDCT = Bradford District Care NHS FT;") ||
		!strings.Contains(out, "codes: 0 = no; 1 = yes") || !strings.Contains(out, "data cut-off 2019-03-29") {
		t.Fatalf("tables: exit %d\n%s", code, out)
	}
	dpFile, err := os.ReadFile(filepath.Join(w, "tables", "datapackage.json"))
	if err != nil {
		t.Fatalf("run wrote no data package: %v", err)
	}
	if code, out, _ := cli(t, "tables", "--warehouse", w, "--json"); code != 0 || out != string(dpFile) || !strings.Contains(out, `"cpi:dataCutoff": "2019-03-29"`) {
		t.Fatalf("tables --json: exit %d, differs from tables/datapackage.json:\n%.300s", code, out)
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

// TestCommandLineMistakes: the usual mistakes get a message that says what
// to do, and the right exit status.
func TestCommandLineMistakes(t *testing.T) {
	dir := t.TempDir()
	x, w := filepath.Join(dir, "x"), filepath.Join(dir, "w")
	if code, _, stderr := cli(t, "synth", "--out", x, "--quiet"); code != 0 {
		t.Fatalf("synth: exit %d: %s", code, stderr)
	}
	before, _ := os.ReadDir(x)
	if code, _, stderr := cli(t, "synth", "--out", x, "--seed", "2", "--quiet"); code != 2 || !strings.Contains(stderr, "--force") {
		t.Errorf("synth over exports: exit %d, want 2 and --force named: %s", code, stderr)
	}
	if code, _, stderr := cli(t, "synth", "--out", x, "--quiet", "--force"); code != 0 {
		t.Errorf("synth --force: exit %d: %s", code, stderr)
	}
	if after, _ := os.ReadDir(x); len(after) != len(before) {
		t.Errorf("synth --force with the same seed: %d files, want %d", len(after), len(before))
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ingest", "--warehouse", w}, 2, "ingest needs at least one PATH"},
		{[]string{"validate"}, 2, "validate needs at least one FILE"},
		{[]string{"validate", filepath.Join(dir, "nope.csv")}, 1, "validate: " + filepath.Join(dir, "nope.csv") + ": no such file or folder"},
		{[]string{"ingest", "--warehouse", w, filepath.Join(dir, "nope.csv")}, 1, filepath.Join(dir, "nope.csv") + ": no such file or folder"},
		{[]string{"run", "--warehouse", w, "--inbox", filepath.Join(dir, "nope")}, 1, "inbox " + filepath.Join(dir, "nope") + ": no such folder"},
		{[]string{"run", "--warehouse", w}, 2, "--inbox DIR is required"},
		{[]string{"run", "--warehouse", filepath.Join(x, "w"), "--inbox", x}, 2, "is inside " + x},
	} {
		code, _, stderr := cli(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "ingest:") || strings.Contains(stderr, "arg(s)") {
			t.Errorf("%v: exit %d, want %d and %q:\n%s", c.args, code, c.code, c.want, stderr)
		}
	}
	for _, p := range []string{w, filepath.Join(x, "w")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was created by a refused command", p)
		}
	}
	// Leftovers in the inbox are no problem: exit 0.
	os.WriteFile(filepath.Join(x, "Thumbs.db"), []byte("junk"), 0o600)
	os.WriteFile(filepath.Join(x, "~$HPFT participants export 20190329.xlsx"), []byte("junk"), 0o600)
	if code, out, stderr := cli(t, "run", "--warehouse", w, "--inbox", x); code != 0 {
		t.Fatalf("run with leftovers: exit %d\n%s\n%s", code, out, stderr)
	}
	// --out naming a folder; the report commands say what they wrote.
	for _, args := range [][]string{
		{"report", "study", "--warehouse", w, "--out", dir},
		{"report", "fidelity", "--warehouse", w, "--team", "AWP-01", "--out", dir},
	} {
		code, _, stderr := cli(t, args...)
		if code != 2 || !strings.Contains(stderr, "--out "+dir+" is a folder") || strings.Contains(stderr, ".tmp") {
			t.Errorf("%v: exit %d, want 2 and the folder named: %s", args, code, stderr)
		}
	}
	report := filepath.Join(dir, "study.html")
	if code, out, stderr := cli(t, "report", "study", "--warehouse", w, "--out", report); code != 0 || strings.TrimSpace(out) != "wrote "+report {
		t.Errorf("report study: exit %d, stdout %q: %s", code, out, stderr)
	}
}

// TestSettleTimeFromStudy: without a test's override, ingest waits the
// study's ingest.settle_seconds.
func TestSettleTimeFromStudy(t *testing.T) {
	g := &globals{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, logFormat: "text"}
	env, err := g.env()
	if err != nil || env.SettleTime != 5*time.Second {
		t.Errorf("settle time %v %v, want the study's 5 s", env.SettleTime, err)
	}
}

// A study definition that is unsafe or not what it seems is refused before
// anything is written: exit 2, and the file, line and field of the mistake.
func TestBadStudyRefused(t *testing.T) {
	const dir = "../../testdata/bad/study"
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]struct {
		Line    int    `json:"line"`
		Field   string `json:"field"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) < 4 {
		t.Fatalf("%d bad study files", len(want))
	}
	inbox := t.TempDir()
	os.WriteFile(filepath.Join(inbox, "TEWV_participants_20190401.csv"), []byte("participant_id,team_code,wave\nP0001,TEWV-01,baseline\n"), 0o600)
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(dir, name)
			out := t.TempDir()
			wh, reports := filepath.Join(out, "w"), filepath.Join(out, "reports")
			where := fmt.Sprintf("%s:%d: %s: ", file, w.Line, w.Field)
			for _, args := range [][]string{
				{"--study", file, "run", "--warehouse", wh, "--inbox", inbox},
				{"--study", file, "report", "fidelity", "--warehouse", wh, "--all", "--out-dir", reports},
				{"--study", file, "synth", "--out", filepath.Join(out, "x"), "--quiet"},
			} {
				code, stdout, stderr := cli(t, args...)
				if code != 2 || !strings.Contains(stderr, where) || !strings.Contains(stderr, w.Message) {
					t.Errorf("%v: exit %d, want 2 and %q…%q\n%s%s", args[2:], code, where, w.Message, stdout, stderr)
				}
			}
			if left, _ := os.ReadDir(out); len(left) != 0 {
				t.Errorf("written: %v", left)
			}
		})
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
	if code, out, stderr := cli(t, "rebuild", "--warehouse", w); code != 0 || !strings.Contains(out, "run 2 (cpi rebuild)") {
		t.Fatalf("rebuild: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, out, stderr := cli(t, "check", "--warehouse", w); code != 0 {
		t.Fatalf("check after the rebuild: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, _, _ := cli(t, "rebuild"); code != 2 {
		t.Errorf("rebuild without --warehouse: exit %d, want 2", code)
	}
}

// TestUnknownAnalysisRefused: a study (--study) naming an analysis the
// compare stage's registry does not know is refused before anything is
// written: exit 2 and the file, line and field (analysis.analyses[6]).
func TestUnknownAnalysisRefused(t *testing.T) {
	file := filepath.Join("..", "..", "testdata", "bad", "analysis", "unknown-analysis.yaml")
	inbox := t.TempDir()
	os.WriteFile(filepath.Join(inbox, "TEWV_participants_20190401.csv"), []byte("participant_id,team_code,wave\nP0001,TEWV-01,baseline\n"), 0o600)
	out := t.TempDir()
	wh := filepath.Join(out, "w")
	want := file + `:136: analysis.analyses[6]: unknown analysis "multiple_imputation"; want primary, wild_bootstrap, mixed, change, weighted, fidelity_dose, cost_effectiveness`
	for _, args := range [][]string{
		{"--study", file, "run", "--warehouse", wh, "--inbox", inbox},
		{"--study", file, "compare", "--warehouse", wh},
		{"--study", file, "synth", "--out", filepath.Join(out, "x"), "--quiet"},
	} {
		code, stdout, stderr := cli(t, args...)
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d, want 2 and %q\n%s%s", args[2:], code, want, stdout, stderr)
		}
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("written: %v", left)
	}
}
