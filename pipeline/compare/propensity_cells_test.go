package compare

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPropensityAliasedCells: on the cell route (every row its own
// pattern, a continuous y_baseline last) the cells rebuild each pattern's
// model row exactly, and the columns found aliased from the cells' sums
// are those found from the rows' sums — for a design of full rank, one
// with a dummy equal to a 0/1 covariate, and one whose y_baseline is a
// combination of the cell columns.
func TestPropensityAliasedCells(t *testing.T) {
	const n = 6000
	rng := rand.New(rand.NewPCG(14, 2))
	codes := make([]int32, n)
	alone, yCont, yAliased, copyDummy := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		codes[i] = int32(rng.IntN(3))
		alone[i] = float64(rng.IntN(2))
		yCont[i] = 10*rng.Float64() + 0.1*float64(codes[i])
		yAliased[i] = 0.3 + 1.7*alone[i]
		if codes[i] == 2 {
			copyDummy[i] = 1
		}
	}
	cat := propCov{name: "ethnicity", codes: codes, levels: []int32{0, 1, 2}, names: []string{"a", "b", "c"}}
	num := func(name string, x []float64) propCov {
		return propCov{name: name, x: x, inModel: true, binary: name != "y_baseline"}
	}
	pos := []int{-1, 0, 1}
	cases := []struct {
		name    string
		covs    []propCov
		aliased []int
	}{
		{"full rank", []propCov{cat, num("living_alone", alone), num("y_baseline", yCont)}, nil},
		{"dummy copy", []propCov{cat, num("living_alone", copyDummy), num("y_baseline", yCont)}, []int{3}},
		{"baseline aliased", []propCov{cat, num("living_alone", alone), num("y_baseline", yAliased)}, []int{4}},
	}
	for _, tc := range cases {
		levelPos := make([][]int, len(tc.covs))
		levelPos[0] = pos
		k := 1 + modelWidth(tc.covs)
		g := &patternGroups{first: make([]int32, n), trials: make([]float64, n), ones: make([]float64, n), pat: make([]int32, n)}
		for i := range n {
			g.first[i], g.pat[i], g.trials[i] = int32(i), int32(i), 1
			g.ones[i] = float64(i % 2)
		}
		cells := groupCells(g, tc.covs, levelPos, k)
		if cells == nil {
			t.Fatalf("%s: no cells from %d patterns", tc.name, n)
		}
		buf := make([]float64, k)
		for p, i := range g.first {
			modelRow(tc.covs, levelPos, int(i), buf)
			got := append(slices.Clone(cells.cells[cells.cellOf[p]]), cells.y[p])
			if !slices.Equal(got, buf) {
				t.Fatalf("%s: pattern %d: cells give %v, the model row is %v", tc.name, p, got, buf)
			}
		}
		if len(cells.cells) > 12 {
			t.Errorf("%s: %d cells, want at most 3 × 2 × 2", tc.name, len(cells.cells))
		}
		fromCells := propensityAliased(tc.covs, levelPos, n, k, g, cells)
		fromRows := propensityAliased(tc.covs, levelPos, n, k, nil, nil)
		if !slices.Equal(fromCells, fromRows) || !slices.Equal(fromRows, tc.aliased) {
			t.Errorf("%s: aliased %v from the cells, %v from the rows, want %v", tc.name, fromCells, fromRows, tc.aliased)
		}
	}
}
