package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func TestDataProblemsAreErrors(t *testing.T) {
	x := columns(ones(6), []float64{1, 2, 3, 4, 5, 6})
	y := []float64{1, 3, 2, 5, 4, 6}
	fit, err := OLS(x, y, nil)
	if err != nil {
		t.Fatal(err)
	}
	one := []int{1, 1, 1, 1, 1, 1}
	if _, err := fit.CR2(one); err == nil {
		t.Error("CR2 with one cluster: no error")
	}
	if _, err := fit.VCovCR1(one); err == nil {
		t.Error("CR1 with one cluster: no error")
	}
	if _, err := fit.CR2([]int{1, 2}); err == nil {
		t.Error("CR2 with too few labels: no error")
	}
	if _, err := OLS(x, y[:5], nil); err == nil {
		t.Error("OLS with short y: no error")
	}
	if _, err := OLS(x, y, []float64{1, 1, 1, 0, 1, 1}); err == nil {
		t.Error("OLS with a zero weight: no error")
	}
	if _, err := OLS(x, []float64{1, math.NaN(), 2, 3, 4, 5}, nil); err == nil {
		t.Error("OLS with NaN: no error")
	}
	if _, err := MixedREML(x, y, one); err == nil {
		t.Error("mixed model with one group: no error")
	}
	if _, err := MixedREML(x, []float64{1, 2, 3, 4, 5, 6}, []int{1, 1, 1, 2, 2, 2}); err == nil {
		t.Error("mixed model with a perfect fit: no error")
	}
	if _, _, _, err := Logistic(x, []float64{1, 1, 1, 1, 1, 1}); err == nil {
		t.Error("logistic with constant y: no error")
	}
	if _, _, _, err := Logistic(x, []float64{0, 0, 0, 1, 1, 1}); err == nil {
		t.Error("logistic with perfect separation: no error")
	}
	if _, err := ATEWeights([]float64{1, 0}, []float64{1, 0.5}); err == nil {
		t.Error("ATE weights with ps = 1: no error")
	}
	if _, err := HedgesG(1, []float64{1, 1, 1, 1}, []float64{1, 1, 0, 0}); err == nil {
		t.Error("Hedges' g with constant outcome: no error")
	}
	if _, err := CronbachAlpha([][]float64{{1, 2, 3}}); err == nil {
		t.Error("alpha with one item: no error")
	}
	if _, err := ICC(mat.NewDense(3, 2, []float64{1, 1, 1, 1, 1, 1}), 0.95); err == nil {
		t.Error("ICC of constant ratings: no error")
	}
	if _, err := WildClusterBootstrap(x, y, nil, []int{1, 1, 1, 2, 2, 2}, 1, WildConfig{Draws: 9}, nil); err == nil {
		t.Error("wild bootstrap without a random source: no error")
	}
}

// TestAlphaCompleteCases checks that rows with a NaN are dropped.
func TestAlphaCompleteCases(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	items := make([][]float64, 4)
	for i := range items {
		items[i] = make([]float64, 50)
	}
	for r := 0; r < 50; r++ {
		f := rng.NormFloat64()
		for i := range items {
			items[i][r] = f + rng.NormFloat64()
		}
	}
	complete, err := CronbachAlpha(items)
	if err != nil {
		t.Fatal(err)
	}
	withNA := make([][]float64, 4)
	for i := range items {
		withNA[i] = append(append([]float64(nil), items[i]...), math.NaN(), 3)
		withNA[i][len(withNA[i])-1] = float64(i) // a second extra row, NaN in item 0 only
	}
	withNA[0][51] = math.NaN()
	got, err := CronbachAlpha(withNA)
	if err != nil {
		t.Fatal(err)
	}
	if got.N != 50 || got.Alpha != complete.Alpha {
		t.Errorf("with NaN rows: n = %d, alpha = %v; want 50, %v", got.N, got.Alpha, complete.Alpha)
	}
}

// TestDistributions checks the tail functions against closed forms and
// R's qt.
func TestDistributions(t *testing.T) {
	// For 5 df, P(|T| ≥ t) = 1 − (2/π)(θ + sinθ cosθ (1 + (2/3)cos²θ)),
	// θ = atan(t/√5) (Abramowitz & Stegun 26.7.3).
	th := math.Atan(2 / math.Sqrt(5))
	want := 1 - 2/math.Pi*(th+math.Sin(th)*math.Cos(th)*(1+2.0/3*math.Cos(th)*math.Cos(th)))
	checkRel(t, "TTwoSided", TTwoSided(2, 5), want, 1e-10)
	// R: qt(0.975, 9) = 2.262157162798205
	checkRel(t, "TQuantile", TQuantile(0.975, 9), 2.2621571627982, 1e-10)
	// pf(3, 2, 10, lower.tail = FALSE) = (1 + 2*3/10)^(-5) = 0.0953674316...
	checkRel(t, "FSurvival", FSurvival(3, 2, 10), math.Pow(1.6, -5), 1e-12)
	// qf(0.95, 2, 10): solve (1 + 2q/10)^(-5) = 0.05 → q = 5(0.05^(-1/5) − 1).
	checkRel(t, "FQuantile", FQuantile(0.95, 2, 10), 5*(math.Pow(0.05, -0.2)-1), 1e-10)
}
