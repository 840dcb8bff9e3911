package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"
)

// twoStageData is a small cluster randomised study: 3 strata with one
// cluster of each arm, plus a second arm-1 cluster in stratum 2; sizes
// from size; teamSD scales the cluster effects.
func twoStageData(rng *rand.Rand, teamSD float64, size func(c int) int) (cluster, arm, stratum []int, x, y [][]float64) {
	x, y = make([][]float64, 2), make([][]float64, 2)
	for c := range 7 {
		s, a := c/2, c%2
		if c == 6 {
			s, a = 2, 1
		}
		team := teamSD * rng.NormFloat64()
		for range size(c) {
			u := rng.NormFloat64()
			b := math.Exp(rng.NormFloat64())
			cluster, arm, stratum = append(cluster, c), append(arm, a), append(stratum, s)
			x[0], x[1] = append(x[0], u), append(x[1], b)
			y[0] = append(y[0], 100*b*rng.ExpFloat64()+50*float64(a)+20*team)
			y[1] = append(y[1], 0.3*u+0.1*float64(a)+0.05*team+0.2*rng.NormFloat64()+float64(s))
		}
	}
	return
}

// Every exact-route replicate equals a dense weighted least-squares fit
// (gonum QR on the rows, weights from the same random draws, the design
// built independently: arm, intercept, x, the dummies of the strata drawn
// but the first), and a replicate with no stratum drawn in both arms is
// refused.
func TestTwoStageExactEqualsDense(t *testing.T) {
	cluster, arm, stratum, x, y := twoStageData(rand.New(rand.NewPCG(1, 2)), 1, func(c int) int { return 5 + 3*c })
	ts, err := NewTwoStage(cluster, arm, stratum, x, y, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if ts.NormalClusters() != 0 || ts.Clusters() != 7 {
		t.Fatalf("%d clusters, %d normal", ts.Clusters(), ts.NormalClusters())
	}
	rng := rand.New(rand.NewPCG(7, 7))
	shadow := rand.New(rand.NewPCG(7, 7))
	members := make([][]int, 7)
	for i, c := range cluster {
		members[c] = append(members[c], i)
	}
	byArm := [2][]int{{0, 2, 4}, {1, 3, 5, 6}}
	coef := make([]float64, 2)
	refused, checked := 0, 0
	for range 300 {
		ok := ts.Replicate(rng, coef)
		w := make([]float64, len(cluster))
		for _, cs := range byArm {
			for range cs {
				m := members[cs[shadow.IntN(len(cs))]]
				for range m {
					w[m[shadow.IntN(len(m))]]++
				}
			}
		}
		// Strata drawn in each arm.
		var drawn [3][2]bool
		for i := range w {
			if w[i] > 0 {
				drawn[stratum[i]][arm[i]] = true
			}
		}
		both := false
		for _, d := range drawn {
			both = both || (d[0] && d[1])
		}
		if !both {
			if ok {
				t.Fatal("a replicate with no stratum in both arms gave a coefficient")
			}
			refused++
			continue
		}
		if !ok {
			t.Fatal("an estimable replicate was refused")
		}
		var dummies []int
		first := true
		for s, d := range drawn {
			if d[0] || d[1] {
				if !first {
					dummies = append(dummies, s)
				}
				first = false
			}
		}
		var rows []int
		for i := range w {
			if w[i] > 0 {
				rows = append(rows, i)
			}
		}
		k := 4 + len(dummies)
		X := mat.NewDense(len(rows), k, nil)
		Y := mat.NewDense(len(rows), 2, nil)
		for r, i := range rows {
			sw := math.Sqrt(w[i])
			X.Set(r, 0, sw*float64(arm[i]))
			X.Set(r, 1, sw)
			X.Set(r, 2, sw*x[0][i])
			X.Set(r, 3, sw*x[1][i])
			for j, s := range dummies {
				if stratum[i] == s {
					X.Set(r, 4+j, sw)
				}
			}
			Y.Set(r, 0, sw*y[0][i])
			Y.Set(r, 1, sw*y[1][i])
		}
		var qr mat.QR
		qr.Factorize(X)
		var beta mat.Dense
		if err := qr.SolveTo(&beta, false, Y); err != nil {
			t.Fatal(err)
		}
		for j := range 2 {
			if d := math.Abs(coef[j] - beta.At(0, j)); d > 1e-8*(1+math.Abs(beta.At(0, j))) {
				t.Fatalf("response %d: %v, dense %v", j, coef[j], beta.At(0, j))
			}
		}
		checked++
	}
	if refused == 0 || checked < 200 {
		t.Errorf("%d replicates checked, %d refused: the test did not exercise both", checked, refused)
	}
}

// The normal route draws the resampled sums of a large cluster from their
// multinomial mean and covariance: with clusters of 1,500 to 3,000 and no
// cluster effects (so that the participant stage carries about half the
// variance: the cluster stage's share is the sampling noise of the
// clusters' means), its
// replicates' arm coefficients have the exact route's mean and SD (2,000
// replicates each: means within 4 Monte-Carlo SE, SDs within 8%, four
// times the SE of an SD), for both responses.
func TestTwoStageNormalRouteMatchesExact(t *testing.T) {
	cluster, arm, stratum, x, y := twoStageData(rand.New(rand.NewPCG(3, 4)), 0, func(c int) int { return 1500 + 250*c })
	exact, err := NewTwoStage(cluster, arm, stratum, x, y, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	normal, err := NewTwoStage(cluster, arm, stratum, x, y, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if normal.NormalClusters() != 7 || exact.NormalClusters() != 0 {
		t.Fatalf("normal route for %d and %d clusters", normal.NormalClusters(), exact.NormalClusters())
	}
	const B = 2000
	draw := func(ts *TwoStage, seed uint64) [2][]float64 {
		rng := rand.New(rand.NewPCG(seed, 1))
		var out [2][]float64
		coef := make([]float64, 2)
		for range B {
			if ts.Replicate(rng, coef) {
				out[0], out[1] = append(out[0], coef[0]), append(out[1], coef[1])
			}
		}
		return out
	}
	e, n := draw(exact, 11), draw(normal, 12)
	for j := range 2 {
		me, se := meanSD(e[j])
		mn, sn := meanSD(n[j])
		t.Logf("response %d: exact mean %.5g SD %.5g (%d), normal mean %.5g SD %.5g (%d)", j, me, se, len(e[j]), mn, sn, len(n[j]))
		if math.Abs(me-mn) > 4*math.Sqrt(se*se/float64(len(e[j]))+sn*sn/float64(len(n[j]))) {
			t.Errorf("response %d: means %v and %v", j, me, mn)
		}
		if math.Abs(sn-se) > 0.08*se {
			t.Errorf("response %d: SDs %v and %v", j, se, sn)
		}
	}
}

func meanSD(x []float64) (float64, float64) {
	var m float64
	for _, v := range x {
		m += v
	}
	return m / float64(len(x)), SampleSD(x)
}

// EVPI by hand: with mean 0 and df 4 the t density at 0 is 3/8, so EVPI =
// σ·(4/3)·(3/8) = σ/2; with infinite df it is σ/√(2π); elsewhere it
// equals the integral of max(μ + σt, 0) against gonum's t density minus
// max(μ, 0) (trapezium rule on ±400). The sample version by hand on four
// draws.
func TestEVPI(t *testing.T) {
	if got := EVPIT(0, 300, 4); math.Abs(got-150) > 1e-9 {
		t.Errorf("EVPIT(0, 300, 4) = %v, want 150", got)
	}
	if got, want := EVPIT(0, 300, math.Inf(1)), 300/math.Sqrt(2*math.Pi); math.Abs(got-want) > 1e-9 {
		t.Errorf("EVPIT(0, 300, Inf) = %v, want %v", got, want)
	}
	for _, c := range []struct{ mu, se, df float64 }{{412, 324, 4.1}, {-250, 500, 2.5}, {1000, 200, 30}, {-80, 900, 3}} {
		td := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: c.df}
		const h = 0.0005
		var integral float64
		for tt := -400.0; tt <= 400; tt += h {
			v := max(c.mu+c.se*tt, 0) * td.Prob(tt)
			if tt == -400 || tt+h > 400 {
				v /= 2
			}
			integral += v * h
		}
		want := integral - max(c.mu, 0)
		if got := EVPIT(c.mu, c.se, c.df); math.Abs(got-want) > 2e-3*c.se+1e-6 {
			t.Errorf("EVPIT(%v, %v, %v) = %v, integral %v", c.mu, c.se, c.df, got, want)
		}
	}
	if !math.IsNaN(EVPIT(1, 1, 1)) || !math.IsNaN(EVPIT(1, 0, 5)) {
		t.Error("EVPI with df 1 or se 0 is not null")
	}
	// mean 30; mean of max(x, 0) = 250/4 = 62.5.
	if got := EVPISample([]float64{-100, 50, 200, -30}); math.Abs(got-32.5) > 1e-12 {
		t.Errorf("EVPISample = %v, want 32.5", got)
	}
	// all positive: no value in information.
	if got := EVPISample([]float64{1, 2, 3}); got != 0 {
		t.Errorf("EVPISample of positive draws = %v", got)
	}
}
