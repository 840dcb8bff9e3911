package stats

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Sums of models that share their rows' x and differ only in some rows'
// response: multiple imputation of the outcome only (the completed data
// sets differ in the imputed y), and δ-adjusted sensitivity analyses (the
// same sets with δ added to some imputed y). A row whose x is the same in
// every model is added once, with Add at the response shift (its response
// cross-products are then 0), and each model adds only the rows' response
// parts (ImputedSums.Responses): O(K) a row instead of Add's O(K²).
// ShiftResponse then moves the response of a set of rows by δ from their
// sums alone.

// ResponseShift returns y₀, the response value of the shift row (see
// SetShift; 0 before the shift is set). A row added by Add with y = y₀
// adds nothing to the response's cross-products, so they can be added
// later (ImputedSums).
func (s *ClusterSums) ResponseShift() float64 { return s.shift[s.k] }

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
//     x is observed and response imputed (AddFixed) or whose x has one
//     imputed column (AddPartial) are summed once;
//   - each completed set (Begin) adds the imputed values of those rows
//     (Responses, Partials: O(K) a row);
//   - At(δ) gives the set's sums with δ added to the responses of the rows
//     marked shifted, from the δ = 0 sums by ShiftResponse (O(G·K²)).
//
// The sums At returns equal, to rounding, sums built by adding every row
// of the completed set (y + δ for the shifted rows) with Add. Memory is
// O(G·K²), and for each fixed or partial row its cluster, its flag and the
// values of the x columns that vary within its cluster's such rows (the
// others are kept once a cluster). Not safe for concurrent use.
type ImputedSums struct {
	k              int
	base, work, at *ClusterSums
	nFixed, nShift []int       // per cluster: fixed and partial rows δ moves; all rows δ moves in this set
	fixedX, sumX   [][]float64 // per cluster: their Σx (observed columns; all, this set)
	sumY           []float64   // per cluster: Σy of the rows δ moves, this set
	fixed, part    imputedRows
	began          bool
	acc, scratch   []float64
}

// imputedRows are the rows of AddFixed or AddPartial: cluster, whether δ
// moves the response, and x̃ = x − x₀. Until the first Begin xt holds K
// values a row; then (packed) only the values of the columns that vary
// among the cluster's rows (cols[c]), the others being first[c].
type imputedRows struct {
	cl     []int32
	sh     []bool
	xt     []float64
	first  [][]float64 // per cluster: the first row's x̃
	varies [][]bool    // per cluster: the columns whose x̃ differs between rows
	cols   [][]int     // per cluster, once packed: those columns
	col    int         // the imputed column (partial rows), else −1
	packed bool
}

func (g *imputedRows) add(cluster int, xt []float64, shifted bool) {
	g.cl, g.sh = append(g.cl, int32(cluster)), append(g.sh, shifted)
	g.xt = append(g.xt, xt...)
	for len(g.first) <= cluster {
		g.first, g.varies = append(g.first, nil), append(g.varies, make([]bool, len(xt)))
	}
	if g.first[cluster] == nil {
		g.first[cluster] = append([]float64(nil), xt...)
	}
	for j, v := range xt {
		if v != g.first[cluster][j] {
			g.varies[cluster][j] = true
		}
	}
}

// pack keeps each row's values of its cluster's varying columns only.
func (g *imputedRows) pack(k int) {
	if g.packed {
		return
	}
	g.packed = true
	g.cols = make([][]int, len(g.varies))
	for c, v := range g.varies {
		for j, ok := range v {
			if ok {
				g.cols[c] = append(g.cols[c], j)
			}
		}
	}
	out := 0
	for r, c := range g.cl {
		for _, j := range g.cols[c] {
			g.xt[out] = g.xt[r*k+j]
			out++
		}
	}
	g.xt = slices.Clip(g.xt[:out])
}

// NewImputedSums returns empty sums for a model with k columns.
func NewImputedSums(k int) (*ImputedSums, error) {
	base, err := NewClusterSums(k, false)
	if err != nil {
		return nil, err
	}
	return &ImputedSums{k: k, base: base, fixed: imputedRows{col: -1}, part: imputedRows{col: -1}}, nil
}

// Grow makes room for fixed more AddFixed rows and partial more AddPartial
// rows, so that adding them does not copy what was added before.
func (m *ImputedSums) Grow(fixed, partial int) {
	m.fixed.grow(fixed, m.k)
	m.part.grow(partial, m.k)
}

func (g *imputedRows) grow(n, k int) {
	if n > 0 {
		g.cl, g.sh, g.xt = slices.Grow(g.cl, n), slices.Grow(g.sh, n), slices.Grow(g.xt, n*k)
	}
}

// AddObserved adds a row with nothing imputed (the same in every set and
// at every δ). The first row added, observed or not, sets the shift (see
// ClusterSums): add an observed row first where there is one.
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
	return m.addPartial(&m.fixed, cluster, x, -1, shifted)
}

// AddPartial adds a row whose x has one imputed column, col (not 0; its
// value in x is ignored), and whose response may be imputed too; shifted
// says that δ moves its response. Each completed set gives the column's
// values and the responses with Partials. The column counts as not
// constant.
func (m *ImputedSums) AddPartial(cluster int, x []float64, col int, shifted bool) error {
	if col < 1 || col >= m.k || (m.part.col >= 0 && m.part.col != col) {
		return fmt.Errorf("imputed sums: imputed column %d of %d (one column for every partial row)", col, m.k)
	}
	m.part.col = col
	return m.addPartial(&m.part, cluster, x, col, shifted)
}

func (m *ImputedSums) addPartial(g *imputedRows, cluster int, x []float64, col int, shifted bool) error {
	if m.began {
		return errors.New("imputed sums: row added after the first completed set")
	}
	if len(x) != m.k {
		return fmt.Errorf("imputed sums: row has %d values for %d columns", len(x), m.k)
	}
	xs := append(m.scratch[:0], x...)
	m.scratch = xs
	if col >= 0 {
		xs[col] = 0 // the shift's value once there is a shift
		if m.base.N() > 0 {
			xs[col] = m.base.shift[col]
		}
	}
	if err := m.base.Add(cluster, xs, m.base.ResponseShift(), 1); err != nil {
		return err
	}
	if col >= 0 {
		m.base.constant[col] = false
	}
	if shifted {
		m.grow(cluster)
		m.nFixed[cluster]++
		for j, v := range xs {
			if j != col {
				m.fixedX[cluster][j] += v
			}
		}
	}
	for j, v := range xs {
		xs[j] = v - m.base.shift[j]
	}
	g.add(cluster, xs, shifted)
	return nil
}

func (m *ImputedSums) grow(cluster int) {
	for len(m.nFixed) <= cluster {
		m.nFixed = append(m.nFixed, 0)
		m.fixedX = append(m.fixedX, make([]float64, m.k))
	}
}

// Begin starts a completed data set: the sums of the observed rows and
// the x parts of the others, to which Responses and Partials add the
// set's imputed values.
func (m *ImputedSums) Begin() {
	if !m.began {
		m.fixed.pack(m.k)
		m.part.pack(m.k)
	}
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
// being the response of the r-th of them: their response cross-products,
// ỹ² and Σỹ, at O(K) a row (fastest when the rows were added cluster by
// cluster: runs of a cluster's rows are summed in blocks before they
// reach its sums).
func (m *ImputedSums) Responses(y []float64) error {
	if !m.began {
		return errors.New("imputed sums: responses before Begin")
	}
	if len(y) != len(m.fixed.cl) {
		return fmt.Errorf("imputed sums: %d responses for %d rows", len(y), len(m.fixed.cl))
	}
	return m.addImputed(&m.fixed, nil, y, nil)
}

// ResponsesAt is Responses with the r-th row's response at y[pos[r]]: the
// values of a completed set in another order (an imputer's), read in
// place.
func (m *ImputedSums) ResponsesAt(y []float64, pos []int32) error {
	if !m.began {
		return errors.New("imputed sums: responses before Begin")
	}
	if len(pos) != len(m.fixed.cl) {
		return fmt.Errorf("imputed sums: %d responses for %d rows", len(pos), len(m.fixed.cl))
	}
	return m.addImputed(&m.fixed, nil, y, pos)
}

// Partials adds this set's values of the rows added by AddPartial: xcol[r]
// the imputed column's value and y[r] the response of the r-th of them,
// at O(K) a row.
func (m *ImputedSums) Partials(xcol, y []float64) error {
	if !m.began {
		return errors.New("imputed sums: partial rows before Begin")
	}
	if len(y) != len(m.part.cl) || len(xcol) != len(m.part.cl) {
		return fmt.Errorf("imputed sums: %d values and %d responses for %d rows", len(xcol), len(y), len(m.part.cl))
	}
	return m.addImputed(&m.part, xcol, y, nil)
}

// PartialsAt is Partials with the r-th row's values at xcol[pos[r]] and
// y[pos[r]].
func (m *ImputedSums) PartialsAt(xcol, y []float64, pos []int32) error {
	if !m.began {
		return errors.New("imputed sums: partial rows before Begin")
	}
	if len(pos) != len(m.part.cl) || len(xcol) != len(y) {
		return fmt.Errorf("imputed sums: %d positions for %d rows, %d values and %d responses", len(pos), len(m.part.cl), len(xcol), len(y))
	}
	return m.addImputed(&m.part, xcol, y, pos)
}

// addImputed adds the rows of g, whose imputed column g.col (if any) and
// responses are xcol and y: the cross-products of z̃_col = xcol − x₀_col
// and ỹ = y − y₀ with x̃ and each other, and their sums, accumulated over
// runs of up to suffBlock rows of one cluster before they are added to the
// cluster's totals (a column constant among the cluster's rows enters as
// its value times the run's Σỹ or Σz̃_col). With pos, the r-th row's
// values are y[pos[r]] and xcol[pos[r]], else y[r] and xcol[r].
func (m *ImputedSums) addImputed(g *imputedRows, xcol, y []float64, pos []int32) error {
	k, p, col := m.k, m.k+1, g.col
	if cap(m.acc) < 2*k+5 {
		m.acc = make([]float64, 2*k+5)
	}
	acc := m.acc[:2*k+5]
	clear(acc)
	accY, accC := acc[:k], acc[k:2*k] // Σx̃ỹ, Σx̃z̃_col over the varying columns
	const yy, cc, cy, sy, sc = 0, 1, 2, 3, 4
	tail := acc[2*k:]
	y0, c0 := m.base.shift[k], 0.0
	if col >= 0 {
		c0 = m.base.shift[col]
	}
	cur, run, off := int32(-1), 0, 0
	var cols []int
	flush := func() {
		if cur < 0 {
			return
		}
		a, first := m.work.cl[cur], g.first[cur]
		for i := 0; i < k; i++ {
			if !g.varies[cur][i] {
				accY[i] += first[i] * tail[sy]
				accC[i] += first[i] * tail[sc]
			}
			a.zz[i*p+k] += accY[i]
			if col >= 0 && i != col {
				a.zz[min(i, col)*p+max(i, col)] += accC[i]
			}
		}
		a.zz[k*p+k] += tail[yy]
		a.sz[k] += tail[sy]
		if col >= 0 {
			a.zz[col*p+col] += tail[cc]
			a.zz[col*p+k] += tail[cy]
			a.sz[col] += tail[sc]
		}
		clear(acc)
	}
	for r := range g.cl {
		at := r
		if pos != nil {
			at = int(pos[r])
			if at < 0 || at >= len(y) {
				return fmt.Errorf("imputed sums: row %d at position %d of %d values", r, at, len(y))
			}
		}
		v := y[at]
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("imputed sums: response %d is %v", r, v)
		}
		c := g.cl[r]
		if c != cur || run == suffBlock {
			flush()
			cur, run, cols = c, 0, g.cols[c]
		}
		run++
		yt := v - y0
		row := g.xt[off : off+len(cols)]
		off += len(cols)
		for i, j := range cols {
			accY[j] += row[i] * yt
		}
		tail[yy] += yt * yt
		tail[sy] += yt
		if col >= 0 {
			xc := xcol[at]
			if math.IsNaN(xc) || math.IsInf(xc, 0) {
				return fmt.Errorf("imputed sums: imputed value %d is %v", r, xc)
			}
			ct := xc - c0
			for i, j := range cols {
				accC[j] += row[i] * ct
			}
			tail[cc] += ct * ct
			tail[cy] += ct * yt
			tail[sc] += ct
			if g.sh[r] {
				m.sumX[c][col] += xc
			}
		}
		if g.sh[r] {
			m.sumY[c] += v
		}
	}
	flush()
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
