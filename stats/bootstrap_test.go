package stats

import (
	"flag"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

var long = flag.Bool("stats.long", false, "run the long Monte Carlo checks")

func TestWildBootstrapReference(t *testing.T) {
	ref := loadReference(t)
	d := loadAncova(t)
	x := d.design(d.arm, d.yBase)
	cfg := WildConfig{Draws: 9999, Level: 0.95}
	r1, err := WildClusterBootstrap(x, d.yFu, nil, d.teamCode, 1, cfg, rand.New(rand.NewPCG(20181, 1)))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := WildClusterBootstrap(x, d.yFu, nil, d.teamCode, 1, cfg, rand.New(rand.NewPCG(20181, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if r1 != r2 {
		t.Errorf("same seed, different results: %+v vs %+v", r1, r2)
	}
	// The unrestricted estimate and CR1 standard error are R's.
	checkRel(t, "wild estimate", r1.Estimate, ref.CR1.Estimate, tolEst)
	checkRel(t, "wild CR1 se", r1.StdError, ref.CR1.StdError, tolEst)
	// R: CR1 p = 0.118 (t, 9 df), CR2 p = 0.307. The bootstrap p-value must
	// lie in the same region, not at 0 or 1.
	if r1.PValue < 0.05 || r1.PValue > 0.5 {
		t.Errorf("wild bootstrap p = %v, expected between 0.05 and 0.5 (CR1 %v, CR2 %v)", r1.PValue, ref.CR1.PValue, ref.CR2.PValue)
	}
	if !(r1.CILow < ref.CR1.Estimate && ref.CR1.Estimate < r1.CIHigh && r1.CILow < 0) {
		t.Errorf("wild CI [%v, %v] should contain the estimate %v and 0", r1.CILow, r1.CIHigh, ref.CR1.Estimate)
	}
	// The interval limits are where the p-value crosses 0.05.
	t.Logf("wild bootstrap: t = %.4f, p = %.4f, CI [%.4f, %.4f]; CR1 p %.4f CI [%.4f, %.4f]; CR2 p %.4f CI [%.4f, %.4f]",
		r1.T, r1.PValue, r1.CILow, r1.CIHigh, ref.CR1.PValue, ref.CR1.CILow, ref.CR1.CIHigh, ref.CR2.PValue, ref.CR2.CILow, ref.CR2.CIHigh)
	r3, err := WildClusterBootstrap(x, d.yFu, nil, d.teamCode, 1, WildConfig{Draws: 9999}, rand.New(rand.NewPCG(7, 7)))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r3.PValue-r1.PValue) > 0.03 || !math.IsNaN(r3.CILow) {
		t.Errorf("other seed: p = %v (first seed %v), CI low %v (want NaN without Level)", r3.PValue, r1.PValue, r3.CILow)
	}
}

// TestWildBootstrapNullRejection simulates data under H0 (no arm effect,
// cluster random effects, arm assigned to 5 of 10 clusters) and checks the
// 5% rejection rate.
func TestWildBootstrapNullRejection(t *testing.T) {
	reps, draws := 300, 199
	if *long {
		reps, draws = 2000, 399
	}
	rng := rand.New(rand.NewPCG(42, 2018))
	const G, m = 10, 15
	n := G * m
	rejections := 0
	for r := 0; r < reps; r++ {
		x := mat.NewDense(n, 3, nil)
		y := make([]float64, n)
		cl := make([]int, n)
		perm := rng.Perm(G)
		for g := 0; g < G; g++ {
			arm := 0.0
			if perm[g] < G/2 {
				arm = 1
			}
			u := 0.5 * rng.NormFloat64()
			for i := 0; i < m; i++ {
				row := g*m + i
				xb := rng.NormFloat64()
				x.Set(row, 0, 1)
				x.Set(row, 1, arm)
				x.Set(row, 2, xb)
				y[row] = 1 + 0.5*xb + u + rng.NormFloat64()
				cl[row] = g
			}
		}
		res, err := WildClusterBootstrap(x, y, nil, cl, 1, WildConfig{Draws: draws}, rng)
		if err != nil {
			t.Fatal(err)
		}
		if res.PValue <= 0.05 {
			rejections++
		}
	}
	rate := float64(rejections) / float64(reps)
	se := math.Sqrt(0.05 * 0.95 / float64(reps))
	t.Logf("rejection rate under H0: %.3f over %d data sets (B = %d)", rate, reps, draws)
	if rate < 0.05-3*se-0.01 || rate > 0.05+3*se {
		t.Errorf("rejection rate %.3f, want 0.05 ± %.3f", rate, 3*se)
	}
}

// TestWildBootstrapBruteForce recomputes the bootstrap p-value by refitting
// every replication with OLS and VCovCR1 (same draws, same order) and
// checks the test-inversion limits by shifting y.
func TestWildBootstrapBruteForce(t *testing.T) {
	d := loadAncova(t)
	x := d.design(d.arm, d.yBase)
	const B, seed = 200, 99
	got, err := WildClusterBootstrap(x, d.yFu, nil, d.teamCode, 1, WildConfig{Draws: B, Level: 0.9}, rand.New(rand.NewPCG(seed, seed)))
	if err != nil {
		t.Fatal(err)
	}
	_, G, _ := groupIndex(d.teamCode)
	rng := rand.New(rand.NewPCG(seed, seed))
	v := make([]float64, B*G)
	for i := range v {
		v[i] = webb[rng.IntN(6)]
	}
	n, k := x.Dims()
	xr := mat.NewDense(n, k-1, nil)
	for c, src := range []int{0, 2, 3, 4, 5, 6} {
		xr.SetCol(c, mat.Col(nil, src, x))
	}
	restricted, err := OLS(xr, d.yFu, nil)
	if err != nil {
		t.Fatal(err)
	}
	full, err := OLS(x, d.yFu, nil)
	if err != nil {
		t.Fatal(err)
	}
	vc, err := full.VCovCR1(d.teamCode)
	if err != nil {
		t.Fatal(err)
	}
	tObs := math.Abs(full.Coef[1] / math.Sqrt(vc.At(1, 1)))
	ys := make([]float64, n)
	count := 0
	for b := 0; b < B; b++ {
		for i := range ys {
			ys[i] = restricted.Fitted[i] + v[b*G+d.teamCode[i]]*restricted.Resid[i]
		}
		fb, err := OLS(x, ys, nil)
		if err != nil {
			t.Fatal(err)
		}
		vb, err := fb.VCovCR1(d.teamCode)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(fb.Coef[1]/math.Sqrt(vb.At(1, 1))) >= tObs {
			count++
		}
	}
	if want := float64(count) / B; got.PValue != want {
		t.Errorf("p = %v, brute force %v", got.PValue, want)
	}
	// Testing β = δ is testing 0 with y − δ·arm: just outside the limits
	// p < 0.10, just inside p ≥ 0.10.
	for _, c := range []struct {
		delta  float64
		reject bool
	}{
		{got.CIHigh + 1e-6, true}, {got.CIHigh - 1e-6, false},
		{got.CILow - 1e-6, true}, {got.CILow + 1e-6, false},
	} {
		for i := range ys {
			ys[i] = d.yFu[i] - c.delta*d.arm[i]
		}
		r, err := WildClusterBootstrap(x, ys, nil, d.teamCode, 1, WildConfig{Draws: B}, rand.New(rand.NewPCG(seed, seed)))
		if err != nil {
			t.Fatal(err)
		}
		if (r.PValue < 0.1) != c.reject {
			t.Errorf("δ = %v: p = %v, reject expected %v", c.delta, r.PValue, c.reject)
		}
	}
}
