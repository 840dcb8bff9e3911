package stats

import (
	"math"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/distuv"
)

// TTwoSided returns the two-sided tail probability P(|T| ≥ |t|) of Student's
// t distribution with df degrees of freedom (df > 0, not necessarily an
// integer), computed as the regularised incomplete beta function
// I_{df/(df+t²)}(df/2, 1/2). It matches 2*pt(abs(t), df, lower.tail = FALSE)
// in R. It returns NaN if df ≤ 0 or t is NaN.
func TTwoSided(t, df float64) float64 {
	if !(df > 0) || math.IsNaN(t) {
		return math.NaN()
	}
	if math.IsInf(t, 0) {
		return 0
	}
	return mathext.RegIncBeta(df/2, 0.5, df/(df+t*t))
}

// TQuantile returns the p-quantile of Student's t distribution with df
// degrees of freedom (R's qt(p, df)); 0 < p < 1 and df > 0, otherwise NaN.
func TQuantile(p, df float64) float64 {
	if !(df > 0) || !(p > 0 && p < 1) {
		return math.NaN()
	}
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(p)
}

// FSurvival returns the upper tail P(F ≥ f) of the F distribution with d1
// and d2 degrees of freedom, I_{d2/(d2+d1·f)}(d2/2, d1/2) (R's
// pf(f, d1, d2, lower.tail = FALSE)). It returns NaN for non-positive
// degrees of freedom.
func FSurvival(f, d1, d2 float64) float64 {
	if !(d1 > 0 && d2 > 0) || math.IsNaN(f) {
		return math.NaN()
	}
	if f <= 0 {
		return 1
	}
	return mathext.RegIncBeta(d2/2, d1/2, d2/(d2+d1*f))
}

// FQuantile returns the p-quantile of the F distribution with d1 and d2
// degrees of freedom (R's qf(p, d1, d2)); 0 < p < 1, otherwise NaN.
func FQuantile(p, d1, d2 float64) float64 {
	if !(d1 > 0 && d2 > 0) || !(p > 0 && p < 1) {
		return math.NaN()
	}
	return distuv.F{D1: d1, D2: d2}.Quantile(p)
}
