package stats

import (
	"slices"
	"testing"
)

// TestAliasedColumns: in X'X of columns 1, x, 2x+1, z, x+z (over four
// rows) the third and fifth are combinations of those before them; a
// column of zeros is aliased; X'X of independent columns has none.
func TestAliasedColumns(t *testing.T) {
	x, z := []float64{0, 1, 2, 5}, []float64{1, 0, 3, 1}
	cols := [][]float64{{1, 1, 1, 1}, x, make([]float64, 4), z, make([]float64, 4), make([]float64, 4)}
	for i := range 4 {
		cols[2][i], cols[4][i] = 2*x[i]+1, x[i]+z[i]
	}
	cross := func(cols [][]float64) []float64 {
		k := len(cols)
		xx := make([]float64, k*k)
		for a := range cols {
			for b := range cols {
				for i := range cols[a] {
					xx[a*k+b] += cols[a][i] * cols[b][i]
				}
			}
		}
		return xx
	}
	if got := AliasedColumns(cross(cols), 6); !slices.Equal(got, []int{2, 4, 5}) {
		t.Errorf("aliased %v, want [2 4 5]", got)
	}
	if got := AliasedColumns(cross([][]float64{cols[0], x, z}), 3); len(got) != 0 {
		t.Errorf("independent columns: aliased %v", got)
	}
}
