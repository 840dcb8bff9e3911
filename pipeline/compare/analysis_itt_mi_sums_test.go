package compare

import (
	"math"
	"slices"
	"testing"

	"github.com/connectingpeople/cpi/stats"
)

// TestITTMISumsEqualResumming: miFits' fits of every completed data set
// (sums of the observed rows built once, the imputed responses added per
// set, the fits at ±δ from the δ = 0 sums: stats.ImputedSums) equal, to
// 1e-10, the fits of the old route, which re-sums every row of each
// completed set with δ added to the intervention arm's imputed follow-ups,
// on the MI reference frame with missing baselines made to include
// intervention participants whose follow-up is missing too (their x and
// their response both imputed and shifted), at δ = 0, ±1.5 and 0.4.
func TestITTMISumsEqualResumming(t *testing.T) {
	const m = 4
	c := miTestComparison(t, m)
	f, _ := miTestFrame(t, c.s)
	kinds := map[string]int{}
	for i := range f.rows {
		if i%23 == 3 {
			f.yBase[i] = math.NaN()
		}
		if math.IsNaN(f.yBase[i]) && i%2 == 0 {
			f.yFU[i] = math.NaN()
		}
		base, fu := math.IsNaN(f.yBase[i]), math.IsNaN(f.yFU[i])
		kinds[map[bool]string{false: "control", true: "intervention"}[f.arm[i] == 1]+map[[2]bool]string{{false, false}: "", {false, true}: ", follow-up missing", {true, false}: ", baseline missing", {true, true}: ", both missing"}[[2]bool{base, fu}]]++
	}
	for _, k := range []string{"intervention, both missing", "control, both missing", "intervention, baseline missing", "intervention, follow-up missing", "control, follow-up missing"} {
		if kinds[k] == 0 {
			t.Fatalf("no participant in the frame is %s: %v", k, kinds)
		}
	}
	deltas := []float64{0, 1.5, -1.5, 0.4}
	want := make([][]float64, len(deltas)*3)
	c.onCompleted = func(_ int, base, fu []float64) {
		g := *f
		g.yBase, g.yFU = base, fu
		d := newColDesign(&g, TermArm, f.arm, true)
		buf := make([]float64, d.k())
		for di, delta := range deltas {
			s, err := stats.NewClusterSums(d.k(), false)
			if err != nil {
				t.Fatal(err)
			}
			for i := range f.rows {
				d.row(i, buf)
				y := fu[i]
				if f.arm[i] == 1 && math.IsNaN(f.yFU[i]) {
					y += delta
				}
				if err := s.Add(int(f.cluster[i]), buf, y, 1); err != nil {
					t.Fatal(err)
				}
			}
			fit, err := stats.SuffOLS(s)
			if err != nil {
				t.Fatal(err)
			}
			cr2, err := fit.CR2()
			if err != nil {
				t.Fatal(err)
			}
			want[3*di] = append(want[3*di], cr2.Coef[1])
			want[3*di+1] = append(want[3*di+1], cr2.VCov.At(1, 1))
			want[3*di+2] = append(want[3*di+2], cr2.DF[1])
		}
	}
	fits, _, err := c.miFits(f, deltas)
	if err != nil {
		t.Fatal(err)
	}
	for di, delta := range deltas {
		got := fits[delta]
		for j, g := range [][]float64{got.q, got.u, got.df} {
			w := want[3*di+j]
			if len(g) != m || len(w) != m {
				t.Fatalf("delta %v: %d and %d fits, want %d", delta, len(g), len(w), m)
			}
			for i := range g {
				if d := math.Abs(g[i]-w[i]) / math.Abs(w[i]); !(d <= 1e-10) {
					t.Errorf("delta %v, set %d, %s: %.17g, re-summed %.17g (relative %.3g)", delta, i, []string{"estimate", "variance", "df"}[j], g[i], w[i], d)
				}
			}
		}
	}
	if slices.Equal(fits[1.5].q, fits[0].q) {
		t.Error("the estimates at delta 1.5 are those at 0")
	}
}
