package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/stats"
)

// threeWaveStudy is the bundled three-wave study: baseline, month6 and
// month12, GAS asked at month6 and month12, month12 the primary wave.
var threeWaveStudy = filepath.Join("..", "..", "testdata", "studies", "three-waves", "study.yaml")

// wavesTestRows reads the columns of a table as strings (nulls "") and
// doubles (nulls NaN), one map per row.
func wavesTestRows(t *testing.T, gen, table string, strs, nums []string) []map[string]any {
	t.Helper()
	var out []map[string]any
	err := warehouse.ScanTable(context.Background(), gen, table, func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, append(slices.Clone(strs), nums...)...)
		if err != nil {
			return err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			r := map[string]any{}
			for c, name := range strs {
				switch a := cols[c].(type) {
				case *array.String:
					r[name] = ""
					if a.IsValid(i) {
						r[name] = a.Value(i)
					}
				case *array.Dictionary:
					r[name] = ""
					if a.IsValid(i) {
						r[name] = a.Dictionary().(*array.String).Value(a.GetValueIndex(i))
					}
				case *array.Boolean:
					r[name] = "false"
					if a.IsValid(i) && a.Value(i) {
						r[name] = "true"
					}
				default:
					t.Fatalf("%s.%s: unexpected type %s", table, name, cols[c].DataType())
				}
			}
			for c, name := range nums {
				v := math.NaN()
				switch a := cols[len(strs)+c].(type) {
				case *array.Float64:
					if a.IsValid(i) {
						v = a.Value(i)
					}
				case *array.Int32:
					if a.IsValid(i) {
						v = float64(a.Value(i))
					}
				case *array.Int64:
					if a.IsValid(i) {
						v = float64(a.Value(i))
					}
				default:
					t.Fatalf("%s.%s: unexpected type %s", table, name, cols[len(strs)+c].DataType())
				}
				r[name] = v
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return out
}

// TestThreeWaveStudyEndToEnd runs a three-wave study as a user would,
// `cpi synth --study FILE --canonical` then `cpi run --study FILE`, and
// checks: scores at all three waves; flow stages recruited, one per wave,
// withdrawn, lost; the primary effect of every outcome estimated at month6
// and at month12, each equal to an independent recomputation (OLS of the
// outcome at that wave on arm, its baseline and trust, CR2 by team, built
// here from the scores and participants tables with the dense stats
// functions); both waves in the study report.
func TestThreeWaveStudyEndToEnd(t *testing.T) {
	dir := t.TempDir()
	x, w := filepath.Join(dir, "x"), filepath.Join(dir, "w")
	if code, _, stderr := cli(t, "synth", "--study", threeWaveStudy, "--canonical", "--out", x, "--quiet"); code != 0 {
		t.Fatalf("synth: exit %d: %s", code, stderr)
	}
	if code, out, stderr := cli(t, "run", "--study", threeWaveStudy, "--warehouse", w, "--inbox", x); code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, stderr)
	}
	wh, err := warehouse.OpenWarehouse(w, false)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := wh.CurrentDir()
	if err != nil {
		t.Fatal(err)
	}

	// Scores at every wave.
	scores := wavesTestRows(t, gen, "scores", []string{"study_id", "wave", "instrument", "scale"}, []string{"value"})
	perWave := map[string]int{}
	for _, r := range scores {
		perWave[r["wave"].(string)]++
	}
	for _, wv := range []string{"baseline", "month6", "month12"} {
		if perWave[wv] == 0 {
			t.Errorf("no scores at %s (%v)", wv, perWave)
		}
	}
	if len(perWave) != 3 {
		t.Errorf("scores at waves %v, want baseline, month6, month12", perWave)
	}

	// Flow stages per wave, adding up per trust and arm.
	flow := wavesTestRows(t, gen, "flow", []string{"trust", "arm", "stage"}, []string{"n"})
	stages := map[string]bool{}
	byGroup := map[string]map[string]float64{}
	for _, r := range flow {
		stages[r["stage"].(string)] = true
		k := r["trust"].(string) + "/" + r["arm"].(string)
		if byGroup[k] == nil {
			byGroup[k] = map[string]float64{}
		}
		byGroup[k][r["stage"].(string)] = r["n"].(float64)
	}
	for _, st := range []string{"recruited", "baseline", "month6", "month12", "withdrawn", "lost", "analysed", "analysed_itt"} {
		if !stages[st] {
			t.Errorf("flow has no stage %s (has %v)", st, stages)
		}
	}
	if len(stages) != 8 {
		t.Errorf("flow stages %v, want 8", stages)
	}
	for k, c := range byGroup {
		// Analysed at the primary wave (month12): at most those
		// interviewed then; the ITT population is those and the lost.
		if c["analysed"] > c["month12"] || c["analysed_itt"] != c["month12"]+c["lost"] {
			t.Errorf("%s: analysed %v, analysed_itt %v against month12 %v and lost %v", k, c["analysed"], c["analysed_itt"], c["month12"], c["lost"])
		}
		if c["baseline"] != c["month12"]+c["withdrawn"]+c["lost"] || c["month12"] > c["month6"] || c["month6"] > c["baseline"] || c["baseline"] > c["recruited"] {
			t.Errorf("%s: flow does not add up: %v", k, c)
		}
	}

	// The primary effects at month6 and month12 against a recomputation.
	parts := wavesTestRows(t, gen, "participants", []string{"study_id", "trust", "team", "arm", "withdrawn"}, nil)
	person := map[string]map[string]any{}
	var trusts []string
	for _, p := range parts {
		person[p["study_id"].(string)] = p
		if !slices.Contains(trusts, p["trust"].(string)) {
			trusts = append(trusts, p["trust"].(string))
		}
	}
	slices.Sort(trusts)
	value := map[[3]string]float64{} // study_id, wave, outcome
	for _, r := range scores {
		value[[3]string{r["study_id"].(string), r["wave"].(string), r["instrument"].(string) + "." + r["scale"].(string)}] = r["value"].(float64)
	}
	effects := wavesTestRows(t, gen, "effects", []string{"analysis", "outcome", "wave", "method", "term", "note"}, []string{"estimate", "std_error", "df", "n_obs"})
	checked := map[string]int{}
	for _, e := range effects {
		if e["analysis"] != "primary" || e["method"] != "cr2" {
			continue
		}
		o, wv := e["outcome"].(string), e["wave"].(string)
		if wv == "baseline" {
			t.Errorf("%s: an effect at the baseline wave", o)
			continue
		}
		hasBase := o != "gas.t"
		var rows [][]float64
		var y []float64
		var teams []string
		for _, id := range slices.Sorted(func(yield func(string) bool) {
			for id := range person {
				if !yield(id) {
					return
				}
			}
		}) {
			p := person[id]
			if p["withdrawn"] == "true" {
				continue
			}
			yw, ok := value[[3]string{id, wv, o}]
			if !ok || math.IsNaN(yw) {
				continue
			}
			row := []float64{1, 0}
			if p["arm"] == "intervention" {
				row[1] = 1
			}
			if hasBase {
				yb, ok := value[[3]string{id, "baseline", o}]
				if !ok || math.IsNaN(yb) {
					continue
				}
				row = append(row, yb)
			}
			for _, tr := range trusts[1:] {
				d := 0.0
				if p["trust"] == tr {
					d = 1
				}
				row = append(row, d)
			}
			rows = append(rows, row)
			y = append(y, yw)
			teams = append(teams, p["team"].(string))
		}
		if float64(len(y)) != e["n_obs"].(float64) {
			t.Errorf("%s at %s: n_obs %v, recomputed %d", o, wv, e["n_obs"], len(y))
			continue
		}
		if math.IsNaN(e["estimate"].(float64)) {
			t.Errorf("%s at %s: no estimate (%s)", o, wv, e["note"])
			continue
		}
		xm := mat.NewDense(len(rows), len(rows[0]), nil)
		for i, r := range rows {
			xm.SetRow(i, r)
		}
		fit, err := stats.OLS(xm, y, nil)
		if err != nil {
			t.Fatalf("%s at %s: %v", o, wv, err)
		}
		codes, _ := stats.Codes(teams)
		cr2, err := fit.CR2(codes)
		if err != nil {
			t.Fatalf("%s at %s: %v", o, wv, err)
		}
		want := cr2.Test(1, 0.95)
		for name, pair := range map[string][2]float64{
			"estimate":  {e["estimate"].(float64), want.Estimate},
			"std_error": {e["std_error"].(float64), want.StdError},
			"df":        {e["df"].(float64), want.DF},
		} {
			if rel := math.Abs(pair[0]-pair[1]) / math.Max(math.Abs(pair[1]), 1e-12); rel > 1e-8 {
				t.Errorf("%s at %s: %s %v, recomputed %v (relative difference %.2g)", o, wv, name, pair[0], pair[1], rel)
			}
		}
		checked[wv]++
	}
	t.Logf("primary CR2 effects recomputed: %v", checked)
	if checked["month6"] < 8 || checked["month12"] < 8 {
		t.Errorf("primary CR2 effects checked per wave: %v, want every outcome at month6 and month12", checked)
	}

	// The study report shows every wave.
	page, err := os.ReadFile(filepath.Join(w, "reports", "study-report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Interviewed at month6", "Interviewed at month12", "month12 (the primary wave)", "month12 (primary)"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the study report does not mention %q", want)
		}
	}
}
