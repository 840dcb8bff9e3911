package pipeline

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/connectingpeople/cpi/pipeline/compare"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// compareTestScaled resamples the R reference participants into n
// participants of the same teams: covariates of a random reference
// participant, the outcome with noise (baseline on a 0.1 grid, as scores
// are), a few withdrawn, lost at follow-up or without a covariate, so that
// every reason to drop someone occurs.
func compareTestScaled(t testing.TB, ps []compareTestParticipant, n int, seed uint64) []compareTestParticipant {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 14))
	out := make([]compareTestParticipant, n)
	for i := range out {
		p := ps[rng.IntN(len(ps))]
		p.id = fmt.Sprintf("%s-S%06d", p.trust, i)
		p.yBase = math.Round(10*(p.yBase+rng.NormFloat64())) / 10 // −0 too
		p.yFU += 2 * rng.NormFloat64()
		switch u := rng.Float64(); {
		case u < 0.02:
			p.withdrawn = true
		case u < 0.06:
			p.interviewF, p.yFU = false, math.NaN()
		case u < 0.08:
			p.gender = ""
		}
		out[i] = p
	}
	return out
}

// compareTestCells reads every cell of a table as text, floats to 17
// digits, and the floats themselves (NaN for null or text).
func compareTestCells(t testing.TB, dir, table string) (cells [][]string, nums [][]float64) {
	t.Helper()
	err := warehouse.ScanTable(context.Background(), dir, table, func(rec arrow.RecordBatch) error {
		for i := 0; i < int(rec.NumRows()); i++ {
			var row []string
			var num []float64
			for c := 0; c < int(rec.NumCols()); c++ {
				col := rec.Column(c)
				v := math.NaN()
				switch {
				case col.IsNull(i):
					row = append(row, "null")
				default:
					if f, ok := col.(*array.Float64); ok {
						v = f.Value(i)
						row = append(row, "float")
					} else {
						row = append(row, col.ValueStr(i))
					}
				}
				num = append(num, v)
			}
			cells = append(cells, row)
			nums = append(nums, num)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cells, nums
}

// TestCompareSuffMatchesDense runs the comparison stage on 10,000
// participants twice — every analysis from the sufficient statistics, and
// every analysis by the dense route (N × K design matrices and the
// row-wise stats functions, the stage as it was before issue 14) — and
// requires the same tables: the same rows, notes, counts and nulls, and
// every number equal to 1e-10 relative. The baseline on a 0.1 grid gives
// fewer covariate patterns than the cell route's threshold: the
// propensity model is fitted from the pattern counts.
func TestCompareSuffMatchesDense(t *testing.T) {
	env := compareTestEnv(t)
	ref, high := compareTestAncova(t)
	compareSuffMatchesDense(t, env, compareTestScaled(t, ref, 10_000, 1), high, false)
}

// TestCompareSuffMatchesDenseCells is TestCompareSuffMatchesDense with a
// continuous baseline (the grid's values plus uniform noise below 0.05):
// every participant is a covariate pattern of their own, and the
// propensity model is fitted from cell sums (stats.LogisticCells), as for
// costs at national scale.
func TestCompareSuffMatchesDenseCells(t *testing.T) {
	env := compareTestEnv(t)
	ref, high := compareTestAncova(t)
	ps := compareTestScaled(t, ref, 10_000, 3)
	rng := rand.New(rand.NewPCG(3, 15))
	for i := range ps {
		ps[i].yBase += 0.05 * rng.Float64()
	}
	compareSuffMatchesDense(t, env, ps, high, true)
}

// compareSuffMatchesDense compares the two routes on ps; cells says
// whether the propensity model must be fitted from cell sums (else from
// pattern counts).
func compareSuffMatchesDense(t *testing.T, env warehouse.Env, ps []compareTestParticipant, high map[string]int, cells bool) {
	t.Helper()
	run := func(dense bool) string {
		compare.CompareDense = dense
		defer func() { compare.CompareDense = false }()
		return compareTestRun(t, env, ps, compareTestBands(high))
	}
	fallbacks, cellFits := compare.ComparePatternFallbacks.Load(), compare.CompareCellFits.Load()
	suff := run(false)
	if n := compare.ComparePatternFallbacks.Load() - fallbacks; n > 0 {
		t.Errorf("%d propensity models fitted from the rows, want every one from the covariate patterns", n)
	}
	if n := compare.CompareCellFits.Load() - cellFits; (n > 0) != cells {
		t.Errorf("%d propensity models fitted from cell sums, want them fitted from cell sums: %v", n, cells)
	}
	dense := run(true)
	fitted := 0
	estimate := warehouse.ColIndex(env.Study.Tables.Table("effects"), "estimate")
	for _, table := range []string{"effects", "balance", "flow"} {
		sc, sn := compareTestCells(t, suff, table)
		dc, dn := compareTestCells(t, dense, table)
		if len(sc) != len(dc) || len(sc) == 0 {
			t.Fatalf("%s: %d rows from the sums, %d dense", table, len(sc), len(dc))
		}
		worst := 0.0
		for i := range sc {
			if !slices.Equal(sc[i], dc[i]) {
				t.Errorf("%s row %d: %q from the sums, %q dense", table, i, sc[i], dc[i])
				continue
			}
			for j, a := range sn[i] {
				b := dn[i][j]
				if math.IsNaN(a) && math.IsNaN(b) {
					continue
				}
				if table == "effects" && j == estimate {
					fitted++
				}
				rel := math.Abs(a-b) / math.Max(math.Abs(a), math.Abs(b))
				if a == b {
					rel = 0
				}
				worst = math.Max(worst, rel)
				if !(rel <= 1e-10) {
					t.Errorf("%s row %d %v column %d: %v from the sums, %v dense (relative difference %.3g)", table, i, sc[i][:2], j, a, b, rel)
				}
			}
		}
		t.Logf("%s: %d rows, worst relative difference %.3g", table, len(sc), worst)
	}
	// rguk.total is fitted by every analysis: primary (2 rows), wild,
	// mixed, change, weighted, fidelity_dose, itt_mi, itt_delta (the
	// mixed model's icc row has a null estimate).
	if fitted != 9 {
		t.Errorf("%d estimates, want the 9 of rguk.total", fitted)
	}
}

// TestOutcomeValues: values are kept exactly, coded while there are few
// distinct ones and as they are after the 65,535th.
func TestOutcomeValues(t *testing.T) {
	const n = 80_000
	var v compare.OutcomeValues
	v.Init(n)
	want := make([]float64, n)
	for i := range want {
		want[i] = math.NaN()
		if i%7 == 3 {
			continue
		}
		want[i] = float64(i%1000) / 10
		v.Set(i, want[i])
	}
	if v.Raw != nil || len(v.Table) != 1000 {
		t.Fatalf("coded: raw %v, %d values", v.Raw != nil, len(v.Table))
	}
	for i := range want {
		if i%7 != 3 {
			want[i] = float64(i) + 0.5
			v.Set(i, want[i])
		}
	}
	if v.Raw == nil {
		t.Fatal("69,000 distinct values still coded")
	}
	for i, w := range want {
		if got := v.At(i); got != w && !(math.IsNaN(got) && math.IsNaN(w)) {
			t.Fatalf("value %d: %v, want %v", i, got, w)
		}
	}
}

// BenchmarkCompare runs the comparison stage on 100,000 participants
// (rguk.total, every analysis of the plan): from the sufficient statistics
// (sums) and, for comparison, by the dense route (dense: N × K designs, as
// before issue 14, on the same column frames).
func BenchmarkCompare(b *testing.B) {
	study := compareTestEnv(b)
	ref, high := compareTestAncova(b)
	ps := compareTestScaled(b, ref, 100_000, 2)
	w, err := warehouse.OpenWarehouse(b.TempDir(), true)
	if err != nil {
		b.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		b.Fatal(err)
	}
	compareTestWrite(b, study, tx, ps)
	compareTestWriteFidelity(b, study, tx, compareTestBands(high))
	for _, dense := range []bool{false, true} {
		name := "sums"
		if dense {
			name = "dense"
		}
		b.Run(name, func(b *testing.B) {
			compare.CompareDense = dense
			defer func() { compare.CompareDense = false }()
			for range b.N {
				if err := compare.Compare(context.Background(), study, tx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
