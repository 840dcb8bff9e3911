package stats

import (
	"errors"
	"fmt"
	"math"
)

// AlphaAccumulator gathers Cronbach's alpha from complete cases one row at
// a time: the count, the item sums and the items' cross-products, so its
// memory is O(k²) for k items whatever the number of rows. Result gives
// what CronbachAlpha gives for the same rows.
//
// Rows are accumulated shifted by the first row added (x − x₁), which keeps
// the sums small. With small integer item codes every sum, cross-product
// and co-moment n·Σxy − Σx·Σy is then an integer, held exactly in a float64
// while it stays below 2⁵³ (for 15 items coded 0–4, the total's co-moment
// is at most 900n²: exact up to about three million cases; past that it
// rounds, keeping float64 precision), so the result does not depend on the
// order of the rows or on how accumulators were merged. With other data the
// shift avoids the cancellation of the textbook one-pass formula when the
// items' means are large next to their spread.
//
// An AlphaAccumulator is not safe for concurrent use; give each goroutine
// its own and Merge them.
type AlphaAccumulator struct {
	k     int
	n     int
	shift []float64 // the first row added
	sum   []float64 // Σ (x_i − shift_i)
	cross []float64 // Σ (x_i − shift_i)(x_j − shift_j), k × k, upper triangle (j ≥ i) only
	d     []float64 // scratch: the row being added, shifted
}

// NewAlphaAccumulator returns an empty accumulator for a scale of the given
// number of items.
func NewAlphaAccumulator(items int) *AlphaAccumulator {
	items = max(items, 0)
	return &AlphaAccumulator{
		k:     items,
		shift: make([]float64, items),
		sum:   make([]float64, items),
		cross: make([]float64, items*items),
		d:     make([]float64, items),
	}
}

// Items is the number of items the accumulator was made for.
func (a *AlphaAccumulator) Items() int { return a.k }

// N is the number of complete cases added.
func (a *AlphaAccumulator) N() int { return a.n }

// Add adds one case: row[i] is item i's value. A row with a NaN (a missing
// answer) is not a complete case and is left out, as CronbachAlpha leaves
// it out. Add panics when len(row) is not the number of items (a
// programming error, not a data problem).
func (a *AlphaAccumulator) Add(row []float64) {
	if len(row) != a.k {
		panic(fmt.Sprintf("stats: AlphaAccumulator.Add: row of %d values for %d items", len(row), a.k))
	}
	for _, v := range row {
		if math.IsNaN(v) {
			return
		}
	}
	if a.n == 0 {
		copy(a.shift, row)
	}
	a.n++
	d := a.d
	for i, v := range row {
		d[i] = v - a.shift[i]
	}
	k := a.k
	for i, di := range d {
		if di == 0 {
			continue // adds nothing (frequent with 0/1 items and the shift)
		}
		a.sum[i] += di
		c := a.cross[i*k : (i+1)*k]
		for j := i; j < k; j++ {
			c[j] += di * d[j]
		}
	}
}

// Merge adds b's cases to a (b is unchanged). With integer item codes the
// result is exactly what adding b's rows to a would give.
func (a *AlphaAccumulator) Merge(b *AlphaAccumulator) error {
	if b.k != a.k {
		return fmt.Errorf("alpha: merging %d items into %d", b.k, a.k)
	}
	if b.n == 0 {
		return nil
	}
	if a.n == 0 {
		a.n = b.n
		copy(a.shift, b.shift)
		copy(a.sum, b.sum)
		copy(a.cross, b.cross)
		return nil
	}
	// b's rows shifted by a's first row: x − a.shift = (x − b.shift) + δ.
	k, nb := a.k, float64(b.n)
	delta := a.d
	for i := range delta {
		delta[i] = b.shift[i] - a.shift[i]
	}
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			a.cross[i*k+j] += b.cross[i*k+j] + delta[i]*b.sum[j] + delta[j]*b.sum[i] + nb*delta[i]*delta[j]
		}
	}
	for i := range a.sum {
		a.sum[i] += b.sum[i] + nb*delta[i]
	}
	a.n += b.n
	return nil
}

// Result is Cronbach's alpha of the cases added, with Feldt's interval at
// the given confidence level (0.95 for the 95% interval) and the corrected
// item–total correlations, by the formulas of CronbachAlpha. It works from
// the co-moments C_ij = n·Σx_i x_j − Σx_i·Σx_j (n(n−1) times the
// covariances; the factor cancels in alpha and in every correlation).
// Preconditions as CronbachAlpha's: at least two items, at least three
// complete cases, a total score that varies; and 0 < level < 1. An item
// that does not vary has a NaN correlation.
func (a *AlphaAccumulator) Result(level float64) (Alpha, error) {
	k := a.k
	if k < 2 {
		return Alpha{}, fmt.Errorf("alpha: %d items, need at least two", k)
	}
	if a.n < 3 {
		return Alpha{}, fmt.Errorf("alpha: %d complete cases, need at least three", a.n)
	}
	if !(level > 0 && level < 1) {
		return Alpha{}, fmt.Errorf("alpha: confidence level %v outside (0, 1)", level)
	}
	n := float64(a.n)
	com := func(i, j int) float64 {
		if j < i {
			i, j = j, i
		}
		return n*a.cross[i*k+j] - a.sum[i]*a.sum[j]
	}
	// rowSum[i] = Σ_j C_ij is n(n−1) times the covariance of item i with
	// the total; their sum is n(n−1) times the total's variance.
	rowSum := make([]float64, k)
	var cTT, sumCii float64
	for i := 0; i < k; i++ {
		for j := 0; j < k; j++ {
			rowSum[i] += com(i, j)
		}
		cTT += rowSum[i]
		sumCii += com(i, i)
	}
	if !(cTT > 0) {
		return Alpha{}, errors.New("alpha: total score does not vary")
	}
	res := Alpha{N: a.n, Items: k, ItemRestCorr: make([]float64, k)}
	for i := 0; i < k; i++ {
		cii := com(i, i)
		cir := rowSum[i] - cii         // item with the rest
		crr := cTT - 2*rowSum[i] + cii // the rest
		if den := math.Sqrt(cii * crr); den > 0 {
			res.ItemRestCorr[i] = cir / den
		} else {
			res.ItemRestCorr[i] = math.NaN()
		}
	}
	kk := float64(k)
	// 1 − ΣC_ii/C_TT as (C_TT − ΣC_ii)/C_TT: the difference (the
	// off-diagonal co-moments) is exact with integer codes, so a small
	// alpha keeps its digits.
	res.Alpha = kk / (kk - 1) * ((cTT - sumCii) / cTT)
	res.CILow, res.CIHigh = feldtCI(res.Alpha, a.n, k, level)
	return res, nil
}

// feldtCI is Feldt's interval for alpha from n complete cases of k items at
// the given confidence level.
func feldtCI(alpha float64, n, k int, level float64) (float64, float64) {
	hi, lo := (1+level)/2, (1-level)/2
	if level == 0.95 {
		// The decimal tails exactly: (1 − 0.95)/2 is 0.025000000000000022
		// in float64.
		hi, lo = 0.975, 0.025
	}
	d1, d2 := float64(n-1), float64(n-1)*float64(k-1)
	return 1 - (1-alpha)*FQuantile(hi, d1, d2), 1 - (1-alpha)*FQuantile(lo, d1, d2)
}
