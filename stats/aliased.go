package stats

import "math"

// AliasedColumns lists the columns of a design that are a linear
// combination of the columns before them, as R's glm finds them (a
// pivot-free decomposition in column order), from its cross-products X'X
// (k × k, row-major; only the upper triangle is read): column j is aliased
// when what is left of it after projecting on the kept columns before it
// has a squared length below 1e-9 of its own (or it has none).
func AliasedColumns(xx []float64, k int) []int {
	// Cholesky of the kept columns, column by column: l holds the rows of
	// L for the kept columns (in the order kept).
	var kept, aliased []int
	l := make([][]float64, 0, k)
	for j := 0; j < k; j++ {
		d := xx[j*k+j]
		r := make([]float64, len(kept)+1)
		for p, a := range kept {
			s := xx[a*k+j]
			for q := 0; q < p; q++ {
				s -= l[p][q] * r[q]
			}
			r[p] = s / l[p][p]
		}
		rest := d
		for q := range kept {
			rest -= r[q] * r[q]
		}
		if !(d > 0) || rest <= 1e-9*d {
			aliased = append(aliased, j)
			continue
		}
		r[len(kept)] = math.Sqrt(rest)
		kept = append(kept, j)
		l = append(l, r)
	}
	return aliased
}
