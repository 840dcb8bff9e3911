package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestHedgesScale: HedgesScale.G equals HedgesG bit for bit for several
// estimates, and NewHedgesScale returns HedgesG's errors (one arm with a
// single row; no variation within arms; lengths).
func TestHedgesScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	y, arm := make([]float64, 501), make([]float64, 501)
	for i := range y {
		arm[i] = float64(i % 2)
		y[i] = 3 + 2*rng.NormFloat64() + 0.4*arm[i]
	}
	h, err := NewHedgesScale(y, arm)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []float64{0.37, -1.2, 0, 1e-9, 123.456} {
		want, err := HedgesG(e, y, arm)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.G(e); math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("G(%v) = %.17g, HedgesG %.17g", e, got, want)
		}
	}
	// With missing values: the observed rows' scale, bit for bit.
	yMiss := append([]float64(nil), y...)
	var yObs, armObs []float64
	for i := range yMiss {
		if i%7 == 2 {
			yMiss[i] = math.NaN()
		} else {
			yObs, armObs = append(yObs, y[i]), append(armObs, arm[i])
		}
	}
	ho, err := NewHedgesScaleObserved(yMiss, arm)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []float64{0.37, -1.2, 123.456} {
		want, err := HedgesG(e, yObs, armObs)
		if err != nil {
			t.Fatal(err)
		}
		if got := ho.G(e); math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("observed: G(%v) = %.17g, HedgesG of the observed rows %.17g", e, got, want)
		}
	}
	if _, err := NewHedgesScaleObserved([]float64{1, math.NaN(), 2, 3, 4}, []float64{1, 1, 1, 0, 0}); err != nil {
		t.Errorf("two observed rows an arm: %v", err)
	}
	if _, err := NewHedgesScaleObserved([]float64{1, math.NaN(), 2, 3, 4}, []float64{1, 0, 1, 0, 1}); err == nil {
		t.Error("one observed row in arm 0: no error")
	}
	for _, c := range []struct{ y, arm []float64 }{
		{[]float64{1, 2, 3}, []float64{1, 0, 0}},
		{[]float64{1, 1, 2, 2}, []float64{1, 1, 0, 0}},
		{[]float64{1, 2}, []float64{1}},
		{[]float64{1, 2, math.NaN(), 4, 5}, []float64{1, 1, 0, 0, 0}},
		{[]float64{1, 2, math.NaN(), 4, 5}, []float64{1, 2, 0, 0, 0}},
	} {
		_, errG := HedgesG(1, c.y, c.arm)
		_, errS := NewHedgesScale(c.y, c.arm)
		if errG == nil || errS == nil || errG.Error() != errS.Error() {
			t.Errorf("%v %v: error %v, HedgesG's %v", c.y, c.arm, errS, errG)
		}
	}
}

// BenchmarkHedgesScale: the scale of 1,000,000 rows in two arms.
func BenchmarkHedgesScale(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 9))
	y, arm := make([]float64, 1_000_000), make([]float64, 1_000_000)
	for i := range y {
		arm[i] = float64(rng.IntN(2))
		y[i] = 3 + 2*rng.NormFloat64() + 0.4*arm[i]
	}
	for b.Loop() {
		if _, err := NewHedgesScale(y, arm); err != nil {
			b.Fatal(err)
		}
	}
}
