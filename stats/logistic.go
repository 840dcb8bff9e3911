package stats

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Logistic fits the logistic regression logit P(y=1) = Xβ by iteratively
// reweighted least squares, as stats::glm(y ~ X - 1, family = binomial)
// (glm.fit): starting values μ = (y + 1/2)/2, working response
// z = η + (y − μ)/(μ(1−μ)), working weights μ(1−μ), each step a QR weighted
// least-squares fit, stopping when |D − D_old|/(|D| + 0.1) < 1e-10 (glm's
// rule with a tighter ε than its 1e-8). It returns β̂, the fitted
// probabilities and the deviance D = −2 Σ [y log μ + (1−y) log(1−μ)].
//
// Preconditions: y is 0/1 with both values present, X has full column rank
// (put a column of ones in X for an intercept). Errors: rank deficiency,
// fitted probabilities of 0 or 1 (separation) and non-convergence within
// 100 iterations.
func Logistic(x *mat.Dense, y []float64) (coef []float64, fitted []float64, deviance float64, err error) {
	n, _ := x.Dims()
	if len(y) != n {
		return nil, nil, 0, fmt.Errorf("logistic: y has %d values for %d rows", len(y), n)
	}
	var ones int
	for i, v := range y {
		if v != 0 && v != 1 {
			return nil, nil, 0, fmt.Errorf("logistic: y[%d] = %v, need 0 or 1", i, v)
		}
		ones += int(v)
	}
	if ones == 0 || ones == n {
		return nil, nil, 0, errors.New("logistic: y has no variation")
	}
	mu := make([]float64, n)
	eta := make([]float64, n)
	for i := range y {
		mu[i] = (y[i] + 0.5) / 2
		eta[i] = math.Log(mu[i] / (1 - mu[i]))
	}
	dev := binomialDeviance(y, mu)
	z := make([]float64, n)
	w := make([]float64, n)
	const maxIter = 100
	for iter := 0; iter < maxIter; iter++ {
		for i := range y {
			v := mu[i] * (1 - mu[i])
			z[i] = eta[i] + (y[i]-mu[i])/v
			w[i] = v
		}
		fit, err := OLS(x, z, w)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("logistic: iteration %d: %w", iter+1, err)
		}
		coef = fit.Coef
		for i := range y {
			eta[i] = fit.Fitted[i]
			mu[i] = 1 / (1 + math.Exp(-eta[i]))
			if mu[i] < 1e-14 || mu[i] > 1-1e-14 {
				return nil, nil, 0, errors.New("logistic: fitted probabilities of 0 or 1 (separation)")
			}
		}
		devNew := binomialDeviance(y, mu)
		if math.Abs(devNew-dev)/(math.Abs(devNew)+0.1) < 1e-10 {
			return coef, mu, devNew, nil
		}
		dev = devNew
	}
	return nil, nil, 0, fmt.Errorf("logistic: no convergence in %d iterations", maxIter)
}

func binomialDeviance(y, mu []float64) float64 {
	d := 0.0
	for i, v := range y {
		if v == 1 {
			d -= 2 * math.Log(mu[i])
		} else {
			d -= 2 * math.Log(1-mu[i])
		}
	}
	return d
}
