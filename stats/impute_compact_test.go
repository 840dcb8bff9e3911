package stats

import (
	"math"
	"slices"
	"testing"
)

// TestImputeCompactHelpers: Completed writes the compact values into
// copies of the columns (the columns themselves unchanged), and Positions
// finds each row of a subset in the incomplete rows.
func TestImputeCompactHelpers(t *testing.T) {
	nan := math.NaN()
	cols := [][]float64{{1, nan, 3, nan, 5}, {nan, 2, nan, 4, 5}}
	rows := []int{0, 1, 2, 3}
	values := [][]float64{{1, 20, 3, 40}, {10, 2, 30, 4}}
	got := Completed(cols, rows, values)
	want := [][]float64{{1, 20, 3, 40, 5}, {10, 2, 30, 4, 5}}
	for c := range want {
		if !slices.Equal(got[c], want[c]) {
			t.Errorf("column %d: %v, want %v", c, got[c], want[c])
		}
	}
	if !math.IsNaN(cols[0][1]) || !math.IsNaN(cols[1][0]) {
		t.Error("Completed changed the columns it was given")
	}
	if p := Positions([]int{2, 5, 9, 11, 40}, []int{11, 2, 40}); !slices.Equal(p, []int32{3, 0, 4}) {
		t.Errorf("positions %v, want [3 0 4]", p)
	}
}
