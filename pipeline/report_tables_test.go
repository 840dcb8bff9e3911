package pipeline

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/pipeline/report/study"
)

// TestStudyReportTables writes the study report's tables as CSV and reads
// them back: every file there, 0600 in a 0700 folder, and the cells those
// the page prints (the TEWV intervention flow row with its suppression,
// Table 1's 18-24 row with the total column, the primary estimate beside
// the arms, R's numbers as TestStudyReportContent checks them).
func TestStudyReportTables(t *testing.T) {
	env, dir := reportStudyTestWarehouse(t)
	out := filepath.Join(t.TempDir(), "tables")
	if err := study.WriteTablesOf(context.Background(), env, dir, out); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("folder mode %v, want 0700", st.Mode().Perm())
	}
	read := func(name string) [][]string {
		t.Helper()
		p := filepath.Join(out, name)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, st.Mode().Perm())
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r := csv.NewReader(f)
		r.FieldsPerRecord = -1
		rows, err := r.ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return rows
	}
	has := func(name string, want []string) {
		t.Helper()
		for _, r := range read(name) {
			if slices.Equal(r, want) {
				return
			}
		}
		t.Errorf("%s lacks the row %q", name, want)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := append(slices.Clone(study.TableFiles), study.SectionTableFiles...)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
	has("flow.csv", []string{"TEWV", "intervention", "[c]", "0", "[c]", "14", "<5", "0"})
	if h := read("flow.csv")[0]; strings.Join(h, "|") != "trust|arm|recruited|not interviewed at baseline|baseline|Followed up|withdrew|lost" {
		t.Errorf("flow header %q", h)
	}
	page := reportStudyTestRender(t, env, dir)
	// Table 1's 18-24 row as the page prints it, total column included.
	var row []string
	for _, r := range read("table1.csv") {
		if len(r) > 1 && r[0] == "Age band" && r[1] == "18-24" {
			row = r
		}
	}
	if len(row) != 5 || !strings.Contains(page, "<td>18-24</td><td class=\"num\">"+row[2]+"</td><td class=\"num\">"+row[3]+"</td><td class=\"num\">"+row[4]+"</td>") {
		t.Errorf("table1.csv's 18-24 row %q is not the page's", row)
	}
	var prim []string
	for _, r := range read("outcomes.csv") {
		if r[0] == env.Study.Analysis.PrimaryOutcome && r[2] == "followup" {
			prim = r
		}
	}
	if len(prim) != 13 || prim[7] != "0.96 (-1.31 to 3.23)" || prim[8] != "0.307" || prim[9] != "0.119" || prim[10] != "0.19" || prim[11] != "158" {
		t.Errorf("outcomes.csv's primary row %q", prim)
	}
	has("forest.csv", []string{"Pooled (CR2)", "0.96", "-1.31 to 3.23", ""})
	sens := read("sensitivity.csv")
	if len(sens) < 2 || sens[0][2] != "analysis" {
		t.Fatalf("sensitivity.csv %q", sens)
	}
	for _, r := range sens[1:] {
		if r[2] == "primary (cr2)" {
			t.Error("sensitivity.csv repeats the primary analysis")
		}
	}
}

// A cell a spreadsheet would read as a formula gets an apostrophe; a
// negative number as shown does not.
func TestStudyTablesCSVSafe(t *testing.T) {
	for in, want := range map[string]string{
		"=1+1": "'=1+1", "@SUM(A1)": "'@SUM(A1)", "-0.11": "-0.11", "-0.11 (-0.5 to 0.2)": "-0.11 (-0.5 to 0.2)",
		"-x": "'-x", "+44": "+44", "<5": "<5", "": "",
	} {
		if got := study.CSVSafe(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}
