package stats

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// MixedFit is a linear mixed model with a random intercept per group fitted
// by REML.
type MixedFit struct {
	Coef     []float64     // fixed effects β̂
	StdError []float64     // √diag(VCov)
	VCov     *mat.SymDense // σ̂²(X'V⁻¹X)⁻¹, lme4's vcov(fit)

	VarGroup    float64 // σ̂_b², the random-intercept variance
	VarResidual float64 // σ̂², the residual variance
	ICC         float64 // σ̂_b²/(σ̂_b² + σ̂²)
	Theta       float64 // θ̂ = σ̂_b/σ̂, lme4's getME(fit, "theta")

	// REMLCriterion is −2 times the restricted log-likelihood at the
	// optimum, what lme4 reports as "REML criterion at convergence".
	REMLCriterion float64

	// Boundary is true when the group variance is estimated as exactly 0
	// (lme4's singular fit); the fixed effects are then the OLS estimates.
	Boundary bool

	N, K, Groups int
}

// mixedSums are the sufficient statistics of the random-intercept model:
// global cross-products and per-group sums.
type mixedSums struct {
	n, k int
	xtx  *mat.SymDense
	xty  []float64
	yty  float64
	ng   []float64   // group sizes
	sg   [][]float64 // X_g'1
	tg   []float64   // Σ_g y
}

// mixedEval holds the profiled quantities at one ψ = θ².
type mixedEval struct {
	psi, crit, deriv, rss, logdetA float64
	beta                           []float64
	chol                           *mat.Cholesky
}

// eval computes the profiled REML criterion and its derivative in ψ = θ²,
// with V = I + ψZZ', V_g⁻¹ = I − c_g11', c_g = ψ/(1 + n_gψ) (Woodbury):
//
//	A(ψ) = X'V⁻¹X = X'X − Σ c_g s_g s_g',  b = X'V⁻¹y,  β̂ = A⁻¹b,
//	r'V⁻¹r = y'V⁻¹y − b'β̂,
//	crit = Σ log(1 + n_gψ) + log|A| + (n−p)(1 + log(2π r'V⁻¹r/(n−p))),
//	dcrit/dψ = Σ n_g/(1+n_gψ) − Σ c_g' s_g'A⁻¹s_g − (n−p) Σ c_g' R_g²/r'V⁻¹r,
//
// with c_g' = 1/(1+n_gψ)² and R_g the sum of the residuals y − Xβ̂ in group g.
func (s *mixedSums) eval(psi float64) (*mixedEval, error) {
	k := s.k
	A := mat.NewSymDense(k, nil)
	A.CopySym(s.xtx)
	b := make([]float64, k)
	copy(b, s.xty)
	q := s.yty
	for g, n := range s.ng {
		c := psi / (1 + n*psi)
		if c == 0 {
			continue
		}
		A.SymRankOne(A, -c, mat.NewVecDense(k, s.sg[g]))
		for j := range b {
			b[j] -= c * s.sg[g][j] * s.tg[g]
		}
		q -= c * s.tg[g] * s.tg[g]
	}
	var ch mat.Cholesky
	if !ch.Factorize(A) {
		return nil, errors.New("X'V⁻¹X is not positive definite (rank-deficient fixed-effects design)")
	}
	beta := mat.NewVecDense(k, nil)
	if err := ch.SolveVecTo(beta, mat.NewVecDense(k, b)); err != nil {
		return nil, err
	}
	rss := q - mat.Dot(beta, mat.NewVecDense(k, b))
	if !(rss > 0) {
		return nil, errors.New("no residual variation")
	}
	df := float64(s.n - k)
	e := &mixedEval{psi: psi, rss: rss, beta: beta.RawVector().Data, chol: &ch, logdetA: ch.LogDet()}
	var logdetV, d1, d2, d3 float64
	tmp := mat.NewVecDense(k, nil)
	for g, n := range s.ng {
		logdetV += math.Log1p(n * psi)
		cp := 1 / ((1 + n*psi) * (1 + n*psi))
		d1 += n / (1 + n*psi)
		sv := mat.NewVecDense(k, s.sg[g])
		if err := ch.SolveVecTo(tmp, sv); err != nil {
			return nil, err
		}
		d2 += cp * mat.Dot(sv, tmp)
		rg := s.tg[g] - mat.Dot(sv, beta)
		d3 += cp * rg * rg
	}
	e.crit = logdetV + e.logdetA + df*(1+math.Log(2*math.Pi*rss/df))
	e.deriv = d1 - d2 - df*d3/rss
	return e, nil
}

// MixedREML fits y = Xβ + b_group + e with b ~ N(0, σ_b²) per group and
// e ~ N(0, σ²) by restricted maximum likelihood, as
// lme4::lmer(y ~ X - 1 + (1 | group), REML = TRUE) (Bates et al. 2015, JSS
// 67(1), eqs. 34–42, with the random-effects covariance Λ = θI).
//
// The REML criterion is profiled over ψ = θ² = σ_b²/σ² ≥ 0 and evaluated
// with per-group Woodbury formulas from X'X, X'y, y'y and the group sums of X
// and y, so no N×N (or n_g×n_g) matrix is formed and the cost is one pass
// over the data plus O(G·K²) per evaluation. The optimum is located on a
// logarithmic grid of θ in [1e-4, 1e4] and refined to machine precision by
// bisection on the analytic derivative; θ = 0 is always a candidate. When
// the criterion is smallest at θ = 0 the fit is on the boundary: Boundary is
// true, VarGroup is 0 and the fixed effects equal the OLS estimates.
//
// Fixed-effect standard errors are σ̂√diag((X'V⁻¹X)⁻¹) with
// σ̂² = r'V⁻¹r/(N−K), as lme4's vcov. Preconditions: at least two groups,
// N > K, X of full column rank (put a column of ones in X for an intercept);
// group holds one integer label per row (see Codes).
func MixedREML(x *mat.Dense, y []float64, group []int) (*MixedFit, error) {
	n, k := x.Dims()
	if len(y) != n {
		return nil, fmt.Errorf("mixed: y has %d values for %d rows", len(y), n)
	}
	if n <= k {
		return nil, fmt.Errorf("mixed: %d rows for %d fixed effects", n, k)
	}
	codes, g, err := checkClusters(n, group, 2)
	if err != nil {
		return nil, fmt.Errorf("mixed: %w", err)
	}
	s := &mixedSums{n: n, k: k, xty: make([]float64, k), ng: make([]float64, g), tg: make([]float64, g), sg: make([][]float64, g)}
	for i := range s.sg {
		s.sg[i] = make([]float64, k)
	}
	xtx := make([]float64, k*k)
	raw := x.RawMatrix()
	for i := 0; i < n; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+k]
		yi := y[i]
		if math.IsNaN(yi) || math.IsInf(yi, 0) {
			return nil, fmt.Errorf("mixed: y[%d] is %v", i, yi)
		}
		c := codes[i]
		s.ng[c]++
		s.tg[c] += yi
		s.yty += yi * yi
		sg := s.sg[c]
		for a, xa := range row {
			if math.IsNaN(xa) || math.IsInf(xa, 0) {
				return nil, fmt.Errorf("mixed: x[%d,%d] is %v", i, a, xa)
			}
			sg[a] += xa
			s.xty[a] += xa * yi
			if xa == 0 {
				continue
			}
			for b := a; b < k; b++ {
				xtx[a*k+b] += xa * row[b]
			}
		}
	}
	s.xtx = mat.NewSymDense(k, nil)
	for a := 0; a < k; a++ {
		for b := a; b < k; b++ {
			s.xtx.SetSym(a, b, xtx[a*k+b])
		}
	}
	// One step of iterative refinement of β̂ with residuals computed row by
	// row, and r'V⁻¹r from the residuals, to avoid the cancellation in
	// y'V⁻¹y − b'β̂.
	refine := func(opt *mixedEval) ([]float64, float64) {
		beta := append([]float64(nil), opt.beta...)
		rs := make([]float64, g)
		var r2 float64
		corr := make([]float64, k)
		resid := func() {
			for i := range rs {
				rs[i] = 0
			}
			r2 = 0
			for j := range corr {
				corr[j] = 0
			}
			for i := 0; i < n; i++ {
				row := raw.Data[i*raw.Stride : i*raw.Stride+k]
				r := y[i]
				for j, v := range row {
					r -= v * beta[j]
				}
				rs[codes[i]] += r
				r2 += r * r
				for j, v := range row {
					corr[j] += v * r
				}
			}
		}
		resid()
		for c := 0; c < g; c++ {
			cg := opt.psi / (1 + s.ng[c]*opt.psi)
			for j := range corr {
				corr[j] -= cg * s.sg[c][j] * rs[c]
			}
		}
		delta := mat.NewVecDense(k, nil)
		if err := opt.chol.SolveVecTo(delta, mat.NewVecDense(k, corr)); err == nil {
			for j := range beta {
				beta[j] += delta.AtVec(j)
			}
		}
		resid()
		rss := r2
		for c := 0; c < g; c++ {
			rss -= opt.psi / (1 + s.ng[c]*opt.psi) * rs[c] * rs[c]
		}
		return beta, rss
	}
	return s.fit(refine)
}

// fit maximises the profiled REML criterion (see MixedREML). refine, when
// not nil, returns β̂ and r'V⁻¹r at the optimum recomputed from the rows;
// without it they come from the sums.
func (s *mixedSums) fit(refine func(opt *mixedEval) ([]float64, float64)) (*MixedFit, error) {
	n, k, g := s.n, s.k, len(s.ng)

	// Grid over θ, then refine.
	const nGrid = 81
	thetas := make([]float64, nGrid+1) // thetas[0] = 0
	for i := 1; i <= nGrid; i++ {
		thetas[i] = math.Pow(10, -4+8*float64(i-1)/float64(nGrid-1))
	}
	// With large groups and group-level columns X'V⁻¹X becomes numerically
	// singular as θ grows (n_gψ ≳ 1e12 removes all between-group
	// information); the grid stops at the first such θ.
	evals := make([]*mixedEval, len(thetas))
	best, last := 0, nGrid
	for i, th := range thetas {
		e, err := s.eval(th * th)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("mixed: %w", err)
			}
			last = i - 1
			break
		}
		evals[i] = e
		if e.crit < evals[best].crit {
			best = i
		}
	}
	if best == nGrid {
		return nil, errors.New("mixed: REML optimum beyond θ = 1e4 (group variance dominates); no convergence")
	}
	if best == last {
		return nil, fmt.Errorf("mixed: REML optimum at θ ≥ %g, beyond which X'V⁻¹X is numerically singular; no convergence", thetas[last])
	}
	opt := evals[0]
	if best > 0 || evals[0].deriv < 0 {
		lo, hi := evals[max(best-1, 0)], evals[best+1]
		if lo.deriv < 0 && hi.deriv > 0 {
			root, err := s.bisect(lo, hi)
			if err != nil {
				return nil, fmt.Errorf("mixed: %w", err)
			}
			if root.crit < opt.crit {
				opt = root
			}
		} else if evals[best].crit < opt.crit {
			opt = evals[best]
		}
	}
	boundary := opt.psi == 0
	beta, rss := opt.beta, opt.rss
	if refine != nil {
		beta, rss = refine(opt)
	}
	df := float64(n - k)
	sigma2 := rss / df
	var logdetV float64
	for _, nc := range s.ng {
		logdetV += math.Log1p(nc * opt.psi)
	}
	var ainv mat.SymDense
	if err := opt.chol.InverseTo(&ainv); err != nil {
		return nil, fmt.Errorf("mixed: %w", err)
	}
	fit := &MixedFit{
		Coef:          beta,
		StdError:      make([]float64, k),
		VCov:          mat.NewSymDense(k, nil),
		VarResidual:   sigma2,
		VarGroup:      sigma2 * opt.psi,
		Theta:         math.Sqrt(opt.psi),
		REMLCriterion: logdetV + opt.logdetA + df*(1+math.Log(2*math.Pi*rss/df)),
		Boundary:      boundary,
		N:             n, K: k, Groups: g,
	}
	fit.VCov.ScaleSym(sigma2, &ainv)
	for j := range fit.StdError {
		fit.StdError[j] = math.Sqrt(fit.VCov.At(j, j))
	}
	fit.ICC = fit.VarGroup / (fit.VarGroup + fit.VarResidual)
	return fit, nil
}

// bisect finds the root of the criterion's derivative between lo and hi
// (lo.deriv < 0 < hi.deriv), bisecting in log ψ down to machine precision.
func (s *mixedSums) bisect(lo, hi *mixedEval) (*mixedEval, error) {
	for iter := 0; iter < 200; iter++ {
		var mid float64
		if lo.psi == 0 {
			mid = hi.psi / 2
			if mid < 1e-300 {
				return lo, nil
			}
		} else {
			mid = math.Sqrt(lo.psi * hi.psi)
		}
		if mid <= lo.psi || mid >= hi.psi {
			break
		}
		e, err := s.eval(mid)
		if err != nil {
			return nil, err
		}
		if e.deriv < 0 {
			lo = e
		} else {
			hi = e
		}
		if hi.psi-lo.psi <= 1e-15*hi.psi {
			break
		}
	}
	if math.Abs(lo.deriv) < math.Abs(hi.deriv) {
		return lo, nil
	}
	return hi, nil
}
