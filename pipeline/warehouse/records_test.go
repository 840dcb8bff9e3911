package warehouse

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/schemas"
)

type recordsTestRow struct {
	Outcome  string  `col:"outcome"`
	Wave     string  `col:"wave"`
	Trust    string  `col:"trust"`
	Method   string  `col:"method"`
	Estimate float64 `col:"estimate"`
	NObs     int     `col:"n_obs"`
	Clusters int32   `col:"n_clusters"`
	Note     string  `col:"note"`
}

// TestRecordsRoundTrip writes records out of key order, with NaN and ""
// for nulls, and reads back the same records sorted by the table's key;
// columns without a field are null.
func TestRecordsRoundTrip(t *testing.T) {
	study, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	env := Env{Study: study, Version: "test"}
	w, err := OpenWarehouse(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	in := []recordsTestRow{
		{"rguk.total", "followup", "TEWV", "cr2_by_trust", 1.5, 30, 2, ""},
		{"qpr.total", "followup", "BDCT", "cr2_by_trust", math.NaN(), 12, 2, "not estimable"},
		{"qpr.total", "followup", "AWP", "cr2_by_trust", -0.25, 40, 2, ""},
	}
	if err := WriteRecords(env, tx, "trust_effects", in); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRecords[recordsTestRow](context.Background(), tx.Dir, "trust_effects")
	if err != nil {
		t.Fatal(err)
	}
	want := []recordsTestRow{in[2], in[1], in[0]}
	if len(got) != len(want) {
		t.Fatalf("%d rows back, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		same := g.Outcome == w.Outcome && g.Trust == w.Trust && g.NObs == w.NObs && g.Clusters == w.Clusters && g.Note == w.Note &&
			(g.Estimate == w.Estimate || math.IsNaN(g.Estimate) && math.IsNaN(w.Estimate))
		if !same {
			t.Errorf("row %d: %+v, want %+v", i, g, w)
		}
	}
	type stdErr struct {
		SE float64 `col:"std_error"`
	}
	ses, err := ReadRecords[stdErr](context.Background(), tx.Dir, "trust_effects")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ses {
		if !math.IsNaN(r.SE) {
			t.Errorf("std_error %v, want null (no field wrote it)", r.SE)
		}
	}
	type bad struct {
		X float64 `col:"no_such_column"`
	}
	if err := WriteRecords(env, tx, "trust_effects", []bad{{1}}); err == nil || !strings.Contains(err.Error(), "no column no_such_column") {
		t.Errorf("a field naming no column: %v", err)
	}
	type wrongType struct {
		Trust float64 `col:"trust"`
	}
	if _, err := ReadRecords[wrongType](context.Background(), tx.Dir, "trust_effects"); err == nil || !strings.Contains(err.Error(), "not a double column") {
		t.Errorf("a double field for a string column: %v", err)
	}
}
