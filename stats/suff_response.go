package stats

import (
	"errors"
	"fmt"
	"math"
)

// Sums of models that share their rows' x and differ only in some rows'
// response: multiple imputation of the outcome only (the completed data
// sets differ in the imputed y), and δ-adjusted sensitivity analyses (the
// same sets with δ added to some imputed y). A row whose x is the same in
// every model is added once, with Add at the response shift (its response
// cross-products are then 0), and each model adds only the row's response
// part with AddResponse: O(K) a row instead of Add's O(K²). ShiftResponse
// then moves the response of a set of rows by δ from their sums alone.

// ResponseShift returns y₀, the response value of the shift row (see
// SetShift; 0 before the shift is set). A row added by Add with y = y₀
// adds nothing to the response's cross-products, so AddResponse can add
// them later.
func (s *ClusterSums) ResponseShift() float64 { return s.shift[s.k] }

// AddResponse adds the response part of a row already in the sums with
// the response at the shift (Add(cluster, x, ResponseShift(), w)): the
// cross-products x̃ỹ (and with the weights, wx̃ỹ and w²x̃ỹ), ỹ², and the
// sums of ỹ, with ỹ = y − y₀. The sums then equal, to rounding, sums to
// which the row was added by Add(cluster, x, y, w); the row count, X'X and
// the sums of x are not touched. x and w must be the row's (AddResponse
// cannot check that the row was added); it returns an error, and adds
// nothing, for a non-finite value, a bad weight or a cluster with no rows.
// The cost is O(K) a row.
func (s *ClusterSums) AddResponse(cluster int, x []float64, y, w float64) error {
	k := s.k
	if len(x) != k {
		return fmt.Errorf("cluster sums: row has %d values for %d columns", len(x), k)
	}
	if cluster < 0 || cluster >= len(s.cl) || s.cl[cluster] == nil || s.cl[cluster].n == 0 {
		return fmt.Errorf("cluster sums: response for cluster %d, which has no rows", cluster)
	}
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return fmt.Errorf("cluster sums: response is %v", y)
	}
	if s.weighted && (!(w > 0) || math.IsInf(w, 0)) {
		return fmt.Errorf("cluster sums: weight is %v, need a finite positive weight", w)
	}
	yt := y - s.shift[k]
	a := s.cl[cluster]
	p := k + 1
	if !s.weighted {
		for i, v := range x {
			if zi := v - s.shift[i]; zi != 0 {
				a.pzz[i*p+k] += zi * yt
			}
		}
		a.pzz[k*p+k] += yt * yt
		a.psz[k] += yt
		return nil
	}
	w2 := w * w
	for i, v := range x {
		if zi := v - s.shift[i]; zi != 0 {
			a.pzz[i*p+k] += zi * yt
			a.pzwz[i*p+k] += w * zi * yt
			a.pzw2z[i*p+k] += w2 * zi * yt
		}
	}
	a.pzz[k*p+k] += yt * yt
	a.pzwz[k*p+k] += w * yt * yt
	a.pzw2z[k*p+k] += w2 * yt * yt
	a.psz[k] += yt
	a.pswz[k] += w * yt
	a.psw2z[k] += w2 * yt
	return nil
}

// ShiftResponse adds delta to the response of n rows of cluster that are
// in the (unweighted) sums, given those rows' sums as they stand: sumX,
// the K column sums of their x, and sumY, the sum of their responses
// (plain values, not shifted). With x̃ = x − x₀ and ỹ = y − y₀ (the shift),
// moving each such y by δ changes only the response's sums:
//
//	X̃'ỹ += δ·Σx̃,   ỹ'ỹ += 2δ·Σỹ + n·δ²,   Σỹ += n·δ,
//
// with Σx̃ = sumX − n·x₀ and Σỹ = sumY − n·y₀. So the sums of a δ-adjusted
// model follow from the unadjusted ones in O(G·K), without the rows. The
// result equals, to rounding, sums to which the rows were added with y + δ.
func (s *ClusterSums) ShiftResponse(cluster, n int, sumX []float64, sumY, delta float64) error {
	k := s.k
	if s.weighted {
		return errors.New("cluster sums: ShiftResponse needs unweighted sums")
	}
	if len(sumX) != k {
		return fmt.Errorf("cluster sums: %d column sums for %d columns", len(sumX), k)
	}
	if n == 0 || delta == 0 {
		return nil
	}
	if n < 0 || cluster < 0 || cluster >= len(s.cl) || s.cl[cluster] == nil || s.cl[cluster].n < n {
		return fmt.Errorf("cluster sums: shift of %d rows of cluster %d, which has fewer", n, cluster)
	}
	if math.IsNaN(delta) || math.IsInf(delta, 0) || math.IsNaN(sumY) || math.IsInf(sumY, 0) {
		return fmt.Errorf("cluster sums: shift %v of responses summing to %v", delta, sumY)
	}
	a := s.cl[cluster]
	p := k + 1
	fn := float64(n)
	for i, v := range sumX {
		if zi := v - fn*s.shift[i]; zi != 0 {
			a.pzz[i*p+k] += delta * zi
		}
	}
	a.pzz[k*p+k] += 2*delta*(sumY-fn*s.shift[k]) + fn*delta*delta
	a.psz[k] += fn * delta
	return nil
}

// ImputedSums builds the per-cluster sums of a linear model (unweighted)
// for each of several completed data sets and, in each, at several δ
// added to the response of some imputed rows (a δ-adjusted sensitivity
// analysis), at the cost of the imputed rows only:
//
//   - rows with nothing imputed (AddObserved) and the x part of rows whose
//     x is observed and response imputed (AddFixed) are summed once;
//   - each completed set (Begin) adds the fixed-x rows' responses
//     (Responses, O(K) a row) and the rows imputed in x (Row, O(K²));
//   - At(δ) gives the set's sums with δ added to the responses of the rows
//     marked shifted, from the δ = 0 sums by ShiftResponse (O(G·K²)).
//
// The sums At returns equal, to rounding, sums built by adding every row
// of the completed set (y + δ for the shifted rows) with Add. Memory is
// O(G·K²) and K + 2 numbers a fixed-x row, whatever the number of other
// rows. Not safe for concurrent use.
type ImputedSums struct {
	k              int
	base, work, at *ClusterSums
	nFixed, nShift []int       // per cluster: fixed-x rows δ moves; all rows δ moves in this set
	fixedX, sumX   [][]float64 // per cluster: their Σx (fixed-x rows; all, this set)
	sumY           []float64   // per cluster: Σy of the rows δ moves, this set
	fixedCl        []int32     // each fixed-x row's cluster, in AddFixed order
	fixedXt        []float64   // each fixed-x row's x − x₀ (K values)
	fixedSh        []bool      // whether δ moves each fixed-x row
	began          bool
}

// NewImputedSums returns empty sums for a model with k columns.
func NewImputedSums(k int) (*ImputedSums, error) {
	base, err := NewClusterSums(k, false)
	if err != nil {
		return nil, err
	}
	return &ImputedSums{k: k, base: base}, nil
}

// AddObserved adds a row with nothing imputed (the same in every set and
// at every δ). The first row added, observed or fixed, sets the shift
// (see ClusterSums): add an observed row first where there is one.
func (m *ImputedSums) AddObserved(cluster int, x []float64, y float64) error {
	if m.began {
		return errors.New("imputed sums: observed row after the first completed set")
	}
	return m.base.Add(cluster, x, y, 1)
}

// AddFixed adds the x part of a row whose x is observed and whose
// response is imputed; shifted says that δ moves its response. Each
// completed set gives the responses with Responses.
func (m *ImputedSums) AddFixed(cluster int, x []float64, shifted bool) error {
	if m.began {
		return errors.New("imputed sums: fixed row after the first completed set")
	}
	if err := m.base.Add(cluster, x, m.base.ResponseShift(), 1); err != nil {
		return err
	}
	m.fixedCl, m.fixedSh = append(m.fixedCl, int32(cluster)), append(m.fixedSh, shifted)
	for j, v := range x {
		m.fixedXt = append(m.fixedXt, v-m.base.shift[j])
	}
	if shifted {
		m.grow(cluster)
		m.nFixed[cluster]++
		for j, v := range x {
			m.fixedX[cluster][j] += v
		}
	}
	return nil
}

func (m *ImputedSums) grow(cluster int) {
	for len(m.nFixed) <= cluster {
		m.nFixed = append(m.nFixed, 0)
		m.fixedX = append(m.fixedX, make([]float64, m.k))
	}
}

// Begin starts a completed data set: the sums of the observed rows and
// the fixed rows' x parts, to which Response and Row add the set's rows.
func (m *ImputedSums) Begin() {
	m.began = true
	if m.work == nil {
		m.work = m.base.Clone()
	} else {
		m.work.CopyFrom(m.base)
	}
	m.grow(len(m.base.cl) - 1)
	m.nShift = append(m.nShift[:0], m.nFixed...)
	m.sumY = m.sumY[:0]
	for range m.nFixed {
		m.sumY = append(m.sumY, 0)
	}
	for len(m.sumX) < len(m.fixedX) {
		m.sumX = append(m.sumX, make([]float64, m.k))
	}
	for c, fx := range m.fixedX {
		copy(m.sumX[c], fx)
	}
}

// Responses adds this set's responses of the rows added by AddFixed, y[r]
// being the response of the r-th of them: what AddResponse adds, row by
// row, at O(K) a row.
func (m *ImputedSums) Responses(y []float64) error {
	if !m.began {
		return errors.New("imputed sums: responses before Begin")
	}
	if len(y) != len(m.fixedCl) {
		return fmt.Errorf("imputed sums: %d responses for %d rows", len(y), len(m.fixedCl))
	}
	k, p, y0 := m.k, m.k+1, m.base.shift[m.k]
	for r, v := range y {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("imputed sums: response %d is %v", r, v)
		}
		c := m.fixedCl[r]
		a, yt := m.work.cl[c], v-y0
		for i, xt := range m.fixedXt[r*k : r*k+k] {
			a.pzz[i*p+k] += xt * yt
		}
		a.pzz[k*p+k] += yt * yt
		a.psz[k] += yt
		if m.fixedSh[r] {
			m.sumY[c] += v
		}
	}
	return nil
}

// Row adds a row of this set whose x has imputed values (and its
// response, imputed or not; shifted says that δ moves it).
func (m *ImputedSums) Row(cluster int, x []float64, y float64, shifted bool) error {
	if !m.began {
		return errors.New("imputed sums: row before Begin")
	}
	if err := m.work.Add(cluster, x, y, 1); err != nil {
		return err
	}
	if shifted {
		for len(m.nShift) <= cluster {
			m.nShift, m.sumY = append(m.nShift, 0), append(m.sumY, 0)
			m.sumX = append(m.sumX, make([]float64, m.k))
		}
		m.nShift[cluster]++
		m.sumY[cluster] += y
		for j, v := range x {
			m.sumX[cluster][j] += v
		}
	}
	return nil
}

// At returns the current set's sums with δ added to the shifted rows'
// responses (δ = 0: the set as imputed). The sums are owned by m and valid
// until the next call of At or Begin; fitting them is all a caller may do.
func (m *ImputedSums) At(delta float64) (*ClusterSums, error) {
	if !m.began {
		return nil, errors.New("imputed sums: At before Begin")
	}
	if math.IsNaN(delta) || math.IsInf(delta, 0) {
		return nil, fmt.Errorf("imputed sums: delta is %v", delta)
	}
	if delta == 0 {
		return m.work, nil
	}
	if m.at == nil {
		m.at = m.work.Clone()
	} else {
		m.at.CopyFrom(m.work)
	}
	for c, n := range m.nShift {
		if err := m.at.ShiftResponse(c, n, m.sumX[c], m.sumY[c], delta); err != nil {
			return nil, err
		}
	}
	return m.at, nil
}
