package stats

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// TwoStage is the two-stage (clusters within arm, then members within
// cluster) bootstrap of the arm coefficients of a two-arm cluster
// randomised study, on per-cluster sums, never on copies of the data.
//
// The model of every replicate is the least-squares fit, with the
// replicate's frequency weights, of each response y_j on
//
//	1 + arm + x_1 + … + x_p + stratum dummies
//
// where arm and stratum are constant within a cluster. Such a fit needs
// only, per cluster drawn, the resampled sums of the product vector
// π_i = (x_i, y_i, x_i x_iᵀ, x_i y_iᵀ) (the count being fixed): P =
// p + r + p(p+1)/2 + p·r numbers. Two routes give those sums:
//
//   - exact, for a cluster of at most ExactMax members: as many members
//     as it has are drawn with replacement and their π summed;
//   - normal, for a larger cluster: the resampled sum Σ_i w_i π_i with w
//     multinomial(n, 1/n) has mean S = Σ π_i and covariance
//     Σ_i (π_i − π̄)(π_i − π̄)ᵀ, computed once (from the fourth-moment
//     sums of the data); the replicate draws S + R·z, z standard normal,
//     R a square root of that covariance. By the central limit theorem
//     this is the exact route's distribution to first order as n grows,
//     at a cost per replicate independent of n.
//
// A replicate costs O(clusters·P²) on the normal route and O(n·P) per
// cluster on the exact one.
type TwoStage struct {
	p, r, np int
	strata   int
	arms     [2][]int // clusters of arm 0 and arm 1, in cluster order
	clusters []tsCluster
	// scratch, reused across replicates
	cells []float64 // (stratum, arm) × (1 + np)
	z     []float64
}

type tsCluster struct {
	arm, stratum, n int
	prod            []float64 // exact route: n × np products, members in row order
	sum             []float64 // normal route: Σ π_i
	root            *mat.Dense
}

// NewTwoStage gathers the sums of rows: cluster[i] in 0..G−1 (every
// cluster with at least one row), arm[i] 0 or 1 and stratum[i] ≥ 0, both
// constant within a cluster; x and y are columns (p and r of them). A
// cluster of more than exactMax rows takes the normal route.
func NewTwoStage(cluster, arm, stratum []int, x, y [][]float64, exactMax int) (*TwoStage, error) {
	n := len(cluster)
	if len(arm) != n || len(stratum) != n {
		return nil, errors.New("two-stage bootstrap: cluster, arm and stratum differ in length")
	}
	for _, c := range append(append([][]float64{}, x...), y...) {
		if len(c) != n {
			return nil, errors.New("two-stage bootstrap: a column differs in length from cluster")
		}
	}
	if len(y) == 0 {
		return nil, errors.New("two-stage bootstrap: no response")
	}
	t := &TwoStage{p: len(x), r: len(y)}
	t.np = t.p + t.r + t.p*(t.p+1)/2 + t.p*t.r
	g := 0
	for i := range cluster {
		if cluster[i] < 0 || arm[i] < 0 || arm[i] > 1 || stratum[i] < 0 {
			return nil, errors.New("two-stage bootstrap: negative cluster or stratum, or arm not 0 or 1")
		}
		g = max(g, cluster[i]+1)
		t.strata = max(t.strata, stratum[i]+1)
	}
	t.clusters = make([]tsCluster, g)
	for c := range t.clusters {
		t.clusters[c].arm = -1
	}
	for i, c := range cluster {
		cl := &t.clusters[c]
		if cl.arm < 0 {
			cl.arm, cl.stratum = arm[i], stratum[i]
		} else if cl.arm != arm[i] || cl.stratum != stratum[i] {
			return nil, fmt.Errorf("two-stage bootstrap: cluster %d is in more than one arm or stratum", c)
		}
		cl.n++
	}
	for c := range t.clusters {
		cl := &t.clusters[c]
		if cl.n == 0 {
			return nil, fmt.Errorf("two-stage bootstrap: cluster %d has no rows", c)
		}
		t.arms[cl.arm] = append(t.arms[cl.arm], c)
		if cl.n <= exactMax {
			cl.prod = make([]float64, 0, cl.n*t.np)
		} else {
			cl.sum = make([]float64, t.np)
		}
	}
	pi := make([]float64, t.np)
	// Pass 1: the exact clusters' products, the normal clusters' sums.
	for i, c := range cluster {
		t.products(x, y, i, pi)
		cl := &t.clusters[c]
		if cl.sum == nil {
			cl.prod = append(cl.prod, pi...)
			continue
		}
		for k, v := range pi {
			cl.sum[k] += v
		}
	}
	// Pass 2: the normal clusters' centred second moments of π.
	covs := make([]*mat.SymDense, g)
	for c := range t.clusters {
		if t.clusters[c].sum != nil {
			covs[c] = mat.NewSymDense(t.np, nil)
		}
	}
	d := make([]float64, t.np)
	for i, c := range cluster {
		cv := covs[c]
		if cv == nil {
			continue
		}
		t.products(x, y, i, pi)
		cl := &t.clusters[c]
		for k := range d {
			d[k] = pi[k] - cl.sum[k]/float64(cl.n)
		}
		raw := cv.RawSymmetric().Data
		for a := 0; a < t.np; a++ {
			row := raw[a*t.np:]
			for b := a; b < t.np; b++ {
				row[b] += d[a] * d[b]
			}
		}
	}
	for c, cv := range covs {
		if cv == nil {
			continue
		}
		root, err := symRoot(cv)
		if err != nil {
			return nil, fmt.Errorf("two-stage bootstrap: cluster %d: %w", c, err)
		}
		t.clusters[c].root = root
	}
	t.cells = make([]float64, t.strata*2*(1+t.np))
	t.z = make([]float64, t.np)
	return t, nil
}

// products writes row i's π into pi.
func (t *TwoStage) products(x, y [][]float64, i int, pi []float64) {
	k := 0
	for a := range x {
		pi[k] = x[a][i]
		k++
	}
	for j := range y {
		pi[k] = y[j][i]
		k++
	}
	for a := range x {
		for b := a; b < t.p; b++ {
			pi[k] = x[a][i] * x[b][i]
			k++
		}
	}
	for a := range x {
		for j := range y {
			pi[k] = x[a][i] * y[j][i]
			k++
		}
	}
}

// symRoot is R with R·Rᵀ = v for a positive semi-definite v, from its
// eigen-decomposition (eigenvalues below zero by rounding taken as zero).
func symRoot(v *mat.SymDense) (*mat.Dense, error) {
	var e mat.EigenSym
	if !e.Factorize(v, true) {
		return nil, errors.New("the eigen-decomposition of the moments failed")
	}
	var vec mat.Dense
	e.VectorsTo(&vec)
	vals := e.Values(nil)
	n := len(vals)
	root := mat.NewDense(n, n, nil)
	for j, l := range vals {
		s := math.Sqrt(max(l, 0))
		for i := range n {
			root.Set(i, j, vec.At(i, j)*s)
		}
	}
	return root, nil
}

// Clusters is the number of clusters; NormalClusters how many take the
// normal route.
func (t *TwoStage) Clusters() int { return len(t.clusters) }

// NormalClusters is the number of clusters resampled by the normal route.
func (t *TwoStage) NormalClusters() int {
	k := 0
	for _, c := range t.clusters {
		if c.root != nil {
			k++
		}
	}
	return k
}

// Replicate draws one replicate from rng and writes the arm coefficient
// of each response into coef (length r). Within each arm (arm 0 first) it
// draws as many clusters as the arm has, with replacement, then each
// cluster's members. False when the arm effect cannot be estimated: no
// stratum with both arms drawn, or the other columns singular. The exact
// route draws rng.IntN(len(arm's clusters)) then, per member,
// rng.IntN(n), in that order.
func (t *TwoStage) Replicate(rng *rand.Rand, coef []float64) bool {
	clear(t.cells)
	w := 1 + t.np
	for a, cs := range t.arms {
		for range cs {
			cl := &t.clusters[cs[rng.IntN(len(cs))]]
			cell := t.cells[(cl.stratum*2+a)*w:][:w]
			cell[0] += float64(cl.n)
			s := cell[1:]
			if cl.root == nil {
				for range cl.n {
					m := cl.prod[rng.IntN(cl.n)*t.np:][:t.np]
					for k, v := range m {
						s[k] += v
					}
				}
				continue
			}
			for k := range t.z {
				t.z[k] = rng.NormFloat64()
			}
			for k := range s {
				v := cl.sum[k]
				row := cl.root.RawRowView(k)
				for j, z := range t.z {
					v += row[j] * z
				}
				s[k] += v
			}
		}
	}
	return t.solve(coef)
}

// solve fits the model to the replicate's cell sums: the columns are arm,
// intercept, x and the dummies of the strata drawn but the first drawn
// (the reference); the arm coefficient by Frisch–Waugh–Lovell.
func (t *TwoStage) solve(coef []float64) bool {
	w := 1 + t.np
	// Column descriptors: the variable (0 the constant, 1+a for x_a) and
	// the indicator it multiplies (−1 none, −2 arm, s ≥ 0 stratum s).
	type col struct{ v, ind int }
	cols := []col{{0, -2}, {0, -1}}
	for a := range t.p {
		cols = append(cols, col{1 + a, -1})
	}
	ref := true
	for s := range t.strata {
		if t.cells[(s*2)*w]+t.cells[(s*2+1)*w] == 0 {
			continue
		}
		if ref {
			ref = false
			continue
		}
		cols = append(cols, col{0, s})
	}
	k := len(cols)
	// m(v1, v2) over a cell: the sum of the product of variables v1 and
	// v2 (0 the constant, 1+a x_a, 1+p+j y_j).
	xxIndex := func(a, b int) int {
		if a > b {
			a, b = b, a
		}
		return t.p + t.r + a*t.p - a*(a-1)/2 + (b - a)
	}
	m := func(cell []float64, v1, v2 int) float64 {
		if v1 > v2 {
			v1, v2 = v2, v1
		}
		switch {
		case v1 == 0 && v2 == 0:
			return cell[0]
		case v1 == 0:
			return cell[1+v2-1]
		case v2 <= t.p:
			return cell[1+xxIndex(v1-1, v2-1)]
		default:
			return cell[1+t.p+t.r+t.p*(t.p+1)/2+(v1-1)*t.r+(v2-1-t.p)]
		}
	}
	mult := func(c col, s, a int) float64 {
		switch c.ind {
		case -1:
			return 1
		case -2:
			return float64(a)
		default:
			if c.ind == s {
				return 1
			}
			return 0
		}
	}
	A := mat.NewSymDense(k, nil)
	B := mat.NewDense(k, t.r, nil)
	var total, armW float64
	for s := range t.strata {
		for a := range 2 {
			cell := t.cells[(s*2+a)*w:][:w]
			if cell[0] == 0 {
				continue
			}
			total += cell[0]
			armW += float64(a) * cell[0]
			for i, ci := range cols {
				fi := mult(ci, s, a)
				if fi == 0 {
					continue
				}
				for j := i; j < k; j++ {
					cj := cols[j]
					if fj := mult(cj, s, a); fj != 0 {
						A.SetSym(i, j, A.At(i, j)+fi*fj*m(cell, ci.v, cj.v))
					}
				}
				for j := range t.r {
					B.Set(i, j, B.At(i, j)+fi*m(cell, ci.v, 1+t.p+j))
				}
			}
		}
	}
	if total == 0 {
		return false
	}
	// Z: the columns but arm.
	zz := mat.NewSymDense(k-1, nil)
	za := mat.NewVecDense(k-1, nil)
	for i := 1; i < k; i++ {
		za.SetVec(i-1, A.At(0, i))
		for j := i; j < k; j++ {
			zz.SetSym(i-1, j-1, A.At(i, j))
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(zz) {
		return false
	}
	g := mat.NewVecDense(k-1, nil)
	if err := ch.SolveVecTo(g, za); err != nil {
		return false
	}
	rr := A.At(0, 0) - mat.Dot(g, za)
	aa := armW - armW*armW/total
	if !(rr > 1e-9*aa) {
		return false
	}
	for j := range t.r {
		ry := B.At(0, j)
		for i := 1; i < k; i++ {
			ry -= g.AtVec(i-1) * B.At(i, j)
		}
		coef[j] = ry / rr
	}
	return true
}
