package stats

import (
	"errors"
	"fmt"
	"math"
)

// AddGrouped adds n rows whose design rows are constant within groups but
// for one column, from a handful of moments per group instead of a K × K
// update per row. In the models of a cluster-randomised trial every column
// but a baseline covariate is constant within a team (the intercept, the
// arm, stratum dummies), so a group is a team (or the rows of a team that
// share every other column) and its cross-products follow from
//
//	n, Σu, Σe, Σu², Σue, Σe²  (u = v − v₀, e = y − y₀: shifted as Add shifts)
//
// and, for weighted sums, the same with weights w and w² (Σw, Σwu, Σ(wu)u,
// …), together with the group's constant row c: the cross-product of
// columns i and j is c̃_i·c̃_j·n, c̃_i·Σu, Σu², … (c̃ = c − c₀). The moments
// are summed row by row in blocks of suffBlock rows as Add sums its
// cross-products, so that for a group that is a whole cluster and constant
// columns at 0 or 1 the sums are those of Add over the same rows to the
// bit; a constant at another value rounds its products differently (c̃·Σu
// instead of Σc̃u), a relative difference of the order of ε.
//
// group[i] is row i's group (0 ≤ group[i] < len(cluster)); cluster[g] the
// cluster number of group g; row(g, buf) fills buf with the K columns of a
// row of group g (buf[vary] is ignored and its value taken from v); vary is
// the column that varies within groups (−1: none, v unused); y the
// responses and w the weights (nil: 1; ignored by unweighted sums). The
// groups are added in the order of their numbers. It returns an error, and
// adds nothing, for a non-finite value, a bad weight, a row whose column
// vary is not v, or a bad cluster or group number.
func (s *ClusterSums) AddGrouped(group []int32, cluster []int, row func(g int, buf []float64), vary int, v, y, w []float64) error {
	k, n, ng := s.k, len(y), len(cluster)
	if (vary >= 0 && len(v) != n) || (w != nil && len(w) != n) || len(group) != n {
		return fmt.Errorf("cluster sums: lengths y %d, v %d, w %d, groups %d differ", n, len(v), len(w), len(group))
	}
	if vary >= k {
		return fmt.Errorf("cluster sums: varying column %d of %d", vary, k)
	}
	if s.weighted && w == nil {
		return errors.New("cluster sums: weighted sums need weights")
	}
	if n == 0 {
		return nil
	}
	v0 := 0.0
	if vary >= 0 {
		v0 = v[0]
	}
	rows, first, shift, err := s.groupRows(cluster, row, vary, int(group[0]), v0, y[0])
	if err != nil {
		return err
	}
	vShift := 0.0
	if vary >= 0 {
		vShift = shift[vary]
	} else {
		v = nil
	}
	m, err := groupMomentsOf(group, ng, v, y, w, s.weighted, vShift, shift[k])
	if err != nil {
		return err
	}
	s.addGroups(m, cluster, rows, first, shift, vary)
	return nil
}

// GroupMoments is the moments of rows by group that AddGrouped takes (n,
// Σu, Σe, Σu², Σue, Σe² and, with weights, their weighted forms), taken
// once and added by AddMoments to any number of empty sums whose designs
// are constant within the same groups but for one column v, other than
// the first: in cpi, the primary model's sums and trust_effects' per-trust
// model share the moments of y and y_baseline over the team groups. The
// moments are read only after NewGroupMoments returns.
type GroupMoments struct {
	mom              []groupMoments
	n, g0            int     // rows; row 0's group
	v0, y0           float64 // row 0's v and y
	vShift, yShift   float64 // the shift of the moments (as Add's first row sets it)
	vConst           bool    // every v is v0
	varies, weighted bool
}

// NewGroupMoments takes the moments of the rows: group[i] is row i's group
// (0 ≤ group[i] < groups), v the values of the varying column (nil: none),
// y the responses and w the weights (nil: unweighted moments only). The
// moments are shifted as Add shifts a first row: by v[0] (0 when v[0] is 1)
// and y[0]. Errors as AddGrouped's for a non-finite value, a bad weight or
// a bad group number.
func NewGroupMoments[G GroupIndex](group []G, groups int, v, y, w []float64) (*GroupMoments, error) {
	n := len(y)
	if (v != nil && len(v) != n) || (w != nil && len(w) != n) || len(group) != n {
		return nil, fmt.Errorf("cluster sums: lengths y %d, v %d, w %d, groups %d differ", n, len(v), len(w), len(group))
	}
	if n == 0 {
		return &GroupMoments{mom: make([]groupMoments, groups), varies: v != nil, weighted: w != nil}, nil
	}
	vShift := 0.0
	if v != nil && v[0] != 1 {
		vShift = v[0]
	}
	return groupMomentsOf(group, groups, v, y, w, w != nil, vShift, y[0])
}

// GroupIndex is the type of the rows' group numbers: a byte for at most
// 256 groups takes a quarter of int32's memory over a million rows.
type GroupIndex interface{ ~uint8 | ~int32 }

// groupMomentsOf takes the moments shifted by v0 and y0.
func groupMomentsOf[G GroupIndex](group []G, ng int, v, y, w []float64, weighted bool, v0, y0 float64) (*GroupMoments, error) {
	m := &GroupMoments{mom: make([]groupMoments, ng), n: len(y), yShift: y0, vShift: v0, vConst: true, varies: v != nil, weighted: weighted}
	m.g0, m.y0 = int(group[0]), y[0]
	if v != nil {
		m.v0 = v[0]
	}
	mom := m.mom
	for i, yi := range y {
		g := int(group[i])
		if g < 0 || g >= ng {
			return nil, fmt.Errorf("cluster sums: row %d: group %d of %d", i, g, ng)
		}
		vi := 0.0
		if v != nil {
			vi = v[i]
		}
		if math.IsNaN(yi) || math.IsInf(yi, 0) {
			return nil, fmt.Errorf("cluster sums: row %d: y is %v", i, yi)
		}
		if math.IsNaN(vi) || math.IsInf(vi, 0) {
			return nil, fmt.Errorf("cluster sums: row %d: varying column is %v", i, vi)
		}
		wi := 1.0
		if weighted {
			wi = w[i]
			if !(wi > 0) || math.IsInf(wi, 0) {
				return nil, fmt.Errorf("cluster sums: row %d: weight is %v, need a finite positive weight", i, wi)
			}
		}
		if vi != m.v0 {
			m.vConst = false
		}
		mom[g].add(vi-v0, yi-y0, wi, weighted)
	}
	for g := range mom {
		mom[g].flush()
	}
	return m, nil
}

// AddMoments adds the rows whose moments are m: cluster[g] is group g's
// cluster, row(g, buf) fills buf with the K columns of a row of group g
// (buf[vary] ignored), vary the column whose values the moments took (−1:
// none). The sums must be empty, or shifted as the moments are; weighted
// sums need weighted moments. It returns an error, and adds nothing, for
// a design value that is not finite, a bad cluster number or moments that
// do not fit.
func (s *ClusterSums) AddMoments(m *GroupMoments, cluster []int, row func(g int, buf []float64), vary int) error {
	k := s.k
	switch {
	case len(cluster) != len(m.mom):
		return fmt.Errorf("cluster sums: %d clusters for the moments of %d groups", len(cluster), len(m.mom))
	case vary >= k:
		return fmt.Errorf("cluster sums: varying column %d of %d", vary, k)
	case (vary >= 0) != m.varies:
		return fmt.Errorf("cluster sums: varying column %d for moments with a varying column %v", vary, m.varies)
	case s.weighted && !m.weighted:
		return errors.New("cluster sums: weighted sums need weights")
	case m.n == 0:
		return nil
	}
	rows, first, shift, err := s.groupRows(cluster, row, vary, m.g0, m.v0, m.y0)
	if err != nil {
		return err
	}
	if shift[k] != m.yShift || (vary >= 0 && shift[vary] != m.vShift) {
		return errors.New("cluster sums: the moments are shifted otherwise than the sums")
	}
	s.addGroups(m, cluster, rows, first, shift, vary)
	return nil
}

// groupRows returns each group's constant row (checked), the first row
// (row 0: group g0's, with v0 at vary) and the shift of the sums: theirs,
// or as Add sets it from the first row and y0.
func (s *ClusterSums) groupRows(cluster []int, row func(g int, buf []float64), vary, g0 int, v0, y0 float64) (rows, first, shift []float64, err error) {
	k, ng := s.k, len(cluster)
	rows = make([]float64, ng*k)
	for g, c := range cluster {
		if c < 0 || c >= maxClusters {
			return nil, nil, nil, fmt.Errorf("cluster sums: cluster %d, need a number in [0, %d) (see Codes)", c, maxClusters)
		}
		r := rows[g*k : g*k+k]
		row(g, r)
		for j, x := range r {
			if j != vary && (math.IsNaN(x) || math.IsInf(x, 0)) {
				return nil, nil, nil, fmt.Errorf("cluster sums: group %d: x[%d] is %v", g, j, x)
			}
		}
	}
	if g0 < 0 || g0 >= ng {
		return nil, nil, nil, fmt.Errorf("cluster sums: row 0: group %d of %d", g0, ng)
	}
	first = make([]float64, k)
	copy(first, rows[g0*k:])
	if vary >= 0 {
		first[vary] = v0
	}
	shift = s.shift
	if !s.shiftSet {
		shift = make([]float64, k+1)
		for j, x := range first {
			if j > 0 && x == 1 {
				x = 0
			}
			shift[j] = x
		}
		shift[k] = y0
	}
	return rows, first, shift, nil
}

// addGroups adds the groups' moments, all rows being valid.
func (s *ClusterSums) addGroups(m *GroupMoments, cluster []int, rows, first, shift []float64, vary int) {
	k := s.k
	vFirst := 0.0
	if vary >= 0 {
		vFirst = first[vary]
		if s.rows > 0 {
			vFirst = s.first[vary]
		}
	}
	copy(s.shift, shift)
	s.shiftSet = true
	if s.rows == 0 {
		copy(s.first, first)
	}
	for g := range m.mom {
		gm := &m.mom[g]
		if gm.n == 0 {
			continue
		}
		r := rows[g*k : g*k+k]
		for j, x := range r {
			if j != vary && x != s.first[j] {
				s.constant[j] = false
			}
		}
		s.addMoments(cluster[g], r, vary, gm)
	}
	if vary >= 0 && !(m.vConst && m.v0 == vFirst) {
		s.constant[vary] = false
	}
	s.rows += m.n
}

// The moments of a group, by index: with u the varying column and e the
// response (both shifted), and for weight power t = 0, 1, 2 (momW is the
// offset of power t, weight w^t):  Σw^t, Σw^t·u, Σw^t·e, Σ(w^t·u)u,
// Σ(w^t·u)e, Σ(w^t·e)e.
const (
	momOne = iota
	momU
	momE
	momUU
	momUE
	momEE
	momW // the number of moments of one power
)

// groupMoments accumulates one group's moments in blocks of suffBlock rows.
type groupMoments struct {
	n, pn     int
	sum, part [3 * momW]float64
}

func (m *groupMoments) add(u, e, w float64, weighted bool) {
	p := &m.part
	p[momOne]++
	p[momU] += u
	p[momE] += e
	p[momUU] += u * u
	p[momUE] += u * e
	p[momEE] += e * e
	if weighted {
		w2 := w * w
		wu, we := w*u, w*e
		p[momW+momOne] += w
		p[momW+momU] += wu
		p[momW+momE] += we
		p[momW+momUU] += wu * u
		p[momW+momUE] += wu * e
		p[momW+momEE] += we * e
		w2u, w2e := w2*u, w2*e
		p[2*momW+momOne] += w2
		p[2*momW+momU] += w2u
		p[2*momW+momE] += w2e
		p[2*momW+momUU] += w2u * u
		p[2*momW+momUE] += w2u * e
		p[2*momW+momEE] += w2e * e
	}
	m.n++
	m.pn++
	if m.pn == suffBlock {
		m.flush()
	}
}

func (m *groupMoments) flush() {
	for i, x := range m.part {
		m.sum[i] += x
		m.part[i] = 0
	}
	m.pn = 0
}

// addMoments adds a group's moments to its cluster's sums: r is the
// group's row (r[vary] ignored), the moments shifted by s.shift.
func (s *ClusterSums) addMoments(cluster int, r []float64, vary int, m *groupMoments) {
	k, p := s.k, s.k+1
	a := s.acc(cluster)
	a.flush()
	// z̃ of the group: kind −1 constant (value c[j]), 0 the varying column,
	// 1 the response.
	c := make([]float64, p)
	kind := make([]int, p)
	for j := 0; j < k; j++ {
		c[j], kind[j] = r[j]-s.shift[j], -1
	}
	if vary >= 0 {
		kind[vary] = 0
	}
	kind[k] = 1
	powers := 1
	if s.weighted {
		powers = 3
	}
	for t := 0; t < powers; t++ {
		mt := m.sum[t*momW : t*momW+momW]
		if !s.weighted {
			mt = m.sum[:momW]
		}
		one := func(i int) float64 { // Σw^t z̃_i
			switch kind[i] {
			case 0:
				return mt[momU]
			case 1:
				return mt[momE]
			}
			if c[i] == 0 {
				return 0
			}
			return c[i] * mt[momOne]
		}
		cross := func(i, j int) float64 { // Σ(w^t z̃_i) z̃_j, i ≤ j
			ki, kj := kind[i], kind[j]
			switch {
			case ki < 0 && kj < 0:
				if c[i] == 0 {
					return 0
				}
				return c[i] * mt[momOne] * c[j]
			case ki < 0:
				if c[i] == 0 {
					return 0
				}
				return c[i] * one(j)
			case kj < 0:
				return one(i) * c[j]
			case ki == 0 && kj == 0:
				return mt[momUU]
			case ki == 0:
				return mt[momUE]
			}
			return mt[momEE]
		}
		flat, sum := a.zz, a.sz
		switch t {
		case 1:
			flat, sum = a.zwz, a.swz
		case 2:
			flat, sum = a.zw2z, a.sw2z
		}
		for i := 0; i < p; i++ {
			sum[i] += one(i)
			for j := i; j < p; j++ {
				flat[i*p+j] += cross(i, j)
			}
		}
	}
	a.n += m.n
	if s.weighted {
		a.sw += m.sum[momW+momOne]
		a.sw2 += m.sum[2*momW+momOne]
	} else {
		a.sw += float64(m.n)
		a.sw2 += float64(m.n)
	}
}
