package stats

import (
	"errors"
	"fmt"
	"math"
)

// Alpha is Cronbach's alpha of a scale with its Feldt confidence interval
// and the corrected item–total correlations.
type Alpha struct {
	Alpha        float64   // raw alpha from the item covariances
	CILow        float64   // Feldt 95% interval
	CIHigh       float64   //
	N            int       // complete cases used
	Items        int       // number of items
	ItemRestCorr []float64 // r.drop: correlation of each item with the sum of the others
}

// CronbachAlpha returns Cronbach's (1951) alpha
//
//	α = k/(k−1) · (1 − Σ_i s_i² / s_T²),
//
// with s_i² the item variances and s_T² the variance of the total score,
// over the complete cases (rows without a NaN in any item); items[i] is item
// i's column and NaN marks a missing answer. The 95% interval is Feldt's
// (Feldt, Woodruff & Salih 1987):
//
//	[1 − (1−α)·F_{0.975}(n−1, (n−1)(k−1)),  1 − (1−α)·F_{0.025}(n−1, (n−1)(k−1))],
//
// and ItemRestCorr[i] is the correlation of item i with the sum of the other
// items. It matches psych::alpha's raw_alpha, its "Feldt" confidence
// boundaries and item.stats$r.drop on complete data. Preconditions: at
// least two items of equal length, at least three complete cases, a total
// score that varies.
func CronbachAlpha(items [][]float64) (Alpha, error) {
	k := len(items)
	if k < 2 {
		return Alpha{}, fmt.Errorf("alpha: %d items, need at least two", k)
	}
	n := len(items[0])
	for i, it := range items {
		if len(it) != n {
			return Alpha{}, fmt.Errorf("alpha: item %d has %d values, item 0 has %d", i, len(it), n)
		}
	}
	var rows []int
	for r := 0; r < n; r++ {
		ok := true
		for _, it := range items {
			if math.IsNaN(it[r]) {
				ok = false
				break
			}
		}
		if ok {
			rows = append(rows, r)
		}
	}
	m := len(rows)
	if m < 3 {
		return Alpha{}, fmt.Errorf("alpha: %d complete cases, need at least three", m)
	}
	total := make([]float64, m)
	for j, r := range rows {
		for _, it := range items {
			total[j] += it[r]
		}
	}
	col := func(i int) []float64 {
		c := make([]float64, m)
		for j, r := range rows {
			c[j] = items[i][r]
		}
		return c
	}
	varT := variance(total)
	if varT == 0 {
		return Alpha{}, errors.New("alpha: total score does not vary")
	}
	var sumVar float64
	res := Alpha{N: m, Items: k, ItemRestCorr: make([]float64, k)}
	rest := make([]float64, m)
	for i := 0; i < k; i++ {
		c := col(i)
		sumVar += variance(c)
		for j := range rest {
			rest[j] = total[j] - c[j]
		}
		res.ItemRestCorr[i] = correlation(c, rest)
	}
	kk := float64(k)
	res.Alpha = kk / (kk - 1) * (1 - sumVar/varT)
	res.CILow, res.CIHigh = feldtCI(res.Alpha, m, k, 0.95)
	return res, nil
}

// variance is the sample variance with denominator n−1.
func variance(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	mean := s / float64(len(x))
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return ss / float64(len(x)-1)
}

// correlation is Pearson's r (NaN when either variable is constant).
func correlation(x, y []float64) float64 {
	var sx, sy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
	}
	mx, my := sx/float64(len(x)), sy/float64(len(y))
	var sxy, sxx, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	return sxy / math.Sqrt(sxx*syy)
}
