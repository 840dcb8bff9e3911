package stats

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// ICCResult holds Shrout & Fleiss intraclass correlations for single
// ratings from a two-way layout, with the mean squares they come from.
type ICCResult struct {
	ICC2      float64 // ICC(2,1): two-way random, absolute agreement
	ICC2Lower float64 // confidence interval of ICC(2,1)
	ICC2Upper float64
	ICC3      float64 // ICC(3,1): two-way mixed, consistency
	ICC3Lower float64 // confidence interval of ICC(3,1)
	ICC3Upper float64

	MSRows, MSCols, MSError float64 // targets, raters, residual mean squares
	Targets, Raters         int
}

// ICC computes ICC(2,1) and ICC(3,1) of Shrout & Fleiss (1979, Psychol Bull
// 86:420) from ratings, a targets × raters matrix without missing values
// (rows are the things rated, e.g. fidelity components; columns the raters).
// With n targets, k raters and the two-way ANOVA mean squares MSR (targets),
// MSC (raters) and MSE (residual):
//
//	ICC(2,1) = (MSR − MSE) / (MSR + (k−1)MSE + k(MSC − MSE)/n)
//	ICC(3,1) = (MSR − MSE) / (MSR + (k−1)MSE)
//
// The level (e.g. 0.95) confidence intervals are those of psych::ICC
// (psych 2.2.9), using the (1+level)/2 quantiles of F: for ICC(3,1) from
// F = MSR/MSE on (n−1, (n−1)(k−1)), and for ICC(2,1) the approximate F
// interval with Satterthwaite's denominator degrees of freedom (Shrout &
// Fleiss 1979, eq. 7; McGraw & Wong 1996, Psychol Methods 1:30).
// Preconditions: at least two targets and two raters, no missing ratings,
// ratings that vary.
func ICC(ratings *mat.Dense, level float64) (ICCResult, error) {
	n, k := ratings.Dims()
	if n < 2 || k < 2 {
		return ICCResult{}, fmt.Errorf("icc: %d targets × %d raters, need at least 2 × 2", n, k)
	}
	if !(level > 0 && level < 1) {
		return ICCResult{}, fmt.Errorf("icc: level = %v, need 0 < level < 1", level)
	}
	q := (1 + level) / 2
	rowMean := make([]float64, n)
	colMean := make([]float64, k)
	var grand float64
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			v := ratings.At(i, j)
			if math.IsNaN(v) {
				return ICCResult{}, fmt.Errorf("icc: rating [%d,%d] is missing", i, j)
			}
			rowMean[i] += v / float64(k)
			colMean[j] += v / float64(n)
			grand += v
		}
	}
	grand /= float64(n * k)
	var ssr, ssc, sse float64
	for i := 0; i < n; i++ {
		ssr += float64(k) * (rowMean[i] - grand) * (rowMean[i] - grand)
	}
	for j := 0; j < k; j++ {
		ssc += float64(n) * (colMean[j] - grand) * (colMean[j] - grand)
	}
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			e := ratings.At(i, j) - rowMean[i] - colMean[j] + grand
			sse += e * e
		}
	}
	nf, kf := float64(n), float64(k)
	msr := ssr / (nf - 1)
	msc := ssc / (kf - 1)
	mse := sse / ((nf - 1) * (kf - 1))
	if msr == 0 && mse == 0 {
		return ICCResult{}, errors.New("icc: ratings do not vary")
	}
	r := ICCResult{MSRows: msr, MSCols: msc, MSError: mse, Targets: n, Raters: k}
	r.ICC2 = (msr - mse) / (msr + (kf-1)*mse + kf*(msc-mse)/nf)
	r.ICC3 = (msr - mse) / (msr + (kf-1)*mse)

	// ICC(3,1): F = MSR/MSE on (n−1, (n−1)(k−1)).
	f3 := msr / mse
	d1, d2 := nf-1, (nf-1)*(kf-1)
	fl := f3 / FQuantile(q, d1, d2)
	fu := f3 * FQuantile(q, d2, d1)
	r.ICC3Lower = (fl - 1) / (fl + kf - 1)
	r.ICC3Upper = (fu - 1) / (fu + kf - 1)

	// ICC(2,1): Satterthwaite df v for the denominator.
	fj := msc / mse
	ic := r.ICC2
	vn := (kf - 1) * (nf - 1) * math.Pow(kf*ic*fj+nf*(1+(kf-1)*ic)-kf*ic, 2)
	vd := (nf-1)*kf*kf*ic*ic*fj*fj + math.Pow(nf*(1+(kf-1)*ic)-kf*ic, 2)
	v := vn / vd
	fU := FQuantile(q, nf-1, v)
	fL := FQuantile(q, v, nf-1)
	r.ICC2Lower = nf * (msr - fU*mse) / (fU*(kf*msc+(kf*nf-kf-nf)*mse) + nf*msr)
	r.ICC2Upper = nf * (fL*msr - mse) / (kf*msc + (kf*nf-kf-nf)*mse + nf*fL*msr)
	return r, nil
}
