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
// the groups (stats.ClusterSums.AddGrouped) instead of from every row.
type teamGroups struct {
	cluster     []int // each group's cluster
	stratum     []int32
	term        []float64
	first, last []int32 // each group's first and last row
	n           []int
	of          []int32   // each row's group
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
	cnt, last := make([]int, len(g.first)), make([]int32, len(g.first))
	for i, gi := range of {
		cnt[gi]++
		last[gi] = int32(i)
	}
	g.of, g.n, g.last = of, cnt, last
	return g
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
	for gi, c := range g.cluster {
		lv := 0
		if g.term[gi] == 1 {
			lv = 1
		}
		if !seen[c][lv] {
			seen[c][lv] = true
			if lv == 1 {
				one++
			} else {
				zero++
			}
		}
	}
	return one, zero
}

// moments returns the unweighted moments of y (on y_baseline, when there
// is one) of f, the frame of the groups, taken on first use: the primary
// model's sums and trust_effects' per-trust model share them
// (stats.ClusterSums.AddMoments).
func (g *teamGroups) moments(f *colFrame) (*stats.GroupMoments, error) {
	g.once.Do(func() { g.mom, g.momErr = stats.NewGroupMoments(g.of, len(g.cluster), f.yBase, f.yFU, nil) })
	return g.mom, g.momErr
}
