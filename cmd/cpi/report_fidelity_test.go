package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReportFidelityControlTeams: cpi run writes the intervention teams'
// fidelity reports only; cpi report fidelity --all likewise, and with
// --control the control teams' monitoring reports too, which carry no
// guidance and no comparison with the intervention teams.
func TestReportFidelityControlTeams(t *testing.T) {
	dir := t.TempDir()
	x, w := filepath.Join(dir, "x"), filepath.Join(dir, "w")
	if code, _, stderr := cli(t, "synth", "--out", x, "--quiet"); code != 0 {
		t.Fatalf("synth: exit %d: %s", code, stderr)
	}
	if code, _, stderr := cli(t, "run", "--warehouse", w, "--inbox", x, "--quiet"); code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	reports := func(pattern string) []string {
		t.Helper()
		got, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range got {
			got[i] = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "fidelity-"), ".html")
		}
		slices.Sort(got)
		return got
	}
	intervention := []string{"AWP-01", "BDCT-01", "EPUT-01", "HPFT-01", "TEWV-01"}
	all := []string{"AWP-01", "AWP-02", "BDCT-01", "BDCT-02", "EPUT-01", "EPUT-02", "HPFT-01", "HPFT-02", "TEWV-01", "TEWV-02"}
	if got := reports(filepath.Join(w, "gen", "*", "reports", "fidelity-*.html")); !slices.Equal(got, intervention) {
		t.Errorf("cpi run wrote fidelity reports of %v, want the intervention teams %v", got, intervention)
	}

	out1 := filepath.Join(dir, "all")
	if code, _, stderr := cli(t, "report", "fidelity", "--warehouse", w, "--all", "--out-dir", out1, "--quiet"); code != 0 {
		t.Fatalf("report fidelity --all: exit %d: %s", code, stderr)
	}
	if got := reports(filepath.Join(out1, "fidelity-*.html")); !slices.Equal(got, intervention) {
		t.Errorf("--all wrote %v, want %v", got, intervention)
	}
	out2 := filepath.Join(dir, "control")
	if code, _, stderr := cli(t, "report", "fidelity", "--warehouse", w, "--all", "--control", "--out-dir", out2, "--quiet"); code != 0 {
		t.Fatalf("report fidelity --all --control: exit %d: %s", code, stderr)
	}
	if got := reports(filepath.Join(out2, "fidelity-*.html")); !slices.Equal(got, all) {
		t.Errorf("--all --control wrote %v, want %v", got, all)
	}
	b, err := os.ReadFile(filepath.Join(out2, "fidelity-TEWV-02.html"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, bad := range []string{"Where to focus", "Try:", "Compared with", "median", "Start each review"} {
		if strings.Contains(page, bad) {
			t.Errorf("a control team's report holds %q", bad)
		}
	}
	if !strings.Contains(page, "For the study team only: contamination monitoring.") {
		t.Error("a control team's report does not say it is for the study team only")
	}
	if code, _, _ := cli(t, "report", "fidelity", "--warehouse", w, "--team", "TEWV-02", "--control"); code != 2 {
		t.Errorf("--control without --all: exit %d, want 2", code)
	}
}
