package redcap

import (
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestSplitMissingCodes: cells holding one of the project's missing-data
// codes become blanks, counted per canonical column and per trust; the box
// of a missing-data code ticked in a checkbox column counts for its field
// and gives no value; a code not listed stays a value (the validator
// rejects it). Lines are the export's, a quoted cell across two lines
// included.
func TestSplitMissingCodes(t *testing.T) {
	s := loadStudy(t, "")
	s.Redcap.MissingCodes = []string{"UNK", "-999"}
	p, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	w := csv.NewWriter(&b)
	head := append(p.ExportColumns(), "gender___unk")
	_ = w.Write(head)
	idx := func(name string) int { return slices.Index(head, name) }
	row := func(id, dag string, set map[string]string) {
		cells := make([]string, len(head))
		cells[0], cells[1], cells[2] = id, "baseline_arm_1", dag
		for k, v := range set {
			cells[idx(k)] = v
		}
		_ = w.Write(cells)
	}
	row("P1", "tewv_01", map[string]string{"rg01": "UNK", "rg02": "-999", "interview_date": "2019-01-02"})           // line 2
	row("P2", "awp_02", map[string]string{"rg01": "UNK", "gender___unk": "1", "ethnicity": "white\nbritish"})        // lines 3-4
	row("P3", "tewv_01", map[string]string{"rg01": "-999", "rg03": "NASK", "gender": "female", "gender___unk": "0"}) // line 5
	row("P4", "tewv_01", map[string]string{"swemwbs1": " UNK ", "withdrawn": "0"})                                   // line 6
	w.Flush()
	parts, err := Split(s, p, strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 {
		t.Fatalf("%d parts", len(parts))
	}
	tewv, awp := parts[0], parts[1]
	if fmt.Sprint(tewv.Lines, awp.Lines) != "[2 5 6] [3]" {
		t.Fatalf("lines %v %v, want [2 5 6] [3]", tewv.Lines, awp.Lines)
	}
	if got := fmt.Sprint(tewv.Missing); got != "[{rg01 2} {rg02 1} {swemwbs1 1}]" {
		t.Fatalf("TEWV missing %s", got)
	}
	if got := fmt.Sprint(awp.Missing); got != "[{gender 1} {rg01 1}]" {
		t.Fatalf("AWP missing %s", got)
	}
	rows, err := csv.NewReader(strings.NewReader(string(tewv.CSV))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := func(name string) int { return slices.Index(rows[0], name) }
	if rows[1][col("rg01")] != "" || rows[1][col("rg02")] != "" || rows[2][col("rg01")] != "" || rows[3][col("swemwbs1")] != "" {
		t.Fatalf("codes left as values: %q %q %q", rows[1], rows[2], rows[3])
	}
	if rows[2][col("rg03")] != "NASK" || rows[2][col("gender")] != "female" || rows[1][col("interview_date")] != "2019-01-02" {
		t.Fatalf("values changed: %q", rows[2])
	}
	if strings.Contains(string(tewv.CSV)+string(awp.CSV), "UNK") || strings.Contains(string(tewv.CSV)+string(awp.CSV), "-999") {
		t.Fatal("a missing-data code in a part")
	}
}
