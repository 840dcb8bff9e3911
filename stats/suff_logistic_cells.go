package stats

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// LogisticCells is LogisticPatterns for a model whose last column is one
// numeric covariate and whose other columns take few distinct rows (the
// intercept, dummies of categorical covariates, 0/1 covariates): the
// "cells". Pattern p has the cell row cells[cellOf[p]] (K−1 values), the
// covariate y[p], trials[p] rows and ones[p] of them with y = 1. With a
// continuous covariate nearly every row is its own pattern, and a
// Householder QR of the P × K pattern matrix at every IRLS step is most of
// the fit; here each step is one pass over the patterns and a QR of C + 1
// rows (C cells), with the same iterations and stopping rule.
//
// The step is exact algebra, not an approximation: within cell c, with the
// working weights w_p, responses z_p and the weighted means ȳ_c, z̄_c,
//
//	Σ_p w_p (z_p − x_c'β − b·y_p)² = W_c (z̄_c − x_c'β − b·ȳ_c)² + Szz_c − 2b·Syz_c + b²·Syy_c
//
// (W_c = Σ w_p, Syy_c = Σ w_p (y_p − ȳ_c)², Syz_c likewise, the cross term
// vanishing because weighted deviations from the means sum to zero). The
// weighted least squares over the patterns is therefore the one over C rows
// [x_c, ȳ_c] with weights W_c and responses z̄_c, plus the row [0, …, 0, 1]
// with weight S = Σ_c Syy_c and response T/S (T = Σ_c Syz_c), since
// b²S − 2bT = S(b − T/S)² − T²/S. The means and centred sums are
// accumulated by West's (1979) weighted updates, so no sum of squares is
// taken about zero. The column norms of that small design equal the full
// design's (Σ W_c x_c² = Σ w_p x_p², Σ W_c ȳ_c² + S = Σ w_p y_p²), so the
// rank check is LogisticPatterns'.
//
// It returns β̂ (the cells' columns, then the covariate's), the fitted
// probability of each pattern and the deviance. Errors as LogisticPatterns.
func LogisticCells(cells [][]float64, cellOf []int32, y, trials, ones []float64) (coef, fitted []float64, deviance float64, err error) {
	P, C := len(cellOf), len(cells)
	if len(y) != P || len(trials) != P || len(ones) != P {
		return nil, nil, 0, fmt.Errorf("logistic: %d patterns with %d covariate values, %d trial counts, %d success counts", P, len(y), len(trials), len(ones))
	}
	if C == 0 {
		return nil, nil, 0, errors.New("logistic: no cells")
	}
	kc := len(cells[0])
	k := kc + 1
	for c, row := range cells {
		if len(row) != kc {
			return nil, nil, 0, fmt.Errorf("logistic: cell %d has %d columns, cell 0 %d", c, len(row), kc)
		}
	}
	var sOnes, n float64
	for p := range trials {
		t, s := trials[p], ones[p]
		if !(t >= 1) || !(s >= 0) || s > t {
			return nil, nil, 0, fmt.Errorf("logistic: pattern %d: %v ones of %v trials", p, s, t)
		}
		if c := cellOf[p]; c < 0 || int(c) >= C {
			return nil, nil, 0, fmt.Errorf("logistic: pattern %d: cell %d of %d", p, c, C)
		}
		if math.IsNaN(y[p]) || math.IsInf(y[p], 0) {
			return nil, nil, 0, fmt.Errorf("logistic: pattern %d: covariate is %v", p, y[p])
		}
		sOnes += s
		n += t
	}
	if sOnes == 0 || sOnes == n {
		return nil, nil, 0, errors.New("logistic: y has no variation")
	}
	if C+1 < k {
		return nil, nil, 0, fmt.Errorf("logistic: %d cells for %d coefficients: design matrix is rank deficient", C, k)
	}
	// The small design: a row per cell, then the covariate's row.
	x := mat.NewDense(C+1, k, nil)
	for c, row := range cells {
		copy(x.RawRowView(c), row)
	}
	x.Set(C, k-1, 1)
	zs, ws := make([]float64, C+1), make([]float64, C+1)
	sumW, meanY, meanZ := make([]float64, C), make([]float64, C), make([]float64, C)
	mu := make([]float64, P)
	a := make([]float64, C) // x_c'β of each cell
	// The step's sums: West's weighted update of each cell's means and of
	// the centred sums (pooled over cells: only their totals enter), from
	// pattern p's working weight w and response z.
	var syy, syz float64
	update := func(p int, c int32, w, z float64) {
		sumW[c] += w
		r := w / sumW[c]
		dy := y[p] - meanY[c]
		dz := z - meanZ[c]
		meanY[c] += r * dy
		meanZ[c] += r * dz
		syy += w * dy * (y[p] - meanY[c])
		syz += w * dy * (z - meanZ[c])
	}
	// The first step's working weights and responses follow from glm's
	// starting values for each of a pattern's rows (μ = 3/4 for y = 1, 1/4
	// for y = 0: weight 3/16, response ±(log 3 + 4/3)).
	const w0 = 3.0 / 16
	z1 := math.Log(3) + 4.0/3
	dev := 0.0
	for p, c := range cellOf {
		s, t := ones[p], trials[p]
		dev -= 2 * t * math.Log(0.75)
		update(p, c, t*w0, (s*z1-(t-s)*z1)/t)
	}
	const maxIter = 100
	qr := &weightedQR{}
	for iter := 0; iter < maxIter; iter++ {
		for c := range cells {
			x.Set(c, k-1, meanY[c])
			ws[c], zs[c] = sumW[c], meanZ[c]
		}
		ws[C], zs[C] = syy, 0
		if syy > 0 {
			zs[C] = syz / syy
		}
		beta, err := qr.solve(x, zs, ws)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("logistic: iteration %d: %w", iter+1, err)
		}
		coef = beta
		for c, row := range cells {
			e := 0.0
			for j, v := range row {
				e += v * beta[j]
			}
			a[c] = e
		}
		b := beta[k-1]
		// One pass: the fitted values and deviance of this step and the
		// sums of the next (unused when this step converges).
		clear(sumW)
		clear(meanY)
		clear(meanZ)
		syy, syz = 0, 0
		devNew := 0.0
		for p, c := range cellOf {
			e := a[c] + b*y[p]
			m := 1 / (1 + math.Exp(-e))
			if m < 1e-14 || m > 1-1e-14 {
				return nil, nil, 0, errors.New("logistic: fitted probabilities of 0 or 1 (separation)")
			}
			mu[p] = m
			s, t := ones[p], trials[p]
			if s > 0 {
				devNew -= 2 * s * math.Log(m)
			}
			if t > s {
				devNew -= 2 * (t - s) * math.Log(1-m)
			}
			v := m * (1 - m)
			update(p, c, t*v, e+(s/t-m)/v)
		}
		if math.Abs(devNew-dev)/(math.Abs(devNew)+0.1) < 1e-10 {
			return coef, mu, devNew, nil
		}
		dev = devNew
	}
	return nil, nil, 0, fmt.Errorf("logistic: no convergence in %d iterations", maxIter)
}
