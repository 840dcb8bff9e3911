package stats

import (
	"errors"
	"fmt"
	"math"
)

// HedgesScale is Hedges' g's pooled standard deviation and small-sample
// factor for one outcome's values in two arms, computed once for several
// estimates: G(estimate) equals HedgesG(estimate, y, arm) bit for bit,
// without a pass over y for each estimate (cpi's itt_mi and itt_delta
// rows of an outcome share them).
type HedgesScale struct{ sp, j float64 }

// NewHedgesScale returns the scale of y (arm 1 against arm 0), or HedgesG's
// error for these values: HedgesG's sums in its order (each arm's Σy, then
// Σ(y − ȳ)²), in two passes over y for both arms.
func NewHedgesScale(y, arm []float64) (HedgesScale, error) {
	if len(y) != len(arm) {
		return HedgesScale{}, fmt.Errorf("hedges g: %d outcomes for %d arms", len(y), len(arm))
	}
	var sx, ss [2]float64
	var n [2]int
	for i, v := range y {
		a := arm[i]
		if a != 0 && a != 1 {
			return HedgesScale{}, fmt.Errorf("balance: arm[%d] = %v, need 0 or 1", i, a)
		}
		if math.IsNaN(v) {
			return HedgesScale{}, fmt.Errorf("balance: x[%d] is NaN", i)
		}
		sx[int(a)] += v
		n[int(a)]++
	}
	n1, n0 := n[1], n[0]
	if n1 < 2 || n0 < 2 {
		return HedgesScale{}, errors.New("hedges g: each arm needs at least two rows")
	}
	m := [2]float64{sx[0] / float64(n0), sx[1] / float64(n1)}
	for i, v := range y {
		a := int(arm[i])
		ss[a] += (v - m[a]) * (v - m[a])
	}
	v1, v0 := ss[1]/float64(n1-1), ss[0]/float64(n0-1)
	sp := math.Sqrt((float64(n1-1)*v1 + float64(n0-1)*v0) / float64(n1+n0-2))
	if sp == 0 {
		return HedgesScale{}, errors.New("hedges g: outcome does not vary within arms")
	}
	return HedgesScale{sp: sp, j: 1 - 3/(4*float64(n1+n0)-9)}, nil
}

// NewHedgesScaleObserved is NewHedgesScale of the rows whose y is not NaN
// (the observed values of a column with missing ones), in two passes over
// y without copying it; the scale is the same bit for bit.
func NewHedgesScaleObserved(y, arm []float64) (HedgesScale, error) {
	if len(y) != len(arm) {
		return HedgesScale{}, fmt.Errorf("hedges g: %d outcomes for %d arms", len(y), len(arm))
	}
	var sx [2]float64
	var n [2]int
	r := 0
	for i, v := range y {
		if math.IsNaN(v) {
			continue
		}
		a := arm[i]
		if a != 0 && a != 1 {
			return HedgesScale{}, fmt.Errorf("balance: arm[%d] = %v, need 0 or 1", r, a)
		}
		sx[int(a)] += v
		n[int(a)]++
		r++
	}
	var m, ss [2]float64
	for a := range m {
		m[a] = sx[a] / float64(n[a])
	}
	for i, v := range y {
		if math.IsNaN(v) {
			continue
		}
		a := int(arm[i])
		ss[a] += (v - m[a]) * (v - m[a])
	}
	n1, n0 := n[1], n[0]
	if n1 < 2 || n0 < 2 {
		return HedgesScale{}, errors.New("hedges g: each arm needs at least two rows")
	}
	v1, v0 := ss[1]/float64(n1-1), ss[0]/float64(n0-1)
	sp := math.Sqrt((float64(n1-1)*v1 + float64(n0-1)*v0) / float64(n1+n0-2))
	if sp == 0 {
		return HedgesScale{}, errors.New("hedges g: outcome does not vary within arms")
	}
	return HedgesScale{sp: sp, j: 1 - 3/(4*float64(n1+n0)-9)}, nil
}

// G is Hedges' g of estimate.
func (h HedgesScale) G(estimate float64) float64 { return estimate / h.sp * h.j }
