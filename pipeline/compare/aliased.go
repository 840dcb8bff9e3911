package compare

import (
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/stats"
)

// suffAliased reports whether the OLS fit of the sums drops a column as
// aliased (the mixed model and the wild bootstrap then take the dense
// route, which drops it and names it).
func suffAliased(sums *stats.ClusterSums) bool {
	fit, err := stats.SuffOLS(sums)
	return err == nil && len(fit.Aliased) > 0
}

// dropAliased returns x without the columns that are linear combinations
// of the columns before them (R's lm and lme4 drop the later column of a
// dependent set; the intercept and the term come first), and the dropped
// columns' indices; x itself when none is.
func dropAliased(x *mat.Dense) (*mat.Dense, []int) {
	n, k := x.Dims()
	var basis [][]float64
	var kept, aliased []int
	for c := 0; c < k; c++ {
		v := mat.Col(nil, c, x)
		norm0 := floatsNorm(v)
		for _, q := range basis {
			floatsAddScaled(v, -floatsDot(q, v), q)
		}
		nv := floatsNorm(v)
		if norm0 == 0 || nv <= 1e-9*math.Max(norm0, 1) {
			aliased = append(aliased, c)
			continue
		}
		for i := range v {
			v[i] /= nv
		}
		basis = append(basis, v)
		kept = append(kept, c)
	}
	if len(aliased) == 0 {
		return x, nil
	}
	out := mat.NewDense(max(n, 1), len(kept), nil)
	for j, c := range kept {
		for i := 0; i < n; i++ {
			out.Set(i, j, x.At(i, c))
		}
	}
	return out, aliased
}
