package score

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// reliabilityTestRow is one reliability row read back; nulls are NaN and "".
type reliabilityTestRow struct {
	n, items                int32
	alpha, low, high, pctNA float64
	negative                string
}

func reliabilityTestRead(t *testing.T, dir string) (map[string]reliabilityTestRow, []string) {
	t.Helper()
	out := map[string]reliabilityTestRow{}
	var order []string
	err := warehouse.ScanTable(context.Background(), dir, "reliability", func(rec arrow.RecordBatch) error {
		c, err := warehouse.Columns(rec, "instrument", "scale", "wave", "trust", "n", "items", "alpha", "alpha_ci_low", "alpha_ci_high", "items_missing_pct", "negative_items")
		if err != nil {
			return err
		}
		f := func(k, i int) float64 {
			if c[k].IsNull(i) {
				return math.NaN()
			}
			return c[k].(*array.Float64).Value(i)
		}
		s := func(k, i int) string {
			if c[k].IsNull(i) {
				return ""
			}
			return c[k].(*array.String).Value(i)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			key := s(0, i) + " " + s(1, i) + " " + s(2, i) + " " + s(3, i)
			order = append(order, key)
			out[key] = reliabilityTestRow{
				n: c[4].(*array.Int32).Value(i), items: c[5].(*array.Int32).Value(i),
				alpha: f(6, i), low: f(7, i), high: f(8, i), pctNA: f(9, i), negative: s(10, i),
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, order
}

func reliabilityTestRel(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Abs(want)
}

// psych::alpha's figures for testdata/reference/alpha.csv (240 × 7
// SWEMWBS items, R 4.2, psych 2.2.9: testdata/reference/expected.json),
// fed through the responses table as one wave of one trust.
func TestReliabilityAgainstPsych(t *testing.T) {
	env := scoreTestEnv(t)
	f, err := os.Open(filepath.Join("..", "..", "testdata", "reference", "alpha.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var rows []scoreTestRow
	for i, rec := range recs[1:] {
		vals := make([]int32, len(rec))
		for j, s := range rec {
			v, err := strconv.Atoi(s)
			if err != nil {
				t.Fatal(err)
			}
			vals[j] = int32(v)
		}
		rows = append(rows, scoreTestAnswers(t, env.Study, fmt.Sprintf("AWP-r%03d", i), "baseline", "swemwbs", vals...)...)
	}
	tx := scoreTestRun(t, env, rows)
	got, order := reliabilityTestRead(t, tx.Dir)
	for _, k := range []string{"swemwbs total baseline AWP", "swemwbs total baseline ALL"} {
		r, ok := got[k]
		if !ok {
			t.Fatalf("no row %s", k)
		}
		if r.n != 240 || r.items != 7 || r.negative != "" || r.pctNA != 0 {
			t.Errorf("%s: %+v", k, r)
		}
		// Tolerances of testdata/reference/README.md: alpha 1e-8, limits 1e-6.
		if !reliabilityTestRel(r.alpha, 0.866595135721883, 1e-8) ||
			!reliabilityTestRel(r.low, 0.839127559492089, 1e-6) ||
			!reliabilityTestRel(r.high, 0.890868342210954, 1e-6) {
			t.Errorf("%s: alpha %.15g [%.15g, %.15g]", k, r.alpha, r.low, r.high)
		}
	}
	// Other trusts: no cases, the row is still there with alpha null.
	if r := got["swemwbs total baseline BDCT"]; r.n != 0 || !math.IsNaN(r.alpha) || !math.IsNaN(r.pctNA) {
		t.Errorf("BDCT: %+v", r)
	}
	// 4 reliability scales (qpr, rguk, swemwbs and ucla3 totals) × 2 waves ×
	// (5 trusts + ALL), in key order.
	if len(order) != 48 {
		t.Errorf("%d rows, want 48", len(order))
	}
	if order[0] != "qpr total baseline ALL" || order[1] != "qpr total baseline AWP" || order[6] != "qpr total followup ALL" || order[47] != "ucla3 total followup TEWV" {
		t.Errorf("order %v", order)
	}
	if _, ok := got["swemwbs metric baseline ALL"]; ok {
		t.Error("a scale without reliability: true has a row")
	}
}

// A small matrix worked out by hand: UCLA-3 cases (1,1,3), (2,3,2),
// (3,3,1), (3,2,1).
//
//	item sums of squares about the mean: 2.75 each (variances 11/12);
//	totals 5, 7, 7, 6: sum of squares 2.75 (variance 11/12);
//	alpha = 3/2 · (1 − 3·(11/12)/(11/12)) = −3.
//	ucla1 vs ucla2+ucla3 = (4, 5, 4, 3): cross-products −1 → negative;
//	ucla2 vs ucla1+ucla3 = (4, 4, 4, 4): constant → undefined, not negative;
//	ucla3 vs ucla1+ucla2 = (2, 5, 6, 5): cross-products −4.5 → negative.
//
// One more BDCT interview answers one UCLA item (2 blanks) and one answers
// no UCLA item (not counted): 2 blanks of 5 × 3 answers = 13.33%.
// TEWV has two complete cases: alpha null.
func TestReliabilityByHand(t *testing.T) {
	env := scoreTestEnv(t)
	const B = scoreTestBlank
	var rows []scoreTestRow
	add := func(id string, v ...int32) {
		rows = append(rows, scoreTestAnswers(t, env.Study, id, "followup", "ucla3", v...)...)
	}
	add("BDCT-a", 1, 1, 3)
	add("BDCT-b", 2, 3, 2)
	add("BDCT-c", 3, 3, 1)
	add("BDCT-d", 3, 2, 1)
	add("BDCT-e", B, 2, B)
	add("BDCT-f", B, B, B)
	rows = append(rows, scoreTestAnswers(t, env.Study, "BDCT-f", "followup", "eq5d5l", 1, 1, 1, 1, 1, 90)...)
	add("TEWV-a", 1, 2, 3)
	add("TEWV-b", 2, 2, 2)

	tx := scoreTestRun(t, env, rows)
	got, _ := reliabilityTestRead(t, tx.Dir)
	b := got["ucla3 total followup BDCT"]
	if b.n != 4 || b.items != 3 || math.Abs(b.alpha-(-3)) > 1e-12 || b.negative != "ucla1 ucla3" ||
		math.Abs(b.pctNA-100*2.0/15) > 1e-12 || math.IsNaN(b.low) || math.IsNaN(b.high) {
		t.Errorf("BDCT: %+v", b)
	}
	tw := got["ucla3 total followup TEWV"]
	if tw.n != 2 || !math.IsNaN(tw.alpha) || !math.IsNaN(tw.low) || tw.negative != "" || tw.pctNA != 0 {
		t.Errorf("TEWV: %+v", tw)
	}
	// Pooled: 6 complete cases; 2 blanks of 7 × 3 answers.
	all := got["ucla3 total followup ALL"]
	if all.n != 6 || math.IsNaN(all.alpha) || math.Abs(all.pctNA-100*2.0/21) > 1e-12 {
		t.Errorf("ALL: %+v", all)
	}
	// Nobody answered at baseline: no interviews, percentage null.
	if r := got["ucla3 total baseline ALL"]; r.n != 0 || !math.IsNaN(r.pctNA) || !math.IsNaN(r.alpha) {
		t.Errorf("baseline: %+v", r)
	}
}

// A total score that does not vary gives a null alpha, the row still
// written.
func TestReliabilityNoVariance(t *testing.T) {
	env := scoreTestEnv(t)
	var rows []scoreTestRow
	for _, id := range []string{"HPFT-a", "HPFT-b", "HPFT-c"} {
		rows = append(rows, scoreTestAnswers(t, env.Study, id, "baseline", "ucla3", 2, 2, 2)...)
	}
	tx := scoreTestRun(t, env, rows)
	got, _ := reliabilityTestRead(t, tx.Dir)
	if r := got["ucla3 total baseline HPFT"]; r.n != 3 || !math.IsNaN(r.alpha) || r.pctNA != 0 {
		t.Errorf("%+v", r)
	}
}
