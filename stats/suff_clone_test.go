package stats

import (
	"math/rand/v2"
	"testing"
)

// TestClusterSumsClone: sums of rows A, cloned, then rows B added to the
// clone give exactly the fit of sums built from A then B (the same order of
// addition per cluster, so bit for bit, weighted and unweighted, across
// the 512-row block boundary); adding to the clone leaves the original's
// fit as it was; CopyFrom into used sums gives the clone's fit again.
func TestClusterSumsClone(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	const n, k, g = 1500, 4, 6
	type row struct {
		x    []float64
		y, w float64
		cl   int
	}
	rows := make([]row, n)
	for i := range rows {
		x := []float64{1, float64(i % 2), rng.NormFloat64(), 0}
		if i%3 == 0 {
			x[3] = 1
		}
		rows[i] = row{x, 2 + x[1] + 0.5*x[2] + rng.NormFloat64(), 0.5 + rng.Float64(), i % g}
	}
	for _, weighted := range []bool{false, true} {
		build := func(rs []row, s *ClusterSums) *ClusterSums {
			if s == nil {
				var err error
				if s, err = NewClusterSums(k, weighted); err != nil {
					t.Fatal(err)
				}
			}
			for _, r := range rs {
				if err := s.Add(r.cl, r.x, r.y, r.w); err != nil {
					t.Fatal(err)
				}
			}
			return s
		}
		fitOf := func(s *ClusterSums) []float64 {
			f, err := SuffOLS(s)
			if err != nil {
				t.Fatal(err)
			}
			cr2, err := f.CR2()
			if err != nil {
				t.Fatal(err)
			}
			return append(append(append([]float64(nil), cr2.Coef...), cr2.VCov.At(1, 1), cr2.DF[1]), float64(s.N()))
		}
		whole := fitOf(build(rows, nil))
		before := fitOf(build(rows[:1100], nil))
		a := build(rows[:1100], nil)
		c := build(rows[1100:], a.Clone())
		if got := fitOf(c); !equalFloats(got, whole) {
			t.Errorf("weighted %v: clone + rows %v, all rows %v", weighted, got, whole)
		}
		if got := fitOf(a); !equalFloats(got, before) {
			t.Errorf("weighted %v: the original changed after rows were added to its clone: %v, was %v", weighted, got, before)
		}
		used := build(rows[:300], nil)
		used.CopyFrom(build(rows[:1100], nil))
		if got := fitOf(build(rows[1100:], used)); !equalFloats(got, whole) {
			t.Errorf("weighted %v: CopyFrom + rows %v, all rows %v", weighted, got, whole)
		}
		if whole[len(whole)-1] != n {
			t.Errorf("%v rows", whole[len(whole)-1])
		}
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
