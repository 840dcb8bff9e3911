package stats

import (
	"errors"
	"fmt"
	"math"
)

// ATEWeights returns stabilised inverse-probability weights for the average
// treatment effect,
//
//	wᵢ = armᵢ·p̄/psᵢ + (1 − armᵢ)·(1 − p̄)/(1 − psᵢ),  p̄ = mean(arm),
//
// (Robins, Hernán & Brumback 2000; Austin & Stuart 2015, Stat Med 34:3661).
// arm is 0/1, ps the propensity P(arm = 1 | covariates), e.g. the fitted
// values of Logistic; every ps must lie strictly between 0 and 1.
func ATEWeights(arm, ps []float64) ([]float64, error) {
	if len(arm) != len(ps) {
		return nil, fmt.Errorf("ate weights: %d arms for %d propensities", len(arm), len(ps))
	}
	return ateWeights(arm, func(i int) float64 { return ps[i] })
}

// ATEWeightsGrouped is ATEWeights with each row's propensity that of its
// group, fitted[pat[i]] (the fitted values of LogisticPatterns or
// LogisticCells): the same weights and errors, without a slice of the
// rows' propensities (and, with at most half as many groups as rows,
// from each group's two weights).
func ATEWeightsGrouped(arm []float64, pat []int32, fitted []float64) ([]float64, error) {
	if len(arm) != len(pat) {
		return nil, fmt.Errorf("ate weights: %d arms for %d propensities", len(arm), len(pat))
	}
	// ateWeights' loops and arithmetic, without a call per row: the
	// groups' propensities are checked once and the rows' groups and arms
	// in one pass (on any failure, or an unused group's bad propensity,
	// ateGroupedCheck goes through the rows as ateWeights does).
	valid := len(arm) > 0
	for _, q := range fitted {
		valid = valid && q > 0 && q < 1
	}
	var p float64
	for i, g := range pat {
		if a := arm[i]; !valid || uint32(g) >= uint32(len(fitted)) || (a != 0 && a != 1) {
			valid = false
			break
		}
		p += arm[i]
	}
	if !valid {
		var err error
		if p, err = ateGroupedCheck(arm, pat, fitted); err != nil {
			return nil, err
		}
	}
	p /= float64(len(arm))
	if p == 0 || p == 1 {
		return nil, errors.New("ate weights: only one arm present")
	}
	w := make([]float64, len(arm))
	if 2*len(fitted) > len(arm) {
		for i, a := range arm {
			q := fitted[pat[i]]
			w[i] = a*p/q + (1-a)*(1-p)/(1-q)
		}
		return w, nil
	}
	// Few groups: each group's weight in each arm, by the same
	// expression (so the same number), then the rows'.
	byArm := make([]float64, 2*len(fitted))
	for g, q := range fitted {
		for a := range 2 {
			fa := float64(a)
			byArm[2*g+a] = fa*p/q + (1-fa)*(1-p)/(1-q)
		}
	}
	for i, a := range arm {
		w[i] = byArm[2*int(pat[i])+int(a)]
	}
	return w, nil
}

// ateGroupedCheck checks the rows in order as ATEWeights would and
// returns the sum of their arms, or the first row's error.
func ateGroupedCheck(arm []float64, pat []int32, fitted []float64) (float64, error) {
	for i, p := range pat {
		if p < 0 || int(p) >= len(fitted) {
			return 0, fmt.Errorf("ate weights: row %d has group %d of %d", i, p, len(fitted))
		}
	}
	if len(arm) == 0 {
		return 0, errors.New("ate weights: no rows")
	}
	var p float64
	for i, a := range arm {
		if a != 0 && a != 1 {
			return 0, fmt.Errorf("ate weights: arm[%d] = %v, need 0 or 1", i, a)
		}
		if q := fitted[pat[i]]; !(q > 0 && q < 1) {
			return 0, fmt.Errorf("ate weights: propensity %d is %v, need 0 < ps < 1", i, q)
		}
		p += a
	}
	return p, nil
}

func ateWeights(arm []float64, ps func(i int) float64) ([]float64, error) {
	if len(arm) == 0 {
		return nil, errors.New("ate weights: no rows")
	}
	var p float64
	for i, a := range arm {
		if a != 0 && a != 1 {
			return nil, fmt.Errorf("ate weights: arm[%d] = %v, need 0 or 1", i, a)
		}
		if q := ps(i); !(q > 0 && q < 1) {
			return nil, fmt.Errorf("ate weights: propensity %d is %v, need 0 < ps < 1", i, q)
		}
		p += a
	}
	p /= float64(len(arm))
	if p == 0 || p == 1 {
		return nil, errors.New("ate weights: only one arm present")
	}
	w := make([]float64, len(arm))
	for i, a := range arm {
		q := ps(i)
		w[i] = a*p/q + (1-a)*(1-p)/(1-q)
	}
	return w, nil
}

// KishESS returns Kish's effective sample size (Σw)²/Σw² (Kish 1965, Survey
// Sampling). It is NaN for an empty or all-zero w.
func KishESS(w []float64) float64 {
	var s, s2 float64
	for _, v := range w {
		s += v
		s2 += v * v
	}
	if s2 == 0 {
		return math.NaN()
	}
	return s * s / s2
}

// KishESSByArm returns KishESS of the weights of arm 1 and of arm 0 (arm
// 0/1 for each weight), each summed in row order as KishESS sums it, and
// the largest weight (−Inf for none), in one pass over w.
func KishESSByArm(w, arm []float64) (essI, essC, maxW float64) {
	var s, s2 [2]float64
	maxW = math.Inf(-1)
	for i, v := range w {
		a := int(arm[i])
		s[a] += v
		s2[a] += v * v
		maxW = max(maxW, v)
	}
	kish := func(a int) float64 {
		if s2[a] == 0 {
			return math.NaN()
		}
		return s[a] * s[a] / s2[a]
	}
	return kish(1), kish(0), maxW
}

// armMoments returns the (weighted) mean and the unweighted sample variance
// (denominator n−1) of x in the rows where arm == a.
func armMoments(x, arm, w []float64, a float64) (mean, variance, wvariance float64, n int) {
	var sw, swx, sx float64
	for i, v := range x {
		if arm[i] != a {
			continue
		}
		wi := weightAt(w, i)
		sw += wi
		swx += wi * v
		sx += v
		n++
	}
	if n == 0 {
		return math.NaN(), math.NaN(), math.NaN(), 0
	}
	mean = swx / sw
	m := sx / float64(n)
	var ss, wss, sw2 float64
	for i, v := range x {
		if arm[i] != a {
			continue
		}
		wi := weightAt(w, i)
		ss += (v - m) * (v - m)
		wss += wi * (v - mean) * (v - mean)
		sw2 += wi * wi
	}
	variance = ss / float64(n-1)
	wvariance = wss / (sw - sw2/sw)
	return mean, variance, wvariance, n
}

func checkBalanceInput(x, arm, w []float64) error {
	if len(x) != len(arm) || (w != nil && len(w) != len(x)) {
		return fmt.Errorf("balance: lengths x %d, arm %d, w %d differ", len(x), len(arm), len(w))
	}
	for i, a := range arm {
		if a != 0 && a != 1 {
			return fmt.Errorf("balance: arm[%d] = %v, need 0 or 1", i, a)
		}
		if math.IsNaN(x[i]) {
			return fmt.Errorf("balance: x[%d] is NaN", i)
		}
	}
	return nil
}

// SMD returns the standardised mean difference of covariate x between arm 1
// and arm 0,
//
//	(x̄₁ − x̄₀) / √((s₁² + s₀²)/2),
//
// with weighted means x̄ₐ = Σwx/Σw in each arm (unweighted when w is nil) and
// unweighted sample variances sₐ² in the denominator, so that the
// denominator is the same before and after weighting (Austin & Stuart 2015;
// cobalt::bal.tab's default for ATE with s.d.denom = "pooled"). Binary and
// categorical covariates go in as 0/1 dummies. Each arm needs at least two
// rows, and x must vary.
func SMD(x, arm, w []float64) (float64, error) {
	if err := checkBalanceInput(x, arm, w); err != nil {
		return math.NaN(), err
	}
	m1, v1, _, n1 := armMoments(x, arm, w, 1)
	m0, v0, _, n0 := armMoments(x, arm, w, 0)
	if n1 < 2 || n0 < 2 {
		return math.NaN(), errors.New("smd: each arm needs at least two rows")
	}
	d := math.Sqrt((v1 + v0) / 2)
	if d == 0 {
		return math.NaN(), errors.New("smd: covariate does not vary within arms")
	}
	return (m1 - m0) / d, nil
}

// VarianceRatio returns s₁²/s₀², the variance of x in arm 1 over that in arm
// 0. With w nil these are the unweighted sample variances (denominator
// n−1); with weights they are weighted variances
// Σw(x − x̄_w)² / (Σw − Σw²/Σw) (the unbiased "reliability weights" form, as
// cobalt's col_w_sd). Values near 1 indicate balance in spread (Austin 2009,
// Stat Med 28:3083).
func VarianceRatio(x, arm, w []float64) (float64, error) {
	if err := checkBalanceInput(x, arm, w); err != nil {
		return math.NaN(), err
	}
	_, v1, wv1, n1 := armMoments(x, arm, w, 1)
	_, v0, wv0, n0 := armMoments(x, arm, w, 0)
	if n1 < 2 || n0 < 2 {
		return math.NaN(), errors.New("variance ratio: each arm needs at least two rows")
	}
	if w != nil {
		v1, v0 = wv1, wv0
	}
	if v0 == 0 {
		return math.NaN(), errors.New("variance ratio: no variation in arm 0")
	}
	return v1 / v0, nil
}
