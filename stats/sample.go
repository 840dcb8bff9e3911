package stats

import (
	"errors"
	"math"
)

// SampleSD is the sample standard deviation (n − 1) of x, R's sd(x).
func SampleSD(x []float64) float64 {
	var m float64
	for _, v := range x {
		m += v
	}
	m /= float64(len(x))
	var ss float64
	for _, v := range x {
		ss += (v - m) * (v - m)
	}
	return math.Sqrt(ss / float64(len(x)-1))
}

// SampleSDObserved is the sample standard deviation (n − 1) of x's values
// other than NaN, R's sd(x, na.rm = TRUE); an error for fewer than two.
func SampleSDObserved(x []float64) (float64, error) {
	mean, n := 0.0, 0
	for _, v := range x {
		if !math.IsNaN(v) {
			mean, n = mean+v, n+1
		}
	}
	if n < 2 {
		return math.NaN(), errors.New("fewer than two values")
	}
	mean /= float64(n)
	ss := 0.0
	for _, v := range x {
		if !math.IsNaN(v) {
			ss += (v - mean) * (v - mean)
		}
	}
	return math.Sqrt(ss / float64(n-1)), nil
}

// Quantile7 is R's quantile(x, p, type = 7) of sorted x.
func Quantile7(sorted []float64, p float64) float64 {
	h := float64(len(sorted)-1) * p
	lo := math.Floor(h)
	i := int(lo)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (h-lo)*(sorted[i+1]-sorted[i])
}

// TCDF is P(T_df ≤ x), R's pt(x, df).
func TCDF(x, df float64) float64 {
	p := TTwoSided(x, df) / 2
	if x >= 0 {
		return 1 - p
	}
	return p
}
