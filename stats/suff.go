package stats

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// suffBlock is the number of rows a cluster accumulates in a partial sum
// before adding it to the cluster's total: blocked summation keeps the
// rounding error of the cross-products near ε·(√suffBlock + √(n_g/suffBlock))
// instead of ε·√n_g for long clusters.
const suffBlock = 512

// maxClusters bounds the cluster numbers Add accepts, so that a stray label
// cannot make it allocate without limit.
const maxClusters = 1 << 24

// ClusterSums accumulates the per-cluster sufficient statistics of a linear
// model y = Xβ + e with K columns: for every cluster g the cross-products of
// the augmented row z = [x, y] shifted by a fixed row z₀ (the first row
// added, with 0 for dummies at 1, or SetShift's), z̃ = z − z₀,
//
//	Z̃_g'Z̃_g,  Z̃_g'W_gZ̃_g,  Z̃_g'W_g²Z̃_g   ((K+1)×(K+1): X'X, X'y and y'y),
//
// the sums Σz̃, Σwz̃ and Σw²z̃, the row count n_g, Σw and Σw². The shift is
// the classical remedy for the cancellation of uncentred cross-products
// (the "shifted data" algorithm; Chan, Golub & LeVeque 1983, Am Stat
// 37:242): when column 0 is an intercept the fits work in the basis
// [1, x − x₀] and map back exactly; otherwise the uncentred cross-products
// are rebuilt from the shifted ones. Memory is O(G·K²),
// whatever the number of rows; the weighted forms are kept only when the
// sums are created weighted. Every least-squares fit in this package (OLS,
// WLS, CR1, CR2 with Satterthwaite df, the wild cluster bootstrap and the
// REML random-intercept model) needs no more than these (see SuffOLS,
// SuffMixedREML).
//
// Clusters are numbered by the caller 0, 1, …, G−1 (see Codes); a number
// never used is an empty cluster and is ignored by the fits. A ClusterSums is
// not safe for concurrent use; Merge combines sums built in parallel.
type ClusterSums struct {
	k        int
	weighted bool
	cl       []*clusterAcc
	rows     int

	// Constant-column detection (R's summary.lm centres the model sum of
	// squares when the model has an intercept).
	first    []float64
	constant []bool

	shift    []float64 // z₀: K values of x, then y
	shiftSet bool
	zt       []float64 // scratch: the shifted row
}

// clusterAcc holds one cluster's sums; part* are the partial block sums not
// yet added to the totals.
type clusterAcc struct {
	n                int
	sw, sw2          float64
	zz, zwz, zw2z    []float64 // (K+1)² upper triangles, row-major
	sz, swz, sw2z    []float64 // Σz̃, Σwz̃, Σw²z̃
	pn               int
	pzz, pzwz, pzw2z []float64
	psz, pswz, psw2z []float64
	psw, psw2        float64
}

// NewClusterSums returns empty sums for a model with k columns; weighted
// sums also keep the weighted cross-products (for WLS and its sandwiches).
func NewClusterSums(k int, weighted bool) (*ClusterSums, error) {
	if k < 1 {
		return nil, fmt.Errorf("cluster sums: %d columns", k)
	}
	s := &ClusterSums{k: k, weighted: weighted, first: make([]float64, k), constant: make([]bool, k), shift: make([]float64, k+1), zt: make([]float64, k+1)}
	for j := range s.constant {
		s.constant[j] = true
	}
	return s, nil
}

// K returns the number of columns of the design.
func (s *ClusterSums) K() int { return s.k }

// Weighted reports whether the sums keep the weighted cross-products.
func (s *ClusterSums) Weighted() bool { return s.weighted }

// N returns the number of rows added.
func (s *ClusterSums) N() int { return s.rows }

// SetShift sets the row z₀ = [x₀, y₀] subtracted from every row before its
// cross-products are accumulated (by default the first row added). Any
// typical row will do; it must be set before the first row.
func (s *ClusterSums) SetShift(x0 []float64, y0 float64) error {
	if s.rows > 0 {
		return errors.New("cluster sums: shift set after rows were added")
	}
	if len(x0) != s.k {
		return fmt.Errorf("cluster sums: shift has %d values for %d columns", len(x0), s.k)
	}
	for _, v := range append(x0[:len(x0):len(x0)], y0) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("cluster sums: shift value %v", v)
		}
	}
	copy(s.shift, x0)
	s.shift[s.k] = y0
	s.shiftSet = true
	return nil
}

func (s *ClusterSums) acc(c int) *clusterAcc {
	for c >= len(s.cl) {
		s.cl = append(s.cl, nil)
	}
	a := s.cl[c]
	if a == nil {
		p := s.k + 1
		a = &clusterAcc{zz: make([]float64, p*p), pzz: make([]float64, p*p), sz: make([]float64, p), psz: make([]float64, p)}
		if s.weighted {
			a.zwz = make([]float64, p*p)
			a.zw2z = make([]float64, p*p)
			a.pzwz = make([]float64, p*p)
			a.pzw2z = make([]float64, p*p)
			a.swz = make([]float64, p)
			a.pswz = make([]float64, p)
			a.sw2z = make([]float64, p)
			a.psw2z = make([]float64, p)
		}
		s.cl[c] = a
	}
	return a
}

// Add adds one row: x (K values), the response y, the analytic weight w
// (ignored by unweighted sums; must be finite and positive otherwise) and
// the cluster number. It returns an error, and adds nothing, for a
// non-finite value, a bad weight or a negative cluster.
func (s *ClusterSums) Add(cluster int, x []float64, y, w float64) error {
	k := s.k
	if len(x) != k {
		return fmt.Errorf("cluster sums: row has %d values for %d columns", len(x), k)
	}
	if cluster < 0 || cluster >= maxClusters {
		return fmt.Errorf("cluster sums: cluster %d, need a number in [0, %d) (see Codes)", cluster, maxClusters)
	}
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return fmt.Errorf("cluster sums: row %d: y is %v", s.rows, y)
	}
	for j, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("cluster sums: row %d: x[%d] is %v", s.rows, j, v)
		}
	}
	if s.weighted && (!(w > 0) || math.IsInf(w, 0)) {
		return fmt.Errorf("cluster sums: row %d: weight is %v, need a finite positive weight", s.rows, w)
	}
	if !s.shiftSet {
		// The first row, but 0 for a later column at 1 (a dummy: shifting
		// it gains nothing and would turn its zeros, which the loops skip,
		// into −1s).
		for j, v := range x {
			if j > 0 && v == 1 {
				v = 0
			}
			s.shift[j] = v
		}
		s.shift[k] = y
		s.shiftSet = true
	}
	if s.rows == 0 {
		copy(s.first, x)
	} else {
		for j, v := range x {
			if v != s.first[j] {
				s.constant[j] = false
			}
		}
	}
	s.rows++
	z := s.zt
	for j, v := range x {
		z[j] = v - s.shift[j]
	}
	z[k] = y - s.shift[k]
	a := s.acc(cluster)
	p := k + 1
	a.n++
	a.pn++
	if !s.weighted {
		for i, zi := range z {
			a.psz[i] += zi
			if zi == 0 {
				continue
			}
			zs := z[i:]
			m := a.pzz[i*p+i : i*p+p]
			m = m[:len(zs)]
			for j, zj := range zs {
				m[j] += zi * zj
			}
		}
		a.psw++
		a.psw2++
	} else {
		w2 := w * w
		for i, zi := range z {
			a.psz[i] += zi
			a.pswz[i] += w * zi
			a.psw2z[i] += w2 * zi
			if zi == 0 {
				continue
			}
			wi, w2i := w*zi, w2*zi
			zs := z[i:]
			m0 := a.pzz[i*p+i : i*p+p]
			m1 := a.pzwz[i*p+i : i*p+p]
			m2 := a.pzw2z[i*p+i : i*p+p]
			m0, m1, m2 = m0[:len(zs)], m1[:len(zs)], m2[:len(zs)]
			for j, zj := range zs {
				m0[j] += zi * zj
				m1[j] += wi * zj
				m2[j] += w2i * zj
			}
		}
		a.psw += w
		a.psw2 += w2
	}
	if a.pn == suffBlock {
		a.flush()
	}
	return nil
}

// AddColumns adds the rows of a frame held as columns: cols[j][i] is x_ij,
// y[i] the response, w[i] the weight (nil for unweighted sums) and
// cluster[i] the row's cluster number. On an error the rows before the bad
// one have been added.
func (s *ClusterSums) AddColumns(cluster []int, cols [][]float64, y, w []float64) error {
	if len(cols) != s.k {
		return fmt.Errorf("cluster sums: %d columns for %d", len(cols), s.k)
	}
	n := len(y)
	if len(cluster) != n || (w != nil && len(w) != n) {
		return fmt.Errorf("cluster sums: lengths y %d, cluster %d, w %d differ", n, len(cluster), len(w))
	}
	if s.weighted && w == nil {
		return errors.New("cluster sums: weighted sums need weights")
	}
	for j, c := range cols {
		if len(c) != n {
			return fmt.Errorf("cluster sums: column %d has %d values for %d rows", j, len(c), n)
		}
	}
	row := make([]float64, s.k)
	for i := 0; i < n; i++ {
		for j, c := range cols {
			row[j] = c[i]
		}
		wi := 1.0
		if w != nil {
			wi = w[i]
		}
		if err := s.Add(cluster[i], row, y[i], wi); err != nil {
			return err
		}
	}
	return nil
}

func (a *clusterAcc) flush() {
	addZero := func(dst, src []float64) {
		for i, v := range src {
			dst[i] += v
			src[i] = 0
		}
	}
	addZero(a.zz, a.pzz)
	addZero(a.sz, a.psz)
	if a.zwz != nil {
		addZero(a.zwz, a.pzwz)
		addZero(a.zw2z, a.pzw2z)
		addZero(a.swz, a.pswz)
		addZero(a.sw2z, a.psw2z)
	}
	a.sw += a.psw
	a.sw2 += a.psw2
	a.psw, a.psw2 = 0, 0
	a.pn = 0
}

// Merge adds the sums of o (built over other rows, with the same K,
// weighting and shift) to s. Parts built in parallel must share the shift:
// call SetShift on each with the same row before adding rows.
func (s *ClusterSums) Merge(o *ClusterSums) error {
	if o.k != s.k || o.weighted != s.weighted {
		return errors.New("cluster sums: merge of sums of different shapes")
	}
	if o.rows == 0 {
		return nil
	}
	for j, v := range o.shift {
		if s.shiftSet && v != s.shift[j] {
			return errors.New("cluster sums: merge of sums with different shifts (give every part the same SetShift)")
		}
	}
	copy(s.shift, o.shift)
	s.shiftSet = true
	if s.rows == 0 {
		copy(s.first, o.first)
		copy(s.constant, o.constant)
	} else {
		for j := range s.constant {
			s.constant[j] = s.constant[j] && o.constant[j] && o.first[j] == s.first[j]
		}
	}
	s.rows += o.rows
	for c, b := range o.cl {
		if b == nil {
			continue
		}
		b.flush()
		a := s.acc(c)
		a.flush()
		a.n += b.n
		a.sw += b.sw
		a.sw2 += b.sw2
		add := func(dst, src []float64) {
			for i, v := range src {
				dst[i] += v
			}
		}
		add(a.zz, b.zz)
		add(a.sz, b.sz)
		if s.weighted {
			add(a.zwz, b.zwz)
			add(a.zw2z, b.zw2z)
			add(a.swz, b.swz)
			add(a.sw2z, b.sw2z)
		}
	}
	return nil
}

// Unweighted returns the unweighted sums of the same rows: a copy of s
// when s is unweighted, else the unweighted cross-products that weighted
// sums keep anyway, so one pass over the data serves the OLS and the WLS
// analyses.
func (s *ClusterSums) Unweighted() *ClusterSums {
	p := s.k + 1
	u := &ClusterSums{k: s.k, rows: s.rows, first: append([]float64(nil), s.first...), constant: append([]bool(nil), s.constant...), shift: append([]float64(nil), s.shift...), shiftSet: s.shiftSet, zt: make([]float64, p)}
	u.cl = make([]*clusterAcc, len(s.cl))
	for c, a := range s.cl {
		if a == nil {
			continue
		}
		a.flush()
		u.cl[c] = &clusterAcc{n: a.n, sw: float64(a.n), sw2: float64(a.n), zz: append([]float64(nil), a.zz...), sz: append([]float64(nil), a.sz...), pzz: make([]float64, p*p), psz: make([]float64, p)}
	}
	return u
}

// suffCluster is one non-empty cluster's sums restricted to a set of
// columns, as symmetric matrices, ready for the fits.
type suffCluster struct {
	n         int
	sw        float64
	xx        *mat.SymDense // X_g'X_g
	xwx       *mat.SymDense // X_g'W_gX_g (= xx unweighted)
	xw2x      *mat.SymDense // X_g'W_g²X_g (= xx unweighted)
	xy        []float64     // X_g'y_g
	xwy, xw2y []float64
	yy, ywy   float64
	sx, swx   []float64 // Σx, Σwx over the cluster
	sy, swy   float64
}

// basis returns, for cluster a and weight power t (0: 1, 1: w, 2: w²), the
// cross-product u_i'W^t u_j and the sum 1'W^t u_i of the augmented columns
// (i, j in 0..K, K being y) in the basis of the fits: centred, u_0 = 1 and
// u_j = z_j − z₀_j for j ≥ 1 (column 0 must then be constant); otherwise
// u = z, rebuilt from the shifted sums as z̃'Wz̃ + z̃'W1 z₀' + z₀ 1'Wz̃ +
// 1'W1 z₀z₀'.
func (s *ClusterSums) basis(a *clusterAcc, t int, centred bool) (cross func(i, j int) float64, sum func(i int) float64) {
	p := s.k + 1
	flat, one, oo := a.zz, a.sz, float64(a.n)
	switch t {
	case 1:
		flat, one, oo = a.zwz, a.swz, a.sw
	case 2:
		flat, one, oo = a.zw2z, a.sw2z, a.sw2
	}
	if !s.weighted {
		flat, one, oo = a.zz, a.sz, float64(a.n)
	}
	up := func(i, j int) float64 {
		if i > j {
			i, j = j, i
		}
		return flat[i*p+j]
	}
	if centred {
		cross = func(i, j int) float64 {
			switch {
			case i == 0 && j == 0:
				return oo
			case i == 0:
				return one[j]
			case j == 0:
				return one[i]
			}
			return up(i, j)
		}
		sum = func(i int) float64 {
			if i == 0 {
				return oo
			}
			return one[i]
		}
		return cross, sum
	}
	sh := s.shift
	cross = func(i, j int) float64 {
		return up(i, j) + one[i]*sh[j] + sh[i]*one[j] + oo*sh[i]*sh[j]
	}
	sum = func(i int) float64 { return one[i] + oo*sh[i] }
	return cross, sum
}

// clusters returns the non-empty clusters' sums over columns cols (indices
// into 0..K−1) in the plain or the centred basis (see basis).
func (s *ClusterSums) clusters(cols []int, centred bool) []*suffCluster {
	k := s.k
	r := len(cols)
	var out []*suffCluster
	for _, a := range s.cl {
		if a == nil || a.n == 0 {
			continue
		}
		a.flush()
		build := func(t int) (*mat.SymDense, []float64, float64, []float64, float64) {
			cross, sum := s.basis(a, t, centred)
			m := mat.NewSymDense(r, nil)
			v := make([]float64, r)
			sx := make([]float64, r)
			for ai, i := range cols {
				for b := ai; b < r; b++ {
					m.SetSym(ai, b, cross(i, cols[b]))
				}
				v[ai] = cross(i, k)
				sx[ai] = sum(i)
			}
			return m, v, cross(k, k), sx, sum(k)
		}
		c := &suffCluster{n: a.n, sw: a.sw}
		c.xx, c.xy, c.yy, c.sx, c.sy = build(0)
		if s.weighted {
			c.xwx, c.xwy, c.ywy, c.swx, c.swy = build(1)
			c.xw2x, c.xw2y, _, _, _ = build(2)
		} else {
			c.xwx, c.xw2x = c.xx, c.xx
			c.xwy, c.xw2y = c.xy, c.xy
			c.ywy = c.yy
			c.swx, c.swy = c.sx, c.sy
		}
		out = append(out, c)
	}
	return out
}

// centrable reports whether the fits can use the centred basis: column 0
// is constant and non-zero (an intercept), as in every cpi model.
func (s *ClusterSums) centrable() bool {
	return s.rows > 0 && s.constant[0] && s.first[0] != 0
}

// allCols returns 0..k−1.
func allCols(k int) []int {
	c := make([]int, k)
	for i := range c {
		c[i] = i
	}
	return c
}
