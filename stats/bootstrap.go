package stats

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// WildConfig configures WildClusterBootstrap.
type WildConfig struct {
	// Draws is the number of bootstrap replications B (9,999 in the cpi
	// analysis plan).
	Draws int
	// Level is the confidence level of the interval obtained by test
	// inversion, e.g. 0.95; 0 skips the interval (CILow and CIHigh are NaN).
	Level float64
}

// WildResult is the outcome of a wild cluster bootstrap-t test of one
// coefficient.
type WildResult struct {
	Estimate float64 // β̂_j from the unrestricted fit
	StdError float64 // its CR1 standard error
	T        float64 // β̂_j / StdError
	PValue   float64 // symmetric bootstrap p-value: share of |t*| ≥ |t|
	CILow    float64 // test-inversion interval, NaN when not computed or not found
	CIHigh   float64
	Draws    int
}

// webb holds Webb's (2014, Queen's Economics WP 1315) six-point
// distribution: ±√(1/2), ±1, ±√(3/2), each with probability 1/6.
var webb = [6]float64{-math.Sqrt(1.5), -1, -math.Sqrt(0.5), math.Sqrt(0.5), 1, math.Sqrt(1.5)}

// WildClusterBootstrap tests H0: β_j = 0 in the (weighted) least-squares
// model y = Xβ + e with the wild cluster restricted bootstrap-t (WCR; Cameron,
// Gelbach & Miller 2008, REStat 90:414; MacKinnon & Webb 2017; Roodman et al.
// 2019, Stata J 19:4 — boottest/fwildclusterboot's default "WCR" with Webb
// weights).
//
// The null is imposed: the restricted model without column j gives fitted
// values X̃β̃ and residuals ũ; each replication draws one Webb weight v_g per
// cluster, forms y* = X̃β̃ + v_g·ũ_g, refits the full model and computes
// t* = β*_j / se_CR1(β*_j). The statistic in the data is t = β̂_j/se_CR1(β̂_j)
// with the CR1 standard error of VCovCR1 (the G/(G−1)·(N−1)/(N−K) factor
// cancels in the comparison). The p-value is the share of the Draws
// replications with |t*| ≥ |t| (boottest's symmetric p-value). Replications
// are computed from K- and G-dimensional cluster summaries, O(G²) per draw,
// never refitting the N rows.
//
// With cfg.Level > 0 the interval is found by test inversion, as boottest
// does: for a null value δ the same draws are reused with y − δx_j, giving a
// p-value p(δ); the limits are the points on either side of β̂_j where p(δ)
// falls to 1 − Level, located by bisection between β̂_j (where p = 1) and the
// first δ, stepping outwards in doubling multiples of the CR1 standard
// error, with p(δ) < 1 − Level. A limit that cannot be bracketed within 2⁴⁰
// standard errors is NaN. p(δ) is a step function and need not be monotone,
// so the limits are crossing points, not unique roots.
//
// Every draw comes from rng. Preconditions: at least two clusters, j a
// valid column, Draws ≥ 1; w nil for OLS or positive weights (WLS).
func WildClusterBootstrap(x *mat.Dense, y, w []float64, cluster []int, j int, cfg WildConfig, rng *rand.Rand) (WildResult, error) {
	n, k := x.Dims()
	if j < 0 || j >= k {
		return WildResult{}, fmt.Errorf("wild bootstrap: column %d out of range [0, %d)", j, k)
	}
	if cfg.Draws < 1 {
		return WildResult{}, fmt.Errorf("wild bootstrap: %d draws", cfg.Draws)
	}
	if rng == nil {
		return WildResult{}, errors.New("wild bootstrap: nil random source")
	}
	full, err := OLS(x, y, w)
	if err != nil {
		return WildResult{}, fmt.Errorf("wild bootstrap: %w", err)
	}
	cs, err := newClusterSums(full, cluster)
	if err != nil {
		return WildResult{}, fmt.Errorf("wild bootstrap: %w", err)
	}
	G := cs.g
	v1 := full.vcovCR1(cs)
	se := math.Sqrt(v1.At(j, j))
	res := WildResult{Estimate: full.Coef[j], StdError: se, T: full.Coef[j] / se, Draws: cfg.Draws, CILow: math.NaN(), CIHigh: math.NaN()}
	if !(se > 0) {
		return res, errors.New("wild bootstrap: CR1 standard error is zero")
	}

	// Restricted residuals ũ(δ) = u0 − δ·u1: u0 from y on X̃, u1 from x_j on X̃.
	u0, u1 := make([]float64, n), make([]float64, n)
	xj := mat.Col(nil, j, x)
	if k == 1 {
		copy(u0, y)
		copy(u1, xj)
	} else {
		keep := make([]int, 0, k-1)
		for c := 0; c < k; c++ {
			if c != j {
				keep = append(keep, c)
			}
		}
		xr := mat.NewDense(n, k-1, nil)
		for c, src := range keep {
			xr.SetCol(c, mat.Col(nil, src, x))
		}
		r0, err := OLS(xr, y, w)
		if err != nil {
			return res, fmt.Errorf("wild bootstrap: restricted model: %w", err)
		}
		r1, err := OLS(xr, xj, w)
		if err != nil {
			return res, fmt.Errorf("wild bootstrap: restricted model: %w", err)
		}
		copy(u0, r0.Resid)
		copy(u1, r1.Resid)
	}
	// d_g = X_g'W_g ũ_g (affine in δ), c_g = M d_g.
	raw := x.RawMatrix()
	d0 := make([][]float64, G)
	d1 := make([][]float64, G)
	for c := range d0 {
		d0[c] = make([]float64, k)
		d1[c] = make([]float64, k)
	}
	for i := 0; i < n; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+k]
		c := cs.codes[i]
		wi := weightAt(w, i)
		for a, v := range row {
			d0[c][a] += wi * v * u0[i]
			d1[c][a] += wi * v * u1[i]
		}
	}
	xwx := make([]*mat.SymDense, G)
	for c := range xwx {
		xwx[c] = cs.XWX(c)
	}
	return wildFromSums(res, full.Coef, full.Bread, xwx, d0, d1, n, j, cfg, rng), nil
}

// wildFromSums is the bootstrap of WildClusterBootstrap from the cluster
// summaries: res holds the estimate and its CR1 standard error, coef the
// unrestricted coefficients, M = (X'WX)⁻¹, xwx the per-cluster X_g'W_gX_g
// and d0, d1 the per-cluster X_g'W_gũ_g of the restricted residuals of y and
// of x_j. The streaming fit (SuffWildClusterBootstrap) shares it.
func wildFromSums(res WildResult, coef []float64, M *mat.SymDense, xwx []*mat.SymDense, d0, d1 [][]float64, n, j int, cfg WildConfig, rng *rand.Rand) WildResult {
	k := M.SymmetricDim()
	G := len(xwx)
	se := res.StdError
	mj := mat.NewVecDense(k, nil) // row j of M
	for a := 0; a < k; a++ {
		mj.SetVec(a, M.At(j, a))
	}
	q := make([]*mat.VecDense, G) // q_g = X_g'W_gX_g m_j
	for c := 0; c < G; c++ {
		q[c] = mat.NewVecDense(k, nil)
		q[c].MulVec(xwx[c], mj)
	}
	// e_h = m_j'd_h, Q_gh = q_g'M d_h, both affine in δ.
	e0, e1 := make([]float64, G), make([]float64, G)
	Q0, Q1 := make([]float64, G*G), make([]float64, G*G)
	for h := 0; h < G; h++ {
		c0 := mat.NewVecDense(k, nil)
		c0.MulVec(M, mat.NewVecDense(k, d0[h]))
		c1 := mat.NewVecDense(k, nil)
		c1.MulVec(M, mat.NewVecDense(k, d1[h]))
		e0[h], e1[h] = c0.AtVec(j), c1.AtVec(j)
		for g := 0; g < G; g++ {
			Q0[g*G+h] = mat.Dot(q[g], c0)
			Q1[g*G+h] = mat.Dot(q[g], c1)
		}
	}
	adj := float64(G) / float64(G-1) * float64(n-1) / float64(n-k)

	draws := make([]float64, cfg.Draws*G)
	for i := range draws {
		draws[i] = webb[rng.IntN(6)]
	}
	// Each draw's numerator and the G terms of its sum of squares are
	// affine in δ: num = num0 − δ·num1, s_g = s0_g − δ·s1_g, computed once
	// so that each δ of the interval's search costs O(draws·G), not
	// O(draws·G²). At δ = 0 the sums are those of the direct formula. s0
	// takes the place of the draws, draw by draw.
	num0, num1 := make([]float64, cfg.Draws), make([]float64, cfg.Draws)
	s0, s1, a0 := draws, make([]float64, cfg.Draws*G), make([]float64, G)
	for b := 0; b < cfg.Draws; b++ {
		v := draws[b*G : (b+1)*G]
		for h, vh := range v {
			num0[b] += vh * e0[h]
			num1[b] += vh * e1[h]
		}
		for g, vg := range v {
			s, t := vg*e0[g], vg*e1[g]
			q0, q1 := Q0[g*G:(g+1)*G], Q1[g*G:(g+1)*G]
			for h, vh := range v {
				s -= q0[h] * vh
				t -= q1[h] * vh
			}
			a0[g], s1[b*G+g] = s, t
		}
		copy(s0[b*G:], a0)
	}
	pvalue := func(delta float64) float64 {
		t := math.Abs((coef[j] - delta) / se)
		count := 0
		for b := 0; b < cfg.Draws; b++ {
			num := num0[b] - delta*num1[b]
			var ss float64
			for g, a := range s0[b*G : (b+1)*G] {
				s := a - delta*s1[b*G+g]
				ss += s * s
			}
			if math.Abs(num)/math.Sqrt(adj*ss) >= t {
				count++
			}
		}
		return float64(count) / float64(cfg.Draws)
	}
	res.PValue = pvalue(0)
	if cfg.Level <= 0 {
		return res
	}
	alpha := 1 - cfg.Level
	limit := func(sign float64) float64 {
		inside := res.Estimate
		step := se
		outside := math.NaN()
		for i := 0; i < 40; i++ {
			cand := res.Estimate + sign*step
			if pvalue(cand) < alpha {
				outside = cand
				break
			}
			inside = cand
			step *= 2
		}
		if math.IsNaN(outside) {
			return math.NaN()
		}
		for i := 0; i < 100 && math.Abs(outside-inside) > 1e-10*se; i++ {
			mid := (inside + outside) / 2
			if pvalue(mid) < alpha {
				outside = mid
			} else {
				inside = mid
			}
		}
		return (inside + outside) / 2
	}
	res.CILow = limit(-1)
	res.CIHigh = limit(1)
	return res
}
