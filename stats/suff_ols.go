package stats

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// suffCondMax is the largest condition number of the Jacobi-scaled X'WX
// (≈ cond(W^{1/2}X)²) for which SuffOLS solves the normal equations: the
// coefficients' relative error is about ε·cond(X'WX), so above 1e12 fewer
// than four digits would be left. Such a design is an error, not a fit.
const suffCondMax = 1e12

// SuffFit is a least-squares fit computed from per-cluster sufficient
// statistics (ClusterSums). It holds the same quantities as Fit, without
// the N-vectors of residuals and fitted values.
type SuffFit struct {
	// Coef has K values; an aliased column's coefficient is NaN (R's lm
	// reports NA).
	Coef []float64
	// Aliased lists, in increasing order, the columns dropped because they
	// are zero or a linear combination of the columns before them, as R's
	// lm drops later aliased columns (alias(lm)). Kept lists the others.
	Aliased, Kept []int

	N, K, Rank int
	DFResid    int     // N − Rank, R's df.residual
	Sigma      float64 // √(Σwe²/(N − Rank)), R's sigma(lm)
	RSquared   float64 // as Fit.RSquared (summary.lm's r.squared)
	// Cond estimates the 1-norm condition number of the Jacobi-scaled
	// X'WX over the kept columns (about cond(W^{1/2}X)²); the coefficients
	// carry a relative error of about ε·Cond.
	Cond float64

	// Bread is (X'WX)⁻¹ over all K columns, NaN in the rows and columns of
	// aliased columns.
	Bread *mat.SymDense

	// The fit itself is done in the basis of the sums (see ClusterSums):
	// coef, bread and cl are over the kept columns in that basis; with the
	// centred basis X = ZT over the kept columns, β = T⁻¹(γ + y₀e₀), and
	// tinv holds T⁻¹ (nil in the plain basis, T = I).
	weighted bool
	coef     []float64     // γ, over Kept
	bread    *mat.SymDense // (Z'WZ)⁻¹, over Kept
	cl       []*suffCluster
	tinv     *mat.Dense
}

// SuffOLS fits y = Xβ + e by least squares from the sums s, without the
// rows: it is OLS (or, when s is weighted, WLS with the weights given to
// Add), stats::lm(y ~ X - 1, weights = w), and gives the same coefficients,
// σ̂ and R² to rounding.
//
// Basis: when column 0 is constant (an intercept), the fit is done in the
// centred basis Z = [1, x_1 − x₀_1, …] with response y − y₀ (see
// ClusterSums), X = ZT, and mapped back exactly: β̂ = T⁻¹(γ̂ + y₀e₀),
// (X'WX)⁻¹ = T⁻¹(Z'WZ)⁻¹T⁻ᵀ; an offset covariate (a date, a score
// centred far from 0) then costs no accuracy. Otherwise X is used as is.
//
// The route is the normal equations, solved stably: the Jacobi-scaled
// matrix D Z'WZ D (D = diag(Z'WZ)^{−1/2}, unit diagonal) is factorised by a
// left-looking Cholesky that visits the columns in order and drops column j
// when its pivot r_jj² (the squared norm of the part of √W z_j orthogonal
// to the kept columns before it, relative to ‖√W z_j‖²) is at most
// rankTol², the tolerance of R's lm.fit/dqrdc2 (|r_jj| < 1e-7‖x_j‖): the
// aliased columns are those R's lm reports as NA. The kept columns are then
// factorised again by gonum's Cholesky, which estimates the condition
// number (Cond); a scaled condition number above 1e12 is an error. With
// R'R = D Z'WZ D, γ̂ = D R⁻¹R⁻ᵀ D Z'Wy, (Z'WZ)⁻¹ = D R⁻¹R⁻ᵀ D and
// RSS = y'Wy − γ̂'Z'Wy.
//
// Accuracy: the relative error is about ε·Cond, i.e. ε·cond(√W Z)², where a
// QR of the rows (OLS) gives ε·cond(√W X). After centring, designs of
// dummies and covariates agree with OLS to better than 1e-10 (tests); a
// nearly collinear pair of covariates (Cond ≈ 3e7) to about 1e-8.
// Preconditions: more rows than kept columns, at least one non-aliased
// column.
func SuffOLS(s *ClusterSums) (*SuffFit, error) {
	return suffOLS(s, s.centrable())
}

// centredTinv returns T⁻¹ of the centred basis over the kept columns
// (kept[0] == 0): x_0 = c·1 and x_j = u_j + x₀_j·1, so T is the identity
// but for row 0, (c, x₀_kept[1], …), and T⁻¹ the identity but for row 0,
// (1/c, −x₀_kept[1]/c, …).
func (s *ClusterSums) centredTinv(kept []int) *mat.Dense {
	r := len(kept)
	t := mat.NewDense(r, r, nil)
	c := s.first[0]
	for a := 0; a < r; a++ {
		t.Set(a, a, 1)
	}
	t.Set(0, 0, 1/c)
	for a := 1; a < r; a++ {
		t.Set(0, a, -s.shift[kept[a]]/c)
	}
	return t
}

// transform returns T⁻¹ V T⁻ᵀ (V itself in the plain basis).
func transform(tinv *mat.Dense, v *mat.SymDense) *mat.SymDense {
	if tinv == nil {
		return v
	}
	r := v.SymmetricDim()
	var tv, tvt mat.Dense
	tv.Mul(tinv, v)
	tvt.Mul(&tv, tinv.T())
	out := mat.NewSymDense(r, nil)
	for i := 0; i < r; i++ {
		for j := i; j < r; j++ {
			out.SetSym(i, j, (tvt.At(i, j)+tvt.At(j, i))/2)
		}
	}
	return out
}

// coefOf returns β = T⁻¹(γ + y₀e₀) (γ in the plain basis).
func coefOf(tinv *mat.Dense, y0 float64, gamma []float64) []float64 {
	if tinv == nil {
		return gamma
	}
	g := append([]float64(nil), gamma...)
	g[0] += y0
	out := make([]float64, len(g))
	for i := range out {
		for j, v := range g {
			out[i] += tinv.At(i, j) * v
		}
	}
	return out
}

func suffOLS(s *ClusterSums, centred bool) (*SuffFit, error) {
	k := s.k
	all := s.clusters(allCols(k), centred)
	if len(all) == 0 {
		return nil, errors.New("suff ols: no rows")
	}
	A := mat.NewSymDense(k, nil)
	for _, c := range all {
		A.AddSym(A, c.xwx)
	}
	kept, aliased := aliasedColumns(A)
	if len(kept) == 0 {
		return nil, errors.New("suff ols: every column is zero")
	}
	if s.rows <= len(kept) {
		return nil, fmt.Errorf("suff ols: %d rows for %d coefficients, need more rows than coefficients", s.rows, len(kept))
	}
	cl := all
	if len(aliased) > 0 {
		cl = s.clusters(kept, centred)
	}
	r := len(kept)
	f := &SuffFit{Aliased: aliased, Kept: kept, N: s.rows, K: k, Rank: r, DFResid: s.rows - r, weighted: s.weighted, cl: cl}
	Ar := mat.NewSymDense(r, nil)
	b := make([]float64, r)
	var ywy, sw float64
	swx := make([]float64, r)
	for _, c := range cl {
		Ar.AddSym(Ar, c.xwx)
		for j := range b {
			b[j] += c.xwy[j]
			swx[j] += c.swx[j]
		}
		ywy += c.ywy
		sw += c.sw
	}
	bread, coef, cond, err := solveScaled(Ar, b)
	if err != nil {
		return nil, fmt.Errorf("suff ols: %w", err)
	}
	f.Cond = cond
	f.coef, f.bread = coef, bread
	var bb, swf float64
	for j, v := range coef {
		bb += v * b[j]
		swf += v * swx[j]
	}
	rss := math.Max(ywy-bb, 0)
	f.Sigma = math.Sqrt(rss / float64(f.DFResid))
	// MSS = Σw(f − c)² = β̂'X'WXβ̂ − 2c Σwf + c² Σw, c = Σwf/Σw with an
	// intercept, 0 without.
	mss := bb
	for _, j := range kept {
		if s.constant[j] && s.first[j] != 0 {
			mss = bb - swf*swf/sw
			break
		}
	}
	f.RSquared = mss / (mss + rss)

	if centred {
		f.tinv = s.centredTinv(kept)
	}
	f.Coef = make([]float64, k)
	for j := range f.Coef {
		f.Coef[j] = math.NaN()
	}
	for a, v := range coefOf(f.tinv, s.shift[k], coef) {
		f.Coef[kept[a]] = v
	}
	f.Bread = f.expand(transform(f.tinv, bread))
	return f, nil
}

// aliasedColumns runs the in-order pivot check of SuffOLS on A = X'WX and
// returns the kept and the aliased columns.
func aliasedColumns(A *mat.SymDense) (kept, aliased []int) {
	k := A.SymmetricDim()
	d := make([]float64, k)
	for j := range d {
		d[j] = A.At(j, j)
	}
	// L holds the rows of the lower Cholesky factor of the kept columns.
	L := make([][]float64, k)
	for j := 0; j < k; j++ {
		if !(d[j] > 0) {
			aliased = append(aliased, j)
			continue
		}
		row := make([]float64, len(kept))
		var ss float64
		for a, i := range kept {
			v := A.At(j, i) / math.Sqrt(d[j]*d[i])
			for l := 0; l < a; l++ {
				v -= row[l] * L[i][l]
			}
			v /= L[i][a]
			row[a] = v
			ss += v * v
		}
		piv := 1 - ss
		if piv <= rankTol*rankTol {
			aliased = append(aliased, j)
			continue
		}
		L[j] = append(row, math.Sqrt(piv))
		kept = append(kept, j)
	}
	return kept, aliased
}

// solveScaled solves A β = b for symmetric positive definite A through the
// Cholesky factor of D A D, D = diag(A)^{−1/2}, and returns A⁻¹, β and the
// condition estimate of D A D.
func solveScaled(A *mat.SymDense, b []float64) (*mat.SymDense, []float64, float64, error) {
	r := A.SymmetricDim()
	d := make([]float64, r)
	for j := range d {
		d[j] = 1 / math.Sqrt(A.At(j, j))
	}
	S := mat.NewSymDense(r, nil)
	for i := 0; i < r; i++ {
		for j := i; j < r; j++ {
			S.SetSym(i, j, d[i]*d[j]*A.At(i, j))
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(S) {
		return nil, nil, math.Inf(1), errors.New("X'WX is not positive definite")
	}
	cond := ch.Cond()
	if !(cond <= suffCondMax) {
		return nil, nil, cond, fmt.Errorf("X'WX is too ill-conditioned for the normal equations (scaled condition number %.3g)", cond)
	}
	var sinv mat.SymDense
	if err := ch.InverseTo(&sinv); err != nil {
		return nil, nil, cond, err
	}
	bs := mat.NewVecDense(r, nil)
	for j := range b {
		bs.SetVec(j, d[j]*b[j])
	}
	beta := mat.NewVecDense(r, nil)
	if err := ch.SolveVecTo(beta, bs); err != nil {
		return nil, nil, cond, err
	}
	inv := mat.NewSymDense(r, nil)
	coef := make([]float64, r)
	for i := 0; i < r; i++ {
		coef[i] = d[i] * beta.AtVec(i)
		for j := i; j < r; j++ {
			inv.SetSym(i, j, d[i]*d[j]*sinv.At(i, j))
		}
	}
	return inv, coef, cond, nil
}

// keptIndex returns the position of column j among the kept columns, or an
// error when j is out of range or aliased.
func (f *SuffFit) keptIndex(j int) (int, error) {
	if j < 0 || j >= f.K {
		return 0, fmt.Errorf("column %d out of range [0, %d)", j, f.K)
	}
	for a, i := range f.Kept {
		if i == j {
			return a, nil
		}
	}
	return 0, fmt.Errorf("column %d is aliased", j)
}

// expand returns the K×K matrix with v over the kept columns and NaN for
// the aliased ones.
func (f *SuffFit) expand(v *mat.SymDense) *mat.SymDense {
	out := mat.NewSymDense(f.K, nil)
	for i := 0; i < f.K; i++ {
		for j := i; j < f.K; j++ {
			out.SetSym(i, j, math.NaN())
		}
	}
	for a, i := range f.Kept {
		for b := a; b < len(f.Kept); b++ {
			out.SetSym(i, f.Kept[b], v.At(a, b))
		}
	}
	return out
}

// VCov returns the classical covariance matrix σ̂²(X'WX)⁻¹ (R's vcov(lm)),
// NaN for aliased columns.
func (f *SuffFit) VCov() *mat.SymDense {
	v := mat.NewSymDense(f.K, nil)
	v.ScaleSym(f.Sigma*f.Sigma, f.Bread)
	return v
}

// CoefTest returns the classical t test of coefficient j with N − Rank
// degrees of freedom, as Fit.CoefTest (summary(lm), confint(lm)). An aliased
// column gives NaN.
func (f *SuffFit) CoefTest(j int, level float64) CoefTest {
	se := f.Sigma * math.Sqrt(f.Bread.At(j, j))
	return TTest(f.Coef[j], se, float64(f.DFResid), level)
}

// robustSums turns the fit's clusters into the per-cluster summaries of the
// sandwich estimators: X_g'e_g = X_g'y_g − X_g'X_gβ̂ and X_g'W_ge_g =
// X_g'W_gy_g − X_g'W_gX_gβ̂.
func (f *SuffFit) robustSums() (*clusterSums, error) {
	g := len(f.cl)
	if g < 2 {
		return nil, fmt.Errorf("%d clusters, need at least 2", g)
	}
	r := f.Rank
	cs := &clusterSums{g: g, weighted: f.weighted, sizes: make([]int, g), xwx: make([]*mat.SymDense, g), xe: make([][]float64, g), xwe: make([][]float64, g), totalXW2X: mat.NewSymDense(r, nil)}
	if f.weighted {
		cs.xx = make([]*mat.SymDense, g)
		cs.xw2x = make([]*mat.SymDense, g)
	}
	resid := func(xy []float64, xx *mat.SymDense) []float64 {
		e := make([]float64, r)
		for a := 0; a < r; a++ {
			v := xy[a]
			for b := 0; b < r; b++ {
				v -= xx.At(a, b) * f.coef[b]
			}
			e[a] = v
		}
		return e
	}
	for i, c := range f.cl {
		cs.sizes[i] = c.n
		cs.xwx[i] = c.xwx
		cs.xe[i] = resid(c.xy, c.xx)
		if f.weighted {
			cs.xx[i], cs.xw2x[i] = c.xx, c.xw2x
			cs.xwe[i] = resid(c.xwy, c.xwx)
		} else {
			cs.xwe[i] = cs.xe[i]
		}
		cs.totalXW2X.AddSym(cs.totalXW2X, cs.XW2X(i))
	}
	return cs, nil
}

// VCovCR1 returns the CR1 cluster-robust covariance matrix of Fit.VCovCR1,
//
//	V = G/(G−1) · (N−1)/(N−Rank) · M (Σ_g X_g'W_g e_g e_g'W_g X_g) M,
//
// sandwich::vcovCL(fit, cluster, type = "HC1"), with X_g'W_ge_g from the
// sums. The clusters are the non-empty clusters of the sums (at least two).
func (f *SuffFit) VCovCR1() (*mat.SymDense, error) {
	cs, err := f.robustSums()
	if err != nil {
		return nil, fmt.Errorf("cr1: %w", err)
	}
	return f.expand(transform(f.tinv, f.vcovCR1(cs))), nil
}

// vcovCR1 is the CR1 matrix in the basis of the fit.
func (f *SuffFit) vcovCR1(cs *clusterSums) *mat.SymDense {
	g := float64(cs.g)
	adj := g / (g - 1) * float64(f.N-1) / float64(f.N-f.Rank)
	return sandwich(f.bread, cs.xwe, adj)
}

// CR1Test returns the t test of coefficient j with the CR1 standard error
// and G − 1 degrees of freedom, as Fit.CR1Test (lmtest::coeftest(fit,
// vcovCL(fit, cluster, type = "HC1"), df = G - 1)).
func (f *SuffFit) CR1Test(j int, level float64) (CoefTest, error) {
	a, err := f.keptIndex(j)
	if err != nil {
		return CoefTest{}, fmt.Errorf("cr1: %w", err)
	}
	cs, err := f.robustSums()
	if err != nil {
		return CoefTest{}, fmt.Errorf("cr1: %w", err)
	}
	v := transform(f.tinv, f.vcovCR1(cs))
	return TTest(f.Coef[j], math.Sqrt(v.At(a, a)), float64(cs.g-1), level), nil
}

// CR2 returns the CR2 covariance matrix and the Satterthwaite degrees of
// freedom of every coefficient of Fit.CR2 (clubSandwich::vcovCR(fit,
// cluster, type = "CR2") and coef_test(..., test = "Satterthwaite"), with
// the identity working model, weighted or not), computed by the same code
// from the per-cluster cross-products: with X_g = U_gS_gV_g' the adjustment
// (I − H_gg)^{−1/2} acts as the identity outside span(X_g) (span(X_g,
// W_gX_g) when weighted) and within it is I + Q_g f(C_g) Q_g', where Q_g is
// an orthonormal basis from the eigen-decomposition of the scaled Gram
// matrix X_g'X_g and C_g = −Q_g'X_gMX_g'Q_g has the nonzero eigenvalues of
// −S_gV_g'MV_gS_g; f(λ) = (1+λ)^{−1/2} − 1. The Satterthwaite df of
// coefficient c is (tr P)²/Σ_gh P_gh² with P_gh as in Fit.CR2, all of whose
// terms are K-dimensional. Aliased columns get NaN.
func (f *SuffFit) CR2() (*CR2Result, error) {
	cs, err := f.robustSums()
	if err != nil {
		return nil, fmt.Errorf("cr2: %w", err)
	}
	var L *mat.Dense
	if f.tinv != nil {
		L = mat.DenseCopyOf(f.tinv.T())
	}
	res, err := cr2(f.bread, f.coef, cs, L)
	if err != nil {
		return nil, err
	}
	out := &CR2Result{Coef: f.Coef, VCov: f.expand(transform(f.tinv, res.VCov)), DF: make([]float64, f.K), G: res.G}
	for j := range out.DF {
		out.DF[j] = math.NaN()
	}
	for a, i := range f.Kept {
		out.DF[i] = res.DF[a]
	}
	return out, nil
}

// CR2Contrast returns the t test of the contrast l'β (l has K values, 0 on
// aliased columns) with the CR2 standard error √(l'V l) and the
// Satterthwaite degrees of freedom of the contrast, (tr P)²/Σ_gh P_gh² with
// Mc replaced by Ml in Fit.CR2's P_gh (clubSandwich::linear_contrast with
// test = "Satterthwaite"), and the level confidence interval.
func (f *SuffFit) CR2Contrast(l []float64, level float64) (CoefTest, error) {
	if len(l) != f.K {
		return CoefTest{}, fmt.Errorf("cr2: contrast has %d values for %d coefficients", len(l), f.K)
	}
	var est float64
	lk := mat.NewDense(f.Rank, 1, nil)
	for a, j := range f.Kept {
		lk.Set(a, 0, l[j])
		est += l[j] * f.Coef[j]
	}
	for _, j := range f.Aliased {
		if l[j] != 0 {
			return CoefTest{}, fmt.Errorf("cr2: contrast weights aliased column %d", j)
		}
	}
	cs, err := f.robustSums()
	if err != nil {
		return CoefTest{}, fmt.Errorf("cr2: %w", err)
	}
	// In the basis of the fit the contrast is (T⁻ᵀl)'γ.
	L := lk
	if f.tinv != nil {
		L = mat.NewDense(f.Rank, 1, nil)
		L.Mul(f.tinv.T(), lk)
	}
	res, err := cr2(f.bread, f.coef, cs, L)
	if err != nil {
		return CoefTest{}, err
	}
	var v mat.VecDense
	v.MulVec(res.VCov, L.ColView(0))
	se := math.Sqrt(mat.Dot(L.ColView(0), &v))
	return TTest(est, se, res.DF[0], level), nil
}

// SuffWildClusterBootstrap is WildClusterBootstrap (the wild cluster
// restricted bootstrap-t of H0: β_j = 0 with Webb weights, and its
// test-inversion interval) from the sums s alone. The restricted fits come
// from the normal equations: with X̃ the kept columns other than j,
// γ₀ = (X̃'WX̃)⁻¹X̃'Wy and γ₁ = (X̃'WX̃)⁻¹X̃'Wx_j, and the per-cluster scores
// of the restricted residuals are linear in the sums,
//
//	X_g'W_gũ_g(δ) = (X_g'W_gy_g − X_g'W_gX̃_gγ₀) − δ(X_g'W_gx_jg − X_g'W_gX̃_gγ₁),
//
// so a bootstrap response y* = X̃γ̃ + v_gũ_g changes X_g'W_gy*_g by
// v_g·X_g'W_gũ_g, and every replication is O(G²) as in the dense version.
// The draws are those of WildClusterBootstrap for the same rng when the
// clusters are numbered 0..G−1 in order of first appearance (as Codes
// numbers them). j must be a kept column.
func SuffWildClusterBootstrap(s *ClusterSums, j int, cfg WildConfig, rng *rand.Rand) (WildResult, error) {
	if cfg.Draws < 1 {
		return WildResult{}, fmt.Errorf("wild bootstrap: %d draws", cfg.Draws)
	}
	if rng == nil {
		return WildResult{}, errors.New("wild bootstrap: nil random source")
	}
	// In the centred basis β_j = γ_j for j ≠ 0, and dropping u_j spans what
	// dropping x_j does; a test of the intercept itself uses the plain basis.
	full, err := suffOLS(s, s.centrable() && j != 0)
	if err != nil {
		return WildResult{}, fmt.Errorf("wild bootstrap: %w", err)
	}
	jj, err := full.keptIndex(j)
	if err != nil {
		return WildResult{}, fmt.Errorf("wild bootstrap: %w", err)
	}
	cs, err := full.robustSums()
	if err != nil {
		return WildResult{}, fmt.Errorf("wild bootstrap: %w", err)
	}
	r := full.Rank
	v1 := full.vcovCR1(cs)
	se := math.Sqrt(v1.At(jj, jj))
	res := WildResult{Estimate: full.coef[jj], StdError: se, T: full.coef[jj] / se, Draws: cfg.Draws, CILow: math.NaN(), CIHigh: math.NaN()}
	if !(se > 0) {
		return res, errors.New("wild bootstrap: CR1 standard error is zero")
	}
	keep := make([]int, 0, r-1)
	for a := 0; a < r; a++ {
		if a != jj {
			keep = append(keep, a)
		}
	}
	g0 := make([]float64, len(keep))
	g1 := make([]float64, len(keep))
	if len(keep) > 0 {
		A := mat.NewSymDense(len(keep), nil)
		b0 := make([]float64, len(keep))
		b1 := make([]float64, len(keep))
		for _, c := range full.cl {
			for a, ia := range keep {
				b0[a] += c.xwy[ia]
				b1[a] += c.xwx.At(ia, jj)
				for b := a; b < len(keep); b++ {
					A.SetSym(a, b, A.At(a, b)+c.xwx.At(ia, keep[b]))
				}
			}
		}
		_, c0, _, err := solveScaled(A, b0)
		if err != nil {
			return res, fmt.Errorf("wild bootstrap: restricted model: %w", err)
		}
		_, c1, _, err := solveScaled(A, b1)
		if err != nil {
			return res, fmt.Errorf("wild bootstrap: restricted model: %w", err)
		}
		g0, g1 = c0, c1
	}
	G := cs.g
	d0 := make([][]float64, G)
	d1 := make([][]float64, G)
	for i, c := range full.cl {
		d0[i] = make([]float64, r)
		d1[i] = make([]float64, r)
		for a := 0; a < r; a++ {
			v0, v1 := c.xwy[a], c.xwx.At(a, jj)
			for b, ib := range keep {
				x := c.xwx.At(a, ib)
				v0 -= x * g0[b]
				v1 -= x * g1[b]
			}
			d0[i][a], d1[i][a] = v0, v1
		}
	}
	return wildFromSums(res, full.coef, full.bread, cs.xwx, d0, d1, full.N, jj, cfg, rng), nil
}

// SuffMixedREML is MixedREML (lme4::lmer(y ~ X - 1 + (1 | group), REML =
// TRUE)) from the sums s, the clusters being the groups: the profiled REML
// criterion needs only X'X, X'y, y'y and, per group, n_g, X_g'1 and 1'y_g
// (Bates et al. 2015, JSS 67(1); Woodbury per group as in MixedREML). The
// only difference from MixedREML is that β̂ and r'V⁻¹r at the optimum come
// from the sums (y'V⁻¹y − b'β̂) instead of a refinement over the rows. The
// weights of weighted sums are not used. An aliased column is an error.
func SuffMixedREML(s *ClusterSums) (*MixedFit, error) {
	k := s.k
	centred := s.centrable()
	cl := s.clusters(allCols(k), centred)
	if len(cl) < 2 {
		return nil, fmt.Errorf("mixed: %d clusters, need at least 2", len(cl))
	}
	if s.rows <= k {
		return nil, fmt.Errorf("mixed: %d rows for %d fixed effects", s.rows, k)
	}
	m := &mixedSums{n: s.rows, k: k, xtx: mat.NewSymDense(k, nil), xty: make([]float64, k)}
	for _, c := range cl {
		m.xtx.AddSym(m.xtx, c.xx)
		for j := range m.xty {
			m.xty[j] += c.xy[j]
		}
		m.yty += c.yy
		m.ng = append(m.ng, float64(c.n))
		m.sg = append(m.sg, c.sx)
		m.tg = append(m.tg, c.sy)
	}
	if _, aliased := aliasedColumns(m.xtx); len(aliased) > 0 {
		return nil, fmt.Errorf("mixed: design matrix is rank deficient: column %d is zero or a linear combination of the columns before it", aliased[0])
	}
	fit, err := m.fit(nil)
	if err != nil || !centred {
		return fit, err
	}
	// Back from the centred basis: β = T⁻¹(γ + y₀e₀), V = T⁻¹V_γT⁻ᵀ, and
	// log|X'V⁻¹X| = log|Z'V⁻¹Z| + 2 log|det T|, det T = c.
	tinv := s.centredTinv(allCols(k))
	fit.Coef = coefOf(tinv, s.shift[k], fit.Coef)
	fit.VCov = transform(tinv, fit.VCov)
	for j := range fit.StdError {
		fit.StdError[j] = math.Sqrt(fit.VCov.At(j, j))
	}
	fit.REMLCriterion += 2 * math.Log(math.Abs(s.first[0]))
	return fit, nil
}
