package compare

import (
	"math"
	"sync"

	"github.com/connectingpeople/cpi/stats"
)

// teamGroups numbers a frame's rows by what every column of its linear
// designs but y_baseline is constant over: the team, the trust and the
// term (and so the arm, for the term arm). In a trial each team is one
// group, and the models' sums, the checks and trust_effects follow from
// the groups' moments (stats.GroupMoments) instead of from every row.
type teamGroups struct {
	cluster     []int // each group's cluster
	stratum     []int32
	term        []float64
	first, last []int32 // each group's first and last row
	n           []int
	of8         []uint8   // each row's group, with at most 256 groups
	of          []int32   // or else
	once        sync.Once // takes mom, momErr (moments)
	mom         *stats.GroupMoments
	momErr      error
}

func newTeamGroups(f *colFrame, x []float64) *teamGroups {
	ns, n := len(f.strata), len(f.cluster)
	cell := make([]int32, 2*len(f.teams)*ns) // the group of a term at 0 or 1, by team, trust and term; −1 none
	for i := range cell {
		cell[i] = -1
	}
	other := map[[3]uint64]int32{} // the group of another term, by team, trust and its bits
	g := &teamGroups{}
	of, st, x := make([]int32, n), f.stratum[:n], x[:n]
	for i, c := range f.cluster {
		s, v := st[i], x[i]
		var gi int32
		if v == 0 || v == 1 {
			ci := (int(c)*ns+int(s))*2 + int(v)
			if gi = cell[ci]; gi < 0 {
				gi = g.add(i, c, s, v)
				cell[ci] = gi
			}
		} else {
			key := [3]uint64{uint64(c), uint64(s), math.Float64bits(v)}
			var ok bool
			if gi, ok = other[key]; !ok {
				gi = g.add(i, c, s, v)
				other[key] = gi
			}
		}
		of[i] = gi
	}
	g.n, g.last, g.of = make([]int, len(g.first)), make([]int32, len(g.first)), of
	if len(g.first) <= 256 {
		g.of8, g.of = make([]uint8, n), nil
	}
	for i, gi := range of {
		g.n[gi]++
		g.last[gi] = int32(i)
		if g.of8 != nil {
			g.of8[i] = uint8(gi)
		}
	}
	return g
}

// momentsOf takes the moments of y (on v, weighted by w: nil for none)
// over the groups (stats.NewGroupMoments).
func (g *teamGroups) momentsOf(v, y, w []float64) (*stats.GroupMoments, error) {
	if g.of8 != nil {
		return stats.NewGroupMoments(g.of8, len(g.cluster), v, y, w)
	}
	return stats.NewGroupMoments(g.of, len(g.cluster), v, y, w)
}

// add numbers a new group whose first row is i.
func (g *teamGroups) add(i int, c, s int32, v float64) int32 {
	g.cluster, g.stratum, g.term = append(g.cluster, int(c)), append(g.stratum, s), append(g.term, v)
	g.first = append(g.first, int32(i))
	return int32(len(g.first) - 1)
}

// clustersByLevel counts the distinct clusters with term = 1 and term = 0.
func (g *teamGroups) clustersByLevel(teams int) (one, zero int) {
	seen := make([][2]bool, teams)
	var count [2]int
	for gi, c := range g.cluster {
		lv := 0
		if g.term[gi] == 1 {
			lv = 1
		}
		if !seen[c][lv] {
			seen[c][lv] = true
			count[lv]++
		}
	}
	return count[1], count[0]
}

// moments returns the unweighted moments of y (on y_baseline, when there
// is one) of f, the groups' frame, taken on first use: the primary model's
// sums and trust_effects' per-trust model share them.
func (g *teamGroups) moments(f *colFrame) (*stats.GroupMoments, error) {
	g.once.Do(func() { g.mom, g.momErr = g.momentsOf(f.yBase, f.yFU, nil) })
	return g.mom, g.momErr
}
