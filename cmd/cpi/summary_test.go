package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSummaryOutput: the JSON summary (--log-format json) is one object on
// stdout with start, end and exit status; --quiet keeps the summary of
// problems and drops a clean night's.
func TestSummaryOutput(t *testing.T) {
	dir := t.TempDir()
	x, w := filepath.Join(dir, "x"), filepath.Join(dir, "w")
	if code, _, stderr := cli(t, "synth", "--out", x, "--participants", "20", "--quiet"); code != 0 {
		t.Fatalf("synth: %d %s", code, stderr)
	}
	code, out, stderr := cli(t, "--log-format", "json", "ingest", "--warehouse", w, x)
	if code != 0 {
		t.Fatalf("ingest: exit %d\n%s", code, stderr)
	}
	var sum map[string]any
	if strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &sum) != nil {
		t.Fatalf("JSON summary is not one object on stdout: %q", out)
	}
	for _, k := range []string{"started", "finished", "exit_status", "files", "rebuilt"} {
		if _, ok := sum[k]; !ok {
			t.Errorf("JSON summary has no %s: %s", k, out)
		}
	}
	if sum["exit_status"] != 0.0 {
		t.Errorf("exit_status %v, want 0", sum["exit_status"])
	}

	// A clean night with --quiet: no summary at all.
	if code, out, _ := cli(t, "--quiet", "ingest", "--warehouse", w, x); code != 0 || out != "" {
		t.Errorf("quiet clean night: exit %d, printed %q", code, out)
	}
	// A night with a quarantined file: --quiet still says so, with its name.
	bad := filepath.Join(dir, "TEWV_participants_20190401.csv")
	os.WriteFile(bad, []byte("participant_id,team_code,wave\nP1,TEWV-01,baseline\n"), 0o600)
	code, out, _ = cli(t, "--quiet", "ingest", "--warehouse", w, bad)
	if code != 3 || !strings.Contains(out, "exit 3") || !strings.Contains(out, "quarantined  TEWV_participants_20190401.csv") || strings.Contains(out, "rebuilt") {
		t.Errorf("quiet night with a problem: exit %d\n%s", code, out)
	}
	code, out, _ = cli(t, "--quiet", "--log-format", "json", "ingest", "--warehouse", w, bad)
	if code != 0 || out != "" {
		t.Errorf("the same bytes again, quiet: exit %d, printed %q", code, out)
	}
}
