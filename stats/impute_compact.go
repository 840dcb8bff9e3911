package stats

import "slices"

// Helpers for the compact sets of ImputeMultilevelCompact (rows, ascending,
// and values[c][r] the value of column c in row rows[r]).

// Completed returns full completed columns: copies of cols (the columns
// given to the imputer) with values written at rows.
func Completed(cols [][]float64, rows []int, values [][]float64) [][]float64 {
	out := make([][]float64, len(cols))
	for c, col := range cols {
		out[c] = slices.Clone(col)
		for r, i := range rows {
			out[c][i] = values[c][r]
		}
	}
	return out
}

// Positions gives each row of sub, all of which are in rows (ascending),
// its index in rows, so that values[c][Positions(rows, sub)[s]] is the
// value of row sub[s].
func Positions(rows, sub []int) []int32 {
	pos := make([]int32, len(sub))
	for s, i := range sub {
		p, _ := slices.BinarySearch(rows, i)
		pos[s] = int32(p)
	}
	return pos
}
