package stats

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// PatternCounts accumulates the rows of a logistic model by covariate
// pattern: for every distinct row x it keeps the number of rows (trials)
// and of rows with y = 1 (successes). With categorical covariates the
// number of patterns P is the number of level combinations present,
// whatever the number of rows; memory is O(P·K). A continuous covariate
// makes nearly every row its own pattern, which is correct but no smaller.
type PatternCounts struct {
	k      int
	index  map[string]int
	x      [][]float64
	trials []float64
	ones   []float64
	key    []byte
	rows   int
}

// NewPatternCounts returns empty counts for rows of k covariates (put the
// intercept's column of ones in x as for Logistic).
func NewPatternCounts(k int) (*PatternCounts, error) {
	if k < 1 {
		return nil, fmt.Errorf("pattern counts: %d columns", k)
	}
	return &PatternCounts{k: k, index: make(map[string]int), key: make([]byte, 8*k)}, nil
}

// Add counts one row (x, y), y 0 or 1, and returns the number of its
// pattern (0, 1, … in order of first appearance), with which the caller
// maps the fitted probabilities back to rows.
func (p *PatternCounts) Add(x []float64, y float64) (int, error) {
	if len(x) != p.k {
		return 0, fmt.Errorf("pattern counts: row has %d values for %d columns", len(x), p.k)
	}
	if y != 0 && y != 1 {
		return 0, fmt.Errorf("pattern counts: row %d: y = %v, need 0 or 1", p.rows, y)
	}
	for j, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("pattern counts: row %d: x[%d] is %v", p.rows, j, v)
		}
		if v == 0 {
			v = 0 // −0 and +0 are one pattern
		}
		binary.LittleEndian.PutUint64(p.key[8*j:], math.Float64bits(v))
	}
	c, ok := p.index[string(p.key)]
	if !ok {
		c = len(p.x)
		p.index[string(p.key)] = c
		p.x = append(p.x, append([]float64(nil), x...))
		p.trials = append(p.trials, 0)
		p.ones = append(p.ones, 0)
	}
	p.trials[c]++
	p.ones[c] += y
	p.rows++
	return c, nil
}

// AddRows counts trials rows of pattern x, ones of them with y = 1, as
// that many calls of Add would (trials and ones whole numbers, 1 ≤ trials,
// 0 ≤ ones ≤ trials): for a caller that has grouped its rows itself. It
// returns the pattern's number.
func (p *PatternCounts) AddRows(x []float64, trials, ones float64) (int, error) {
	if !(trials >= 1) || trials != math.Trunc(trials) || trials > 1<<53 {
		return 0, fmt.Errorf("pattern counts: %v trials, need a whole number ≥ 1", trials)
	}
	if !(ones >= 0) || ones > trials || ones != math.Trunc(ones) {
		return 0, fmt.Errorf("pattern counts: %v ones of %v trials", ones, trials)
	}
	y := 0.0
	if ones > 0 {
		y = 1
	}
	c, err := p.Add(x, y)
	if err != nil {
		return 0, err
	}
	p.trials[c] += trials - 1
	p.ones[c] += ones - y
	p.rows += int(trials) - 1
	return c, nil
}

// Len returns the number of patterns.
func (p *PatternCounts) Len() int { return len(p.x) }

// LogisticPatterns is Logistic (stats::glm(y ~ X - 1, family = binomial))
// fitted from the pattern counts instead of the rows, with the same
// iterations: rows of one pattern share η and μ, so glm.fit's weighted
// least-squares step over the rows, with working weights μ(1−μ) and
// responses z = η + (y − μ)/(μ(1−μ)), equals a step over the patterns with
// weights n_pμ_p(1−μ_p) and responses η_p + (s_p/n_p − μ_p)/(μ_p(1−μ_p))
// (n_p trials, s_p successes; the grouped binomial IRLS of McCullagh &
// Nelder 1989, §4.4). The first step starts, as glm does, from
// μ = (y + 1/2)/2 row by row: weight 3/16 for every row and the pattern's
// mean of the rows' working responses ±(log 3 + 4/3). The deviance is that
// of the rows, −2 Σ_p [s_p log μ_p + (n_p − s_p) log(1 − μ_p)], and the
// stopping rule Logistic's. Each step is a Householder QR of the P×K
// pattern matrix. It returns β̂, the fitted probability of each pattern
// and the deviance.
//
// Preconditions and errors as Logistic: both outcomes present, full column
// rank, no separation, convergence within 100 iterations.
func LogisticPatterns(p *PatternCounts) (coef []float64, fitted []float64, deviance float64, err error) {
	P, k := len(p.x), p.k
	var ones, n float64
	for i := range p.trials {
		ones += p.ones[i]
		n += p.trials[i]
	}
	if ones == 0 || ones == n {
		return nil, nil, 0, errors.New("logistic: y has no variation")
	}
	if P < k {
		return nil, nil, 0, fmt.Errorf("logistic: %d covariate patterns for %d coefficients: design matrix is rank deficient", P, k)
	}
	x := mat.NewDense(P, k, nil)
	for i, row := range p.x {
		x.SetRow(i, row)
	}
	z := make([]float64, P)
	w := make([]float64, P)
	mu := make([]float64, P)
	eta := make([]float64, P)
	dev := 0.0
	const w0 = 3.0 / 16 // μ(1−μ) at μ = 1/4 or 3/4
	z1 := math.Log(3) + 4.0/3
	for i := range z {
		s, t := p.ones[i], p.trials[i]
		w[i] = t * w0
		z[i] = (s*z1 - (t-s)*z1) / t
		// The deviance at the start, as Logistic: every row has
		// μ = 3/4 (y = 1) or 1/4 (y = 0), so each contributes −2 log(3/4).
		dev -= 2 * t * math.Log(0.75)
	}
	const maxIter = 100
	ws := &weightedQR{}
	for iter := 0; iter < maxIter; iter++ {
		if iter > 0 {
			for i := range z {
				v := mu[i] * (1 - mu[i])
				w[i] = p.trials[i] * v
				z[i] = eta[i] + (p.ones[i]/p.trials[i]-mu[i])/v
			}
		}
		beta, err := ws.solve(x, z, w)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("logistic: iteration %d: %w", iter+1, err)
		}
		coef = beta
		for i := range eta {
			e := 0.0
			for j, v := range p.x[i] {
				e += v * beta[j]
			}
			eta[i] = e
			mu[i] = 1 / (1 + math.Exp(-e))
			if mu[i] < 1e-14 || mu[i] > 1-1e-14 {
				return nil, nil, 0, errors.New("logistic: fitted probabilities of 0 or 1 (separation)")
			}
		}
		devNew := 0.0
		for i := range mu {
			s, t := p.ones[i], p.trials[i]
			if s > 0 {
				devNew -= 2 * s * math.Log(mu[i])
			}
			if t > s {
				devNew -= 2 * (t - s) * math.Log(1-mu[i])
			}
		}
		if math.Abs(devNew-dev)/(math.Abs(devNew)+0.1) < 1e-10 {
			return coef, mu, devNew, nil
		}
		dev = devNew
	}
	return nil, nil, 0, fmt.Errorf("logistic: no convergence in %d iterations", maxIter)
}

// weightedQR solves min Σ wᵢ(zᵢ − xᵢ'β)² by a QR of W^{1/2}X with OLS's rank
// check, allowing as many rows as columns. Its matrices are kept from one
// IRLS step to the next (the same arithmetic, without allocating the P×K
// matrices again at every step).
type weightedQR struct {
	a, b, r, beta mat.Dense
	qr            mat.QR
	colNorm       []float64
}

func (ws *weightedQR) solve(x *mat.Dense, z, w []float64) ([]float64, error) {
	n, k := x.Dims()
	if ws.a.IsEmpty() {
		ws.a.ReuseAs(n, k)
		ws.b.ReuseAs(n, 1)
		ws.colNorm = make([]float64, k)
	}
	a, b, colNorm := &ws.a, &ws.b, ws.colNorm
	clear(colNorm)
	for i := 0; i < n; i++ {
		s := math.Sqrt(w[i])
		for j := 0; j < k; j++ {
			v := s * x.At(i, j)
			a.Set(i, j, v)
			colNorm[j] += v * v
		}
		b.Set(i, 0, s*z[i])
	}
	qr := &ws.qr
	qr.Factorize(a)
	r := &ws.r
	r.Reset()
	qr.RTo(r)
	for j := 0; j < k; j++ {
		if colNorm[j] == 0 || math.Abs(r.At(j, j)) < rankTol*math.Sqrt(colNorm[j]) {
			return nil, fmt.Errorf("design matrix is rank deficient: column %d is zero or a linear combination of the columns before it", j)
		}
	}
	beta := &ws.beta
	beta.Reset()
	if err := qr.SolveTo(beta, false, b); err != nil {
		return nil, err
	}
	return mat.Col(nil, 0, beta), nil
}
