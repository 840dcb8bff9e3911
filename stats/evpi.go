package stats

import "math"

// EVPIT is the expected value of perfect information per person for a
// decision on the sign of an incremental net benefit whose uncertainty is
// mean + se·T, T Student's t with df degrees of freedom:
//
//	EVPI = E[max(INB, 0)] − max(E[INB], 0)
//	     = μ·F(d) + σ·(df + d²)/(df − 1)·f(d) − max(μ, 0),  d = μ/σ,
//
// F and f the t distribution's CDF and density (E[T; T > −d] =
// (df + d²)/(df − 1)·f(d)). As df grows it becomes the normal
// μΦ(d) + σφ(d) − max(μ, 0). NaN when se is not above 0, df is not above
// 1 (the t has no mean) or an input is not finite; +Inf df gives the
// normal.
func EVPIT(mean, se, df float64) float64 {
	if math.IsNaN(mean) || math.IsInf(mean, 0) || !(se > 0) || math.IsInf(se, 0) || !(df > 1) {
		return math.NaN()
	}
	d := mean / se
	var cdf, tail float64
	if math.IsInf(df, 1) {
		cdf = 0.5 * math.Erfc(-d/math.Sqrt2)
		tail = math.Exp(-d*d/2) / math.Sqrt(2*math.Pi)
	} else {
		p := TTwoSided(d, df) / 2
		cdf = p
		if d >= 0 {
			cdf = 1 - p
		}
		lg1, _ := math.Lgamma((df + 1) / 2)
		lg0, _ := math.Lgamma(df / 2)
		dens := math.Exp(lg1-lg0-0.5*math.Log(df*math.Pi)) * math.Pow(1+d*d/df, -(df+1)/2)
		tail = (df + d*d) / (df - 1) * dens
	}
	return max(mean*cdf+se*tail-max(mean, 0), 0)
}

// EVPISample is the expected value of perfect information per person from
// draws of the incremental net benefit (bootstrap replicates):
// mean(max(x_b, 0)) − max(mean(x_b), 0). NaN for no draws.
func EVPISample(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	var m, pos float64
	for _, v := range x {
		m += v
		pos += max(v, 0)
	}
	m /= float64(len(x))
	pos /= float64(len(x))
	return max(pos-max(m, 0), 0)
}
