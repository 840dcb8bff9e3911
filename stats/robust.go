package stats

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// clusterSums holds, for each cluster g, the K×K cross-products X_g'X_g,
// X_g'W_gX_g and X_g'W_g²X_g and the K-vectors X_g'e_g and X_g'W_ge_g, all
// that the cluster-robust estimators need: they never form n_g×n_g matrices,
// so they run in one O(N·K²) pass over the data.
type clusterSums struct {
	g             int
	xx, xwx, xw2x []*mat.SymDense // nil xx/xw2x when unweighted (all equal xwx)
	xe, xwe       [][]float64
	weighted      bool
	sizes         []int
	totalXW2X     *mat.SymDense // S = X'W²X = Σ_g X_g'W_g²X_g
	codes         []int
}

func newClusterSums(f *Fit, cluster []int) (*clusterSums, error) {
	codes, g, err := checkClusters(f.N, cluster, 2)
	if err != nil {
		return nil, err
	}
	k := f.K
	cs := &clusterSums{g: g, weighted: f.Weights != nil, sizes: make([]int, g), codes: codes}
	// Accumulate the upper triangles in flat slices for speed.
	nt := k * k
	xwx := make([]float64, g*nt)
	var xx, xw2x []float64
	if cs.weighted {
		xx = make([]float64, g*nt)
		xw2x = make([]float64, g*nt)
	}
	xe := make([]float64, g*k)
	xwe := make([]float64, g*k)
	raw := f.X.RawMatrix()
	for i := 0; i < f.N; i++ {
		c := codes[i]
		cs.sizes[c]++
		row := raw.Data[i*raw.Stride : i*raw.Stride+k]
		e := f.Resid[i]
		if !cs.weighted {
			m := xwx[c*nt : (c+1)*nt]
			v := xe[c*k : (c+1)*k]
			for a, xa := range row {
				v[a] += xa * e
				if xa == 0 {
					continue
				}
				ma := m[a*k : a*k+k]
				for b := a; b < k; b++ {
					ma[b] += xa * row[b]
				}
			}
			continue
		}
		w := f.Weights[i]
		m0 := xx[c*nt : (c+1)*nt]
		m1 := xwx[c*nt : (c+1)*nt]
		m2 := xw2x[c*nt : (c+1)*nt]
		v0 := xe[c*k : (c+1)*k]
		v1 := xwe[c*k : (c+1)*k]
		for a, xa := range row {
			v0[a] += xa * e
			v1[a] += w * xa * e
			if xa == 0 {
				continue
			}
			wa := w * xa
			w2a := w * wa
			for b := a; b < k; b++ {
				xb := row[b]
				m0[a*k+b] += xa * xb
				m1[a*k+b] += wa * xb
				m2[a*k+b] += w2a * xb
			}
		}
	}
	sym := func(flat []float64, c int) *mat.SymDense {
		s := mat.NewSymDense(k, nil)
		m := flat[c*nt : (c+1)*nt]
		for a := 0; a < k; a++ {
			for b := a; b < k; b++ {
				s.SetSym(a, b, m[a*k+b])
			}
		}
		return s
	}
	cs.xwx = make([]*mat.SymDense, g)
	cs.xe = make([][]float64, g)
	cs.xwe = make([][]float64, g)
	if cs.weighted {
		cs.xx = make([]*mat.SymDense, g)
		cs.xw2x = make([]*mat.SymDense, g)
	}
	cs.totalXW2X = mat.NewSymDense(k, nil)
	for c := 0; c < g; c++ {
		cs.xwx[c] = sym(xwx, c)
		cs.xe[c] = xe[c*k : (c+1)*k]
		if cs.weighted {
			cs.xx[c] = sym(xx, c)
			cs.xw2x[c] = sym(xw2x, c)
			cs.xwe[c] = xwe[c*k : (c+1)*k]
		} else {
			cs.xwe[c] = cs.xe[c]
		}
		cs.totalXW2X.AddSym(cs.totalXW2X, cs.XW2X(c))
	}
	return cs, nil
}

// XX, XWX and XW2X return the per-cluster cross-products (equal when the fit
// is unweighted).
func (cs *clusterSums) XX(c int) *mat.SymDense {
	if cs.weighted {
		return cs.xx[c]
	}
	return cs.xwx[c]
}
func (cs *clusterSums) XWX(c int) *mat.SymDense { return cs.xwx[c] }
func (cs *clusterSums) XW2X(c int) *mat.SymDense {
	if cs.weighted {
		return cs.xw2x[c]
	}
	return cs.xwx[c]
}

// sandwich returns M (Σ_g u_g u_g') M · scale.
func sandwich(bread *mat.SymDense, u [][]float64, scale float64) *mat.SymDense {
	k := bread.SymmetricDim()
	meat := mat.NewSymDense(k, nil)
	for _, ug := range u {
		meat.SymRankOne(meat, 1, mat.NewVecDense(k, ug))
	}
	var tmp mat.Dense
	tmp.Mul(bread, meat)
	var v mat.Dense
	v.Mul(&tmp, bread)
	out := mat.NewSymDense(k, nil)
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			out.SetSym(i, j, scale*(v.At(i, j)+v.At(j, i))/2)
		}
	}
	return out
}

// VCovCR1 returns the CR1 cluster-robust covariance matrix
//
//	V = G/(G−1) · (N−1)/(N−K) · M (Σ_g X_g'W_g e_g e_g'W_g X_g) M,  M = (X'WX)⁻¹,
//
// which matches sandwich::vcovCL(fit, cluster = ~cluster, type = "HC1") (and
// Stata's regress, vce(cluster)). cluster holds one integer label per row
// (any values; see Codes); at least two clusters are needed.
func (f *Fit) VCovCR1(cluster []int) (*mat.SymDense, error) {
	cs, err := newClusterSums(f, cluster)
	if err != nil {
		return nil, fmt.Errorf("cr1: %w", err)
	}
	return f.vcovCR1(cs), nil
}

func (f *Fit) vcovCR1(cs *clusterSums) *mat.SymDense {
	g := float64(cs.g)
	adj := g / (g - 1) * float64(f.N-1) / float64(f.N-f.K)
	return sandwich(f.Bread, cs.xwe, adj)
}

// CR1Test returns the t test of coefficient j with the CR1 standard error
// (VCovCR1) against a t distribution with G − 1 degrees of freedom, and the
// level confidence interval, as lmtest::coeftest(fit, vcovCL(fit, cluster,
// type = "HC1"), df = G - 1).
func (f *Fit) CR1Test(cluster []int, j int, level float64) (CoefTest, error) {
	cs, err := newClusterSums(f, cluster)
	if err != nil {
		return CoefTest{}, fmt.Errorf("cr1: %w", err)
	}
	v := f.vcovCR1(cs)
	return TTest(f.Coef[j], math.Sqrt(v.At(j, j)), float64(cs.g-1), level), nil
}

// CR2Result is the bias-reduced linearisation (CR2) covariance matrix with a
// Satterthwaite degrees of freedom for every coefficient.
type CR2Result struct {
	Coef []float64
	VCov *mat.SymDense
	DF   []float64 // Satterthwaite degrees of freedom per coefficient
	G    int       // number of clusters
}

// Test returns the t test of coefficient j with the CR2 standard error and
// its Satterthwaite degrees of freedom, and the level confidence interval
// (clubSandwich::coef_test and conf_int with test = "Satterthwaite").
func (r *CR2Result) Test(j int, level float64) CoefTest {
	return TTest(r.Coef[j], math.Sqrt(r.VCov.At(j, j)), r.DF[j], level)
}

// eigenTol is clubSandwich's Sym_power tolerance: eigenvalues of G_g at or
// below 1e-12 get a zero inverse square root (a pseudo-inverse).
const eigenTol = 1e-12

// gramTol drops directions of a cluster's basis whose scaled Gram eigenvalue
// is below gramTol times the largest (exactly collinear columns such as
// cluster-level covariates).
const gramTol = 1e-11

// CR2 computes the CR2 ("bias-reduced linearisation") cluster-robust
// covariance matrix of Bell & McCaffrey (2002) in the form of Pustejovsky &
// Tipton (2018, JBES 36(4)) and the Satterthwaite degrees of freedom of
// each coefficient, matching clubSandwich::vcovCR(fit, cluster, type = "CR2")
// and clubSandwich::coef_test(fit, vcov = "CR2", cluster = cluster,
// test = "Satterthwaite") for an lm fit with or without weights.
//
// With M = (X'WX)⁻¹, S = X'W²X and the working model Φ = I (clubSandwich's
// target for lm, also when the lm has weights, which are then not treated as
// inverse variances):
//
//	G_g = I − X_gMX_g'W_g − W_gX_gMX_g' + X_gMSMX_g'   (= I − H_gg unweighted)
//	A_g = G_g^{−1/2}    (symmetric; eigenvalues ≤ 1e-12 get 0, as Sym_power)
//	V   = M (Σ_g X_g'W_gA_g e_g e_g'A_gW_gX_g) M.
//
// For coefficient c, with p_g = A_gW_gX_gMc, a_g = MX_g'p_g, b_g = X_g'W_gp_g,
// P_gh = δ_gh p_g'p_g − b_g'a_h − b_h'a_g + a_g'Sa_h and the degrees of
// freedom are (tr P)² / Σ_gh P_gh².
//
// G_g − I has rank at most 2K and lies in the span of Z_g = [X_g, W_gX_g], so
// with an orthonormal basis Q_g of that span (from the eigen-decomposition of
// the scaled Gram matrix Z_g'Z_g) G_g^{−1/2} = I + Q_g(f(C_g))Q_g' where
// C_g is the r×r matrix of G_g − I in that basis and f(λ) = (1+λ)^{−1/2} − 1.
// Everything is computed from K- and 2K-dimensional cross-products, never an
// n_g×n_g matrix; the cost is one pass over the data.
//
// Preconditions: at least two clusters; cluster holds one integer label per
// row (any values; see Codes).
func (f *Fit) CR2(cluster []int) (*CR2Result, error) {
	cs, err := newClusterSums(f, cluster)
	if err != nil {
		return nil, fmt.Errorf("cr2: %w", err)
	}
	return cr2(f.Bread, f.Coef, cs, nil)
}

// cr2 is CR2 from the bread M = (X'WX)⁻¹, the coefficients and the
// per-cluster cross-products and residual sums (see Fit.CR2 for the
// formulas); the streaming fits (SuffFit.CR2) share it. The df are those of
// the contrasts l_j'β, the columns of L (nil: the coefficients themselves,
// L = I), computed as for a coefficient with Mc replaced by ML_j.
func cr2(M *mat.SymDense, coef []float64, cs *clusterSums, L *mat.Dense) (*CR2Result, error) {
	k := M.SymmetricDim()
	S := cs.totalXW2X
	var MSM mat.Dense
	MSM.Mul(M, S)
	MSM.Mul(&MSM, M)

	r0 := k
	if cs.weighted {
		r0 = 2 * k
	}
	// B = [[MSM, −M], [−M, 0]] (weighted) or −M (unweighted): Z B Z' = G − I.
	B := mat.NewDense(r0, r0, nil)
	if cs.weighted {
		for i := 0; i < k; i++ {
			for j := 0; j < k; j++ {
				B.Set(i, j, MSM.At(i, j))
				B.Set(i, k+j, -M.At(i, j))
				B.Set(k+i, j, -M.At(i, j))
			}
		}
	} else {
		for i := 0; i < k; i++ {
			for j := 0; j < k; j++ {
				B.Set(i, j, -M.At(i, j))
			}
		}
	}

	type clusterBasis struct {
		L    *mat.Dense // r0×r0: A_g = I + Z_g L Z_g'
		gram *mat.Dense // Z_g'Z_g
		xz   *mat.Dense // X_g'Z_g   (K×r0)
		xwz  *mat.Dense // X_g'W_gZ_g (K×r0)
	}
	bases := make([]clusterBasis, cs.g)
	u := make([][]float64, cs.g)
	for c := 0; c < cs.g; c++ {
		xx, xwx, xw2x := cs.XX(c), cs.XWX(c), cs.XW2X(c)
		gram := mat.NewDense(r0, r0, nil)
		xz := mat.NewDense(k, r0, nil)
		xwz := mat.NewDense(k, r0, nil)
		ze := make([]float64, r0)
		for i := 0; i < k; i++ {
			ze[i] = cs.xe[c][i]
			for j := 0; j < k; j++ {
				gram.Set(i, j, xx.At(i, j))
				xz.Set(i, j, xx.At(i, j))
				xwz.Set(i, j, xwx.At(i, j))
				if cs.weighted {
					gram.Set(i, k+j, xwx.At(i, j))
					gram.Set(k+i, j, xwx.At(i, j))
					gram.Set(k+i, k+j, xw2x.At(i, j))
					xz.Set(i, k+j, xwx.At(i, j))
					xwz.Set(i, k+j, xw2x.At(i, j))
				}
			}
			if cs.weighted {
				ze[k+i] = cs.xwe[c][i]
			}
		}
		L, err := cr2Inner(gram, B)
		if err != nil {
			return nil, fmt.Errorf("cr2: cluster %d: %w", c, err)
		}
		bases[c] = clusterBasis{L: L, gram: gram, xz: xz, xwz: xwz}
		// u_g = X_g'W_g A_g e_g = X_g'W_g e_g + (X_g'W_gZ_g) L (Z_g'e_g).
		lze := mat.NewVecDense(r0, nil)
		lze.MulVec(L, mat.NewVecDense(r0, ze))
		ug := mat.NewVecDense(k, nil)
		ug.MulVec(xwz, lze)
		ug.AddVec(ug, mat.NewVecDense(k, cs.xwe[c]))
		u[c] = ug.RawVector().Data
	}
	nc := k
	if L != nil {
		_, nc = L.Dims()
	}
	res := &CR2Result{Coef: coef, VCov: sandwich(M, u, 1), DF: make([]float64, nc), G: cs.g}

	// Satterthwaite degrees of freedom, coefficient by coefficient.
	a := make([]*mat.VecDense, cs.g)
	b := make([]*mat.VecDense, cs.g)
	pp := make([]float64, cs.g)
	P := mat.NewDense(cs.g, cs.g, nil)
	for j := 0; j < nc; j++ {
		m := mat.NewVecDense(k, nil)
		if L == nil {
			for i := 0; i < k; i++ {
				m.SetVec(i, M.At(i, j))
			}
		} else {
			m.MulVec(M, L.ColView(j))
		}
		for c := 0; c < cs.g; c++ {
			cb := bases[c]
			zv := mat.NewVecDense(r0, nil) // Z_g'v, v = W_gX_g m
			zv.MulVec(cb.xwz.T(), m)
			lzv := mat.NewVecDense(r0, nil)
			lzv.MulVec(cb.L, zv)
			glzv := mat.NewVecDense(r0, nil)
			glzv.MulVec(cb.gram, lzv)
			w2m := mat.NewVecDense(k, nil)
			w2m.MulVec(cs.XW2X(c), m)
			// ‖p‖² = m'X'W²Xm + 2 zv'L zv + zv'L Gram L zv
			pp[c] = mat.Dot(m, w2m) + 2*mat.Dot(zv, lzv) + mat.Dot(lzv, glzv)
			// X'p = X'WX m + X'Z L zv
			xp := mat.NewVecDense(k, nil)
			xp.MulVec(cs.XWX(c), m)
			t := mat.NewVecDense(k, nil)
			t.MulVec(cb.xz, lzv)
			xp.AddVec(xp, t)
			a[c] = mat.NewVecDense(k, nil)
			a[c].MulVec(M, xp)
			// X'Wp = X'W²X m + X'WZ L zv
			b[c] = mat.NewVecDense(k, nil)
			t.MulVec(cb.xwz, lzv)
			b[c].AddVec(w2m, t)
		}
		sa := make([]*mat.VecDense, cs.g)
		for c := 0; c < cs.g; c++ {
			sa[c] = mat.NewVecDense(k, nil)
			sa[c].MulVec(S, a[c])
		}
		var tr, ss float64
		for g1 := 0; g1 < cs.g; g1++ {
			for g2 := g1; g2 < cs.g; g2++ {
				v := mat.Dot(a[g1], sa[g2]) - mat.Dot(b[g1], a[g2]) - mat.Dot(b[g2], a[g1])
				if g1 == g2 {
					v += pp[g1]
					tr += v
					ss += v * v
				} else {
					ss += 2 * v * v
				}
				P.Set(g1, g2, v)
			}
		}
		if !(ss > 0) {
			res.DF[j] = math.NaN()
			continue
		}
		res.DF[j] = tr * tr / ss
	}
	return res, nil
}

// cr2Inner returns the r0×r0 matrix L with G^{−1/2} = I + Z L Z' for
// G = I + Z B Z', given gram = Z'Z.
func cr2Inner(gram *mat.Dense, B *mat.Dense) (*mat.Dense, error) {
	r0, _ := gram.Dims()
	// Jacobi scaling, then eigen-decomposition of the scaled Gram matrix.
	sc := make([]float64, r0)
	for i := 0; i < r0; i++ {
		if d := gram.At(i, i); d > 0 {
			sc[i] = 1 / math.Sqrt(d)
		}
	}
	gs := mat.NewSymDense(r0, nil)
	for i := 0; i < r0; i++ {
		for j := i; j < r0; j++ {
			gs.SetSym(i, j, sc[i]*sc[j]*(gram.At(i, j)+gram.At(j, i))/2)
		}
	}
	var eg mat.EigenSym
	if !eg.Factorize(gs, true) {
		return nil, errors.New("eigen-decomposition of the cluster Gram matrix failed")
	}
	vals := eg.Values(nil)
	var vecs mat.Dense
	eg.VectorsTo(&vecs)
	dmax := 0.0
	for _, d := range vals {
		dmax = math.Max(dmax, d)
	}
	L := mat.NewDense(r0, r0, nil)
	if dmax == 0 {
		return L, nil
	}
	var keep []int
	for i, d := range vals {
		if d > gramTol*dmax {
			keep = append(keep, i)
		}
	}
	r := len(keep)
	// T = S P_r D_r^{−1/2}: Q = Z T is orthonormal.
	T := mat.NewDense(r0, r, nil)
	for jj, idx := range keep {
		s := 1 / math.Sqrt(vals[idx])
		for i := 0; i < r0; i++ {
			T.Set(i, jj, sc[i]*vecs.At(i, idx)*s)
		}
	}
	// C = T' Gram B Gram T.
	var gt, bgt, C mat.Dense
	gt.Mul(gram, T)
	bgt.Mul(B, &gt)
	C.Mul(gt.T(), &bgt)
	cs := mat.NewSymDense(r, nil)
	for i := 0; i < r; i++ {
		for j := i; j < r; j++ {
			cs.SetSym(i, j, (C.At(i, j)+C.At(j, i))/2)
		}
	}
	var ec mat.EigenSym
	if !ec.Factorize(cs, true) {
		return nil, errors.New("eigen-decomposition of the adjustment matrix failed")
	}
	lam := ec.Values(nil)
	var V mat.Dense
	ec.VectorsTo(&V)
	// F = V f(Λ) V', L = T F T'.
	tv := mat.NewDense(r0, r, nil)
	tv.Mul(T, &V)
	tvf := mat.NewDense(r0, r, nil)
	for jj, l := range lam {
		ev := 1 + l
		fl := -1.0
		if ev > eigenTol {
			fl = 1/math.Sqrt(ev) - 1
		}
		for i := 0; i < r0; i++ {
			tvf.Set(i, jj, tv.At(i, jj)*fl)
		}
	}
	L.Mul(tvf, tv.T())
	return L, nil
}
