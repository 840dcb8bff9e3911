package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// responseRows are rows of a model with an intercept, a dummy, a
// continuous column and a second dummy, in 7 clusters, the responses far
// from 0 (a questionnaire total), across several 512-row blocks.
type responseRow struct {
	x    []float64
	y, w float64
	cl   int
}

func responseRows(n int, seed uint64) []responseRow {
	rng := rand.New(rand.NewPCG(seed, 3))
	rows := make([]responseRow, n)
	for i := range rows {
		x := []float64{1, float64(i % 2), 10 + 3*rng.NormFloat64(), 0}
		if i%5 == 0 {
			x[3] = 1
		}
		rows[i] = responseRow{x, 40 + x[1] + 0.5*x[2] + 4*rng.NormFloat64(), 0.5 + rng.Float64(), (i * 7 / n) ^ (i % 2)}
	}
	return rows
}

// sumsClose compares two sums accumulator by accumulator (after flushing):
// every entry within tol of the other, relative to the largest entry of
// its array.
func sumsClose(t *testing.T, what string, a, b *ClusterSums, tol float64) {
	t.Helper()
	if a.N() != b.N() || len(a.cl) != len(b.cl) {
		t.Fatalf("%s: %d rows in %d clusters against %d in %d", what, a.N(), len(a.cl), b.N(), len(b.cl))
	}
	worst := 0.0
	for c := range a.cl {
		x, y := a.cl[c], b.cl[c]
		if (x == nil) != (y == nil) {
			t.Fatalf("%s: cluster %d present in one only", what, c)
		}
		if x == nil {
			continue
		}
		x.flush()
		y.flush()
		if x.n != y.n || math.Abs(x.sw-y.sw) > tol*math.Abs(x.sw) || math.Abs(x.sw2-y.sw2) > tol*math.Abs(x.sw2) {
			t.Errorf("%s: cluster %d: counts %d, %v, %v against %d, %v, %v", what, c, x.n, x.sw, x.sw2, y.n, y.sw, y.sw2)
		}
		for _, pair := range [][2][]float64{{x.zz, y.zz}, {x.sz, y.sz}, {x.zwz, y.zwz}, {x.zw2z, y.zw2z}, {x.swz, y.swz}, {x.sw2z, y.sw2z}} {
			if len(pair[0]) != len(pair[1]) {
				t.Fatalf("%s: cluster %d: arrays of %d and %d", what, c, len(pair[0]), len(pair[1]))
			}
			scale := 0.0
			for _, v := range pair[1] {
				scale = max(scale, math.Abs(v))
			}
			for i, v := range pair[0] {
				if d := math.Abs(v-pair[1][i]) / scale; d > worst {
					worst = d
				}
			}
		}
	}
	if worst > tol {
		t.Errorf("%s: largest relative difference of the sums %.3g, want ≤ %.0g", what, worst, tol)
	}
}

// fitsClose compares the OLS (and, weighted, WLS) CR2 fits of two sums:
// coefficients, the arm coefficient's variance and its Satterthwaite df.
func fitsClose(t *testing.T, what string, a, b *ClusterSums, tol float64) {
	t.Helper()
	fit := func(s *ClusterSums) []float64 {
		f, err := SuffOLS(s)
		if err != nil {
			t.Fatal(err)
		}
		cr2, err := f.CR2()
		if err != nil {
			t.Fatal(err)
		}
		return append(append([]float64(nil), cr2.Coef...), cr2.VCov.At(1, 1), cr2.DF[1], f.Sigma)
	}
	fa, fb := fit(a), fit(b)
	for i := range fa {
		if d := math.Abs(fa[i]-fb[i]) / max(math.Abs(fb[i]), 1e-300); d > tol {
			t.Errorf("%s: fit value %d is %.17g, want %.17g (relative %.3g)", what, i, fa[i], fb[i], d)
		}
	}
}

// TestClusterSumsShiftResponse: δ added to the responses of a subset of
// rows (the odd ones, "intervention", in every cluster) through
// ShiftResponse from the subset's per-cluster sums equals the sums of the
// rows added with y + δ to 1e-12 and their fits to 1e-10, at several δ of
// either sign; δ = 0 and a cluster with none of the rows change nothing;
// weighted sums are refused.
func TestClusterSumsShiftResponse(t *testing.T) {
	rows := responseRows(2500, 9)
	const k = 4
	shifted := func(i int) bool { return i%2 == 1 && i%7 != 0 }
	for _, delta := range []float64{0, 0.37, -2.5, 11} {
		want, _ := NewClusterSums(k, false)
		base, _ := NewClusterSums(k, false)
		n := map[int]int{}
		sumX := map[int][]float64{}
		sumY := map[int]float64{}
		for i, r := range rows {
			y := r.y
			if shifted(i) {
				y += delta
				n[r.cl]++
				if sumX[r.cl] == nil {
					sumX[r.cl] = make([]float64, k)
				}
				for j, v := range r.x {
					sumX[r.cl][j] += v
				}
				sumY[r.cl] += r.y
			}
			if err := want.Add(r.cl, r.x, y, 1); err != nil {
				t.Fatal(err)
			}
			if err := base.Add(r.cl, r.x, r.y, 1); err != nil {
				t.Fatal(err)
			}
		}
		got := base.Clone()
		for c := range got.cl {
			if sumX[c] == nil {
				sumX[c] = make([]float64, k)
			}
			if err := got.ShiftResponse(c, n[c], sumX[c], sumY[c], delta); err != nil {
				t.Fatal(err)
			}
		}
		sumsClose(t, "shifted", got, want, 1e-12)
		fitsClose(t, "shifted", got, want, 1e-10)
	}
	w, _ := NewClusterSums(k, true)
	_ = w.Add(0, rows[0].x, 1, 1)
	if err := w.ShiftResponse(0, 1, rows[0].x, 1, 1); err == nil {
		t.Error("weighted sums were shifted")
	}
	u, _ := NewClusterSums(k, false)
	_ = u.Add(0, rows[0].x, 1, 1)
	if err := u.ShiftResponse(0, 2, rows[0].x, 1, 1); err == nil {
		t.Error("a shift of more rows than the cluster has was accepted")
	}
	if err := u.ShiftResponse(0, 1, rows[0].x, 1, math.Inf(1)); err == nil {
		t.Error("an infinite shift was accepted")
	}
}

// TestImputedSums: three completed sets of rows of three kinds (observed;
// x observed and response imputed; one x column and the response
// imputed, added by AddPartial and Partials), half
// of the imputed responses shifted by δ: At(δ) equals the sums of every row added by Add
// (y + δ for the shifted rows) to 1e-12, and their fits to 1e-10, at
// δ = 0 and δ of either sign, each set built on the same base; calls out
// of order are refused.
func TestImputedSums(t *testing.T) {
	const k = 4
	rows := responseRows(6000, 13)
	for i := range rows {
		rows[i].cl = i % 3                // over 512 fixed rows a team: Responses sums them in blocks
		rows[i].x[1] = float64(i % 3 % 2) // constant within a team, 1 in team 1
	}
	rng := rand.New(rand.NewPCG(13, 17))
	kind := func(i int) int { return []int{0, 0, 1, 1, 1, 3, 0, 3, 1, 3}[i%10] } // 0 observed, 1 fixed x, 3 x's column 2 imputed
	shifted := func(i int) bool { return kind(i) != 0 && rows[i].x[1] == 1 }
	m, err := NewImputedSums(k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.At(0); err == nil {
		t.Error("At before Begin was accepted")
	}
	var fixed, partial []int
	order := make([]int, len(rows)) // the imputed rows team by team, as itt_mi adds them
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return rows[a].cl - rows[b].cl })
	for _, i := range order {
		r := rows[i]
		switch kind(i) {
		case 0:
			err = m.AddObserved(r.cl, r.x, r.y)
		case 1:
			fixed = append(fixed, i)
			err = m.AddFixed(r.cl, r.x, shifted(i))
		case 3:
			partial = append(partial, i)
			err = m.AddPartial(r.cl, []float64{1, r.x[1], math.NaN(), r.x[3]}, 2, shifted(i))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for set := 0; set < 3; set++ {
		// This set's imputed responses, and imputed x for kind 3.
		y := make([]float64, len(rows))
		x := make([][]float64, len(rows))
		for i, r := range rows {
			y[i], x[i] = r.y, r.x
			if kind(i) != 0 {
				y[i] = 40 + 4*rng.NormFloat64()
			}
			if kind(i) >= 2 {
				x[i] = []float64{1, r.x[1], 10 + 3*rng.NormFloat64(), r.x[3]}
			}
		}
		m.Begin()
		if set == 1 {
			// ResponsesAt and PartialsAt: the values read in place, by
			// position (here the rows' own indices).
			pf, pp := make([]int32, len(fixed)), make([]int32, len(partial))
			for j, i := range fixed {
				pf[j] = int32(i)
			}
			xAll := make([]float64, len(rows))
			for j, i := range partial {
				pp[j] = int32(i)
			}
			for i := range rows {
				xAll[i] = x[i][2]
			}
			if err := m.ResponsesAt(y, pf); err != nil {
				t.Fatal(err)
			}
			if err := m.PartialsAt(xAll, y, pp); err != nil {
				t.Fatal(err)
			}
			pf[0] = int32(len(y))
			if err := m.ResponsesAt(y, pf); err == nil {
				t.Error("a position beyond the values was accepted")
			}
			pf[0] = int32(fixed[0])
		} else {
			yf := make([]float64, len(fixed))
			for j, i := range fixed {
				yf[j] = y[i]
			}
			if err := m.Responses(yf); err != nil {
				t.Fatal(err)
			}
			xp, yp := make([]float64, len(partial)), make([]float64, len(partial))
			for j, i := range partial {
				xp[j], yp[j] = x[i][2], y[i]
			}
			if err := m.Partials(xp, yp); err != nil {
				t.Fatal(err)
			}
		}
		for _, delta := range []float64{0, 1.7, -6} {
			want, _ := NewClusterSums(k, false)
			for i, r := range rows {
				yi := y[i]
				if shifted(i) {
					yi += delta
				}
				if err := want.Add(r.cl, x[i], yi, 1); err != nil {
					t.Fatal(err)
				}
			}
			got, err := m.At(delta)
			if err != nil {
				t.Fatal(err)
			}
			sumsClose(t, "imputed", got, want, 1e-12)
			fitsClose(t, "imputed", got, want, 1e-10)
		}
	}
	if err := m.Responses(make([]float64, len(fixed)-1)); err == nil {
		t.Error("too few responses were accepted")
	}
	if err := m.AddObserved(0, rows[0].x, 1); err == nil {
		t.Error("an observed row after Begin was accepted")
	}
}

// TestImputedSumsGrow: after Grow, adding that many fixed rows allocates
// nothing (without it the rows' slices grow by copying).
func TestImputedSumsGrow(t *testing.T) {
	for _, grow := range []bool{true, false} {
		m, err := NewImputedSums(3)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.AddObserved(0, []float64{1, 2, 3}, 4); err != nil {
			t.Fatal(err)
		}
		if grow {
			m.Grow(1000, 0)
		}
		x := []float64{1, 0, 0}
		allocs := testing.AllocsPerRun(1, func() {
			for i := range 400 {
				x[2] = float64(i)
				if err := m.AddFixed(0, x, i%2 == 0); err != nil {
					t.Fatal(err)
				}
			}
		})
		if grow && allocs != 0 {
			t.Errorf("after Grow: %v allocations for 400 rows, want 0", allocs)
		}
		if !grow && allocs == 0 {
			t.Error("without Grow: no allocation for 400 rows (the test does not see growth)")
		}
	}
}
