package compare

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// groupsFrame is a frame of n rows over 10 teams in 5 trusts (two teams a
// trust, one per arm), in random order as participants come.
func groupsFrame(n int) *colFrame {
	r := rand.New(rand.NewPCG(3, 4))
	f := &colFrame{strata: []string{"a", "b", "c", "d", "e"}, teams: make([]string, 10)}
	f.arm, f.stratum, f.cluster, f.rows = make([]float64, n), make([]int32, n), make([]int32, n), make([]int32, n)
	for i := range n {
		t := r.IntN(10)
		f.cluster[i], f.stratum[i], f.arm[i] = int32(t), int32(t/2), float64(t%2)
	}
	return f
}

// TestTeamGroupsRows checks newTeamGroups against a map of (team, trust,
// term) keys: each row's group, the groups' first rows, counts and terms.
func TestTeamGroupsRows(t *testing.T) {
	f := groupsFrame(5000)
	x := slices.Clone(f.arm)
	for i := range x {
		if f.cluster[i] == 3 && i%3 == 0 {
			x[i] = 0.25 // a term other than 0/1 within one team
		}
	}
	g := newTeamGroups(f, x)
	if g.of8 == nil || g.of != nil {
		t.Fatalf("11 groups: byte group numbers %v, int32 %v", g.of8 != nil, g.of != nil)
	}
	checkTeamGroups(t, f, x, g, 11)
	// 300 more groups: a term other than 0/1 of its own in 300 rows.
	for i := 0; i < 300; i++ {
		x[i*7] = 2 + float64(i)
	}
	g = newTeamGroups(f, x)
	if g.of8 != nil || g.of == nil {
		t.Fatalf("over 256 groups: byte group numbers %v, int32 %v", g.of8 != nil, g.of != nil)
	}
	checkTeamGroups(t, f, x, g, -1)
}

// checkTeamGroups checks g against a map of (team, trust, term) keys:
// each row's group, the groups' first rows, counts and terms (and their
// number, unless groups is −1).
func checkTeamGroups(t *testing.T, f *colFrame, x []float64, g *teamGroups, groups int) {
	t.Helper()
	of := func(i int) int32 {
		if g.of8 != nil {
			return int32(g.of8[i])
		}
		return g.of[i]
	}
	type key struct {
		c, s int32
		v    float64
	}
	index := map[key]int32{}
	var n []int
	var last []int32
	for i := range x {
		k := key{f.cluster[i], f.stratum[i], x[i]}
		gi, ok := index[k]
		if !ok {
			gi = int32(len(n))
			index[k] = gi
			n = append(n, 0)
			if int(gi) >= len(g.first) || g.first[gi] != int32(i) {
				t.Fatalf("group %d: first row %v, want %d", gi, g.first, i)
			}
		}
		n[gi]++
		if int(gi) == len(last) {
			last = append(last, 0)
		}
		last[gi] = int32(i)
		if of(i) != gi || g.term[gi] != x[i] || g.cluster[gi] != int(f.cluster[i]) || g.stratum[gi] != f.stratum[i] {
			t.Fatalf("row %d: group %d (term %v), want %d", i, of(i), g.term[of(i)], gi)
		}
	}
	if (groups >= 0 && len(n) != groups) || !slices.Equal(n, g.n) || !slices.Equal(last, g.last) {
		t.Fatalf("counts %v, last rows %v, want %v, %v (%d groups)", g.n, g.last, n, last, groups)
	}
}

// BenchmarkTeamGroups groups 1,000,000 rows of 10 teams by team, trust and
// arm.
func BenchmarkTeamGroups(b *testing.B) {
	f := groupsFrame(1_000_000)
	b.ResetTimer()
	for b.Loop() {
		newTeamGroups(f, f.arm)
	}
}

// TestBetweenColumnsFromGroups: the design's columns constant within every
// team, counted from the team groups, equal betweenColumns over the dense
// design: with a varying y_baseline, one constant within teams, one
// constant in all teams but one row, and without y_baseline.
func TestBetweenColumnsFromGroups(t *testing.T) {
	f := groupsFrame(3000)
	f.yBase = make([]float64, len(f.arm))
	g := newTeamGroups(f, f.arm)
	for _, tc := range []struct {
		name     string
		base     func(i int) float64
		withBase bool
		want     int
	}{
		{"varying", func(i int) float64 { return float64(i % 7) }, true, 6},
		{"by team", func(i int) float64 { return float64(f.cluster[i]) }, true, 7},
		{"one row", func(i int) float64 { return float64(f.cluster[i]) + float64(i/2999) }, true, 6},
		{"no baseline", nil, false, 6},
	} {
		for i := range f.yBase {
			if tc.base != nil {
				f.yBase[i] = tc.base(i)
			}
		}
		des := newColDesign(f, TermArm, f.arm, tc.withBase)
		dense := betweenColumns(des.dense(), f.clusterInts())
		if got := des.betweenColumns(g); got != dense || got != tc.want {
			t.Errorf("%s: %d constant columns, dense %d, want %d", tc.name, got, dense, tc.want)
		}
	}
}
