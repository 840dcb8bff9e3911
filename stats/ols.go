package stats

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// rankTol is the tolerance of the rank check in OLS: a column whose part
// orthogonal to the preceding columns has norm below rankTol times its own
// norm is treated as collinear (the tol = 1e-7 of R's lm.fit/dqrdc2).
const rankTol = 1e-7

// Fit is a fitted linear model y = Xβ + e estimated by ordinary or weighted
// least squares. X and Y refer to the caller's data, which OLS does not
// modify; the caller must not modify them while the Fit is in use.
type Fit struct {
	X       *mat.Dense // n×k design matrix (not copied)
	Y       []float64  // response (not copied)
	Weights []float64  // analytic weights, nil for OLS (not copied)

	Coef   []float64 // β̂ = (X'WX)⁻¹X'Wy
	Resid  []float64 // y − Xβ̂ (unweighted residuals, as residuals.lm)
	Fitted []float64 // Xβ̂

	N, K    int
	DFResid int     // N − K
	Sigma   float64 // √(Σ wᵢeᵢ² / (N − K)), R's sigma(lm)
	// RSquared is summary.lm's r.squared: MSS/(MSS + RSS) with weighted sums
	// of squares, MSS about the weighted mean when X has a constant column
	// and about zero otherwise.
	RSquared float64

	// Bread is M = (X'WX)⁻¹, the bread of every sandwich estimator.
	Bread *mat.SymDense
}

// OLS fits y = Xβ + e by least squares through a Householder QR
// decomposition of W^{1/2}X. With w == nil it is ordinary least squares; with
// weights it minimises Σ wᵢ(yᵢ − xᵢ'β)², which is stats::lm(y ~ X - 1,
// weights = w). The model has whatever columns X has: put a column of ones in
// X for an intercept.
//
// Preconditions: len(y) == rows of X (and len(w) when w is not nil), more
// rows than columns, finite values, positive weights. A rank-deficient X is an
// error naming the first collinear column (R's lm would report an NA
// coefficient instead).
func OLS(x *mat.Dense, y, w []float64) (*Fit, error) {
	n, k := x.Dims()
	if len(y) != n {
		return nil, fmt.Errorf("ols: y has %d values for %d rows", len(y), n)
	}
	if w != nil && len(w) != n {
		return nil, fmt.Errorf("ols: w has %d values for %d rows", len(w), n)
	}
	if k == 0 {
		return nil, errors.New("ols: design matrix has no columns")
	}
	if n <= k {
		return nil, fmt.Errorf("ols: %d rows for %d coefficients, need more rows than coefficients", n, k)
	}
	// Scaled copy in a column-major friendly layout for LAPACK (row-major
	// General as gonum uses).
	a := blas64.General{Rows: n, Cols: k, Stride: k, Data: make([]float64, n*k)}
	b := blas64.General{Rows: n, Cols: 1, Stride: 1, Data: make([]float64, n)}
	raw := x.RawMatrix()
	for i := 0; i < n; i++ {
		s := 1.0
		if w != nil {
			if !(w[i] > 0) || math.IsInf(w[i], 0) {
				return nil, fmt.Errorf("ols: weight %d is %v, need a finite positive weight", i, w[i])
			}
			s = math.Sqrt(w[i])
		}
		if math.IsNaN(y[i]) || math.IsInf(y[i], 0) {
			return nil, fmt.Errorf("ols: y[%d] is %v", i, y[i])
		}
		row := raw.Data[i*raw.Stride : i*raw.Stride+k]
		dst := a.Data[i*k : i*k+k]
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("ols: x[%d,%d] is %v", i, j, v)
			}
			dst[j] = s * v
		}
		b.Data[i] = s * y[i]
	}
	colNorm := make([]float64, k)
	for j := 0; j < k; j++ {
		colNorm[j] = blas64.Nrm2(blas64.Vector{N: n, Inc: k, Data: a.Data[j:]})
	}
	tau := make([]float64, k)
	work := make([]float64, 1)
	lapack64.Geqrf(a, tau, work, -1)
	work = make([]float64, int(work[0]))
	lapack64.Geqrf(a, tau, work, len(work))
	for j := 0; j < k; j++ {
		if colNorm[j] == 0 || math.Abs(a.Data[j*k+j]) < rankTol*colNorm[j] {
			return nil, fmt.Errorf("ols: design matrix is rank deficient: column %d is zero or a linear combination of the columns before it", j)
		}
	}
	// Q'b, then solve Rβ = (Q'b)[:k].
	work = make([]float64, 1)
	lapack64.Ormqr(blas.Left, blas.Trans, a, tau, b, work, -1)
	work = make([]float64, int(work[0]))
	lapack64.Ormqr(blas.Left, blas.Trans, a, tau, b, work, len(work))
	r := blas64.Triangular{Uplo: blas.Upper, Diag: blas.NonUnit, N: k, Stride: k, Data: a.Data[:k*k]}
	coef := make([]float64, k)
	copy(coef, b.Data[:k])
	blas64.Trsv(blas.NoTrans, r, blas64.Vector{N: k, Inc: 1, Data: coef})
	// M = R⁻¹R⁻ᵀ.
	rinv := blas64.Triangular{Uplo: blas.Upper, Diag: blas.NonUnit, N: k, Stride: k, Data: make([]float64, k*k)}
	for i := 0; i < k; i++ {
		copy(rinv.Data[i*k+i:i*k+k], a.Data[i*k+i:i*k+k])
	}
	if !lapack64.Trtri(rinv) {
		return nil, errors.New("ols: design matrix is singular")
	}
	bread := mat.NewSymDense(k, nil)
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			s := 0.0
			for l := j; l < k; l++ {
				s += rinv.Data[i*k+l] * rinv.Data[j*k+l]
			}
			bread.SetSym(i, j, s)
		}
	}

	f := &Fit{X: x, Y: y, Weights: w, Coef: coef, N: n, K: k, DFResid: n - k, Bread: bread}
	f.Fitted = make([]float64, n)
	f.Resid = make([]float64, n)
	var rss, sw, swf float64
	for i := 0; i < n; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+k]
		fi := 0.0
		for j, v := range row {
			fi += v * coef[j]
		}
		f.Fitted[i] = fi
		e := y[i] - fi
		f.Resid[i] = e
		wi := weightAt(w, i)
		rss += wi * e * e
		sw += wi
		swf += wi * fi
	}
	f.Sigma = math.Sqrt(rss / float64(n-k))
	center := 0.0
	if hasConstantColumn(x) {
		center = swf / sw
	}
	var mss float64
	for i := 0; i < n; i++ {
		d := f.Fitted[i] - center
		mss += weightAt(w, i) * d * d
	}
	f.RSquared = mss / (mss + rss)
	return f, nil
}

func weightAt(w []float64, i int) float64 {
	if w == nil {
		return 1
	}
	return w[i]
}

// hasConstantColumn reports whether some column of x is constant and
// non-zero, i.e. the model has an intercept.
func hasConstantColumn(x *mat.Dense) bool {
	n, k := x.Dims()
	for j := 0; j < k; j++ {
		c := x.At(0, j)
		if c == 0 {
			continue
		}
		ok := true
		for i := 1; i < n; i++ {
			if x.At(i, j) != c {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// VCov returns the classical covariance matrix σ̂²(X'WX)⁻¹ (R's vcov(lm)).
func (f *Fit) VCov() *mat.SymDense {
	v := mat.NewSymDense(f.K, nil)
	v.ScaleSym(f.Sigma*f.Sigma, f.Bread)
	return v
}

// CoefTest is a t test of one coefficient with its confidence interval.
type CoefTest struct {
	Estimate float64
	StdError float64
	DF       float64 // degrees of freedom of the t reference distribution
	T        float64 // Estimate / StdError
	PValue   float64 // two-sided
	CILow    float64 // Estimate − t_{(1+level)/2, DF}·StdError
	CIHigh   float64
}

// TTest builds a CoefTest from an estimate, its standard error and the
// degrees of freedom of the t reference: T = est/se, two-sided p-value
// 2·P(T_df > |T|) and the interval est ± qt((1+level)/2, df)·se, as
// lmtest::coeftest/coefci and clubSandwich::conf_int compute them.
func TTest(est, se, df, level float64) CoefTest {
	t := est / se
	q := TQuantile((1+level)/2, df)
	return CoefTest{
		Estimate: est, StdError: se, DF: df, T: t,
		PValue: TTwoSided(t, df),
		CILow:  est - q*se, CIHigh: est + q*se,
	}
}

// CoefTest returns the classical t test of coefficient j with N − K degrees
// of freedom and a level (e.g. 0.95) confidence interval, as summary(lm) and
// confint(lm).
func (f *Fit) CoefTest(j int, level float64) CoefTest {
	se := f.Sigma * math.Sqrt(f.Bread.At(j, j))
	return TTest(f.Coef[j], se, float64(f.DFResid), level)
}
