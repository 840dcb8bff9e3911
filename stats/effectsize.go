package stats

import (
	"errors"
	"fmt"
	"math"
)

// HedgesG returns Hedges' g for an adjusted difference between arms,
//
//	g = estimate / s_p · J,  s_p² = ((n₁−1)s₁² + (n₀−1)s₀²)/(n₁+n₀−2),
//	J = 1 − 3/(4(n₁+n₀) − 9),
//
// where s₁², s₀² are the sample variances of the outcome y (the follow-up
// outcome) in arm 1 and arm 0 (Hedges 1981; Hedges & Olkin 1985, eq. 5.10
// for J; the cpi analysis plan, DESIGN.md §9). arm is 0/1; each arm needs at
// least two rows and y must vary.
func HedgesG(estimate float64, y, arm []float64) (float64, error) {
	if len(y) != len(arm) {
		return math.NaN(), fmt.Errorf("hedges g: %d outcomes for %d arms", len(y), len(arm))
	}
	if err := checkBalanceInput(y, arm, nil); err != nil {
		return math.NaN(), err
	}
	_, v1, _, n1 := armMoments(y, arm, nil, 1)
	_, v0, _, n0 := armMoments(y, arm, nil, 0)
	if n1 < 2 || n0 < 2 {
		return math.NaN(), errors.New("hedges g: each arm needs at least two rows")
	}
	sp := math.Sqrt((float64(n1-1)*v1 + float64(n0-1)*v0) / float64(n1+n0-2))
	if sp == 0 {
		return math.NaN(), errors.New("hedges g: outcome does not vary within arms")
	}
	j := 1 - 3/(4*float64(n1+n0)-9)
	return estimate / sp * j, nil
}

// PartialEta2 returns partial η² = t²/(t² + df) from a coefficient's
// classical t statistic and the residual degrees of freedom (for a 1-df
// effect this equals SS_effect/(SS_effect + SS_error); Cohen 1973; the pilot
// study's metric, DESIGN.md §9). df must be positive.
func PartialEta2(t, df float64) float64 {
	if !(df > 0) {
		return math.NaN()
	}
	return t * t / (t*t + df)
}
