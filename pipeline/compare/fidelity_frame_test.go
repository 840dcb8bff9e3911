package compare

import (
	"reflect"
	"slices"
	"testing"

	"github.com/connectingpeople/cpi/schemas"
)

// TestFidelityDoseFrameShared: when every team has a band, fidelity_dose's
// frame is the complete cases' frame itself (one frame, given back to the
// pool once), equal field by field to the frame built on its own with the
// band rule; when a team has no band, it is a frame of its own: the
// complete cases less that team's rows, counted as dropped for no band.
func TestFidelityDoseFrameShared(t *testing.T) {
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	d := ceTestColumns(t, s)
	d.band, d.hasBand = make([]string, len(d.teams.levels)), make([]bool, len(d.teams.levels))
	for i := range d.band {
		d.band[i], d.hasBand[i] = s.Fidelity.Bands[i%len(s.Fidelity.Bands)].Name, true
	}
	oc := slices.Index(s.Analysis.Outcomes, ceCost)
	pop := fidelityDoseAnalysis{}.Population()
	bandRule := func(i int) int { // the rule as it was, on its own
		if !d.hasBand[d.team[i]] {
			return dropNoBand
		}
		return -1
	}
	newComparison := func() *outcomeComparison {
		return &outcomeComparison{s: s, d: d, index: oc, wave: 1, hasBase: true, pool: &framePool{}}
	}
	same := func(t *testing.T, got, want *colFrame) {
		t.Helper()
		g, w := *got, *want
		if !reflect.DeepEqual(g, w) {
			t.Errorf("frame %+v\nwant %+v", g, w)
		}
	}

	c := newComparison()
	f, cc := c.frame(pop), c.frame(completeCases)
	if f != cc {
		t.Fatal("every team has a band: fidelity_dose's frame is not the complete cases'")
	}
	alone := buildColFrame(s, d, oc, 1, true, pop, bandRule, nil)
	same(t, f, alone)
	if len(f.rows) < 100 || len(f.teams) < 4 {
		t.Fatalf("%d rows, %d teams: want the reference data's", len(f.rows), len(f.teams))
	}
	cut := d.team[cc.rows[0]]
	c.done()
	if len(c.pool.f64) != 3 || len(c.pool.i32) != 3 || len(c.frames) != 0 {
		t.Errorf("pool holds %d float and %d int columns, %d frames left; want one frame's 3 and 3, none left", len(c.pool.f64), len(c.pool.i32), len(c.frames))
	}

	// A team without a band: fidelity_dose's own frame, without its rows.
	d.hasBand[cut] = false
	c = newComparison()
	cc = c.frame(completeCases)
	f = c.frame(pop)
	if f == cc {
		t.Fatal("a team without a band: fidelity_dose's frame is the complete cases'")
	}
	same(t, f, buildColFrame(s, d, oc, 1, true, pop, bandRule, nil))
	var rows []int32
	for _, r := range cc.rows {
		if d.team[r] != cut {
			rows = append(rows, r)
		}
	}
	if !slices.Equal(f.rows, rows) || f.dropped[dropNoBand] != len(cc.rows)-len(rows) || len(rows) == len(cc.rows) {
		t.Errorf("%d rows, %d dropped for no band; want %d and %d", len(f.rows), f.dropped[dropNoBand], len(rows), len(cc.rows)-len(rows))
	}
	if slices.Contains(f.teams, d.teams.levels[cut]) || len(f.teams) != len(cc.teams)-1 {
		t.Errorf("teams %v still hold the team without a band, or lost another (complete cases' %v)", f.teams, cc.teams)
	}
	c.done()
	if len(c.pool.f64) != 6 || len(c.pool.i32) != 6 {
		t.Errorf("pool holds %d float and %d int columns; want two frames' 6 and 6", len(c.pool.f64), len(c.pool.i32))
	}
}
