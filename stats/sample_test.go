package stats

import (
	"math"
	"testing"
)

// TestSampleSummaries checks SampleSD, Quantile7 and TCDF against R:
// sd(c(1, 2, 3, 4, 10)) = sqrt(12.5); quantile(c(1, 2, 3, 4, 10), c(0.25,
// 0.9, 1), type = 7) = 2, 7.6, 10; pt(qt(0.975, 5), 5) = 0.975 with
// qt(0.975, 5) = 2.570582; pt(0, 7) = 0.5; pt(−x) = 1 − pt(x).
func TestSampleSummaries(t *testing.T) {
	x := []float64{1, 2, 3, 4, 10}
	if sd := SampleSD(x); math.Abs(sd-math.Sqrt(12.5)) > 1e-15 {
		t.Errorf("SampleSD = %v, want %v", sd, math.Sqrt(12.5))
	}
	for _, c := range []struct{ p, want float64 }{{0.25, 2}, {0.9, 7.6}, {1, 10}, {0, 1}} {
		if q := Quantile7(x, c.p); math.Abs(q-c.want) > 1e-12 {
			t.Errorf("Quantile7(%v) = %v, want %v", c.p, q, c.want)
		}
	}
	if p := TCDF(2.570582, 5); math.Abs(p-0.975) > 1e-7 {
		t.Errorf("TCDF(2.570582, 5) = %v, want 0.975", p)
	}
	if p := TCDF(0, 7); p != 0.5 {
		t.Errorf("TCDF(0, 7) = %v, want 0.5", p)
	}
	if p, q := TCDF(-1.3, 9), TCDF(1.3, 9); math.Abs(p+q-1) > 1e-15 || p >= 0.5 {
		t.Errorf("TCDF(∓1.3, 9) = %v, %v: not symmetric", p, q)
	}
}

// TestSampleSDObserved: R's sd(c(1, NA, 2, 3, NA, 4, 10), na.rm = TRUE) =
// sqrt(12.5), the same bits as SampleSD of the values without NaN; an
// error for fewer than two values.
func TestSampleSDObserved(t *testing.T) {
	nan := math.NaN()
	sd, err := SampleSDObserved([]float64{1, nan, 2, 3, nan, 4, 10})
	if err != nil || math.Float64bits(sd) != math.Float64bits(SampleSD([]float64{1, 2, 3, 4, 10})) || math.Abs(sd-math.Sqrt(12.5)) > 1e-15 {
		t.Errorf("SampleSDObserved = %v, %v; want %v", sd, err, math.Sqrt(12.5))
	}
	if sd, err := SampleSDObserved([]float64{nan, 5, nan}); err == nil || !math.IsNaN(sd) {
		t.Errorf("one value: %v, %v; want NaN and an error", sd, err)
	}
}
