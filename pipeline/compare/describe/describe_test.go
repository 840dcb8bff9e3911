package describe

import (
	"math"
	"testing"

	"github.com/connectingpeople/cpi/schemas"
)

type floats []float64

func (f floats) At(i int) float64 { return f[i] }

// describeTestColumns: eight participants, arms coded in the order
// control, intervention (not the study's), one without an arm, one
// withdrawn, one not interviewed at baseline, one without a team.
func describeTestColumns() (*schemas.Study, *Columns) {
	s := &schemas.Study{Arms: []string{"intervention", "control"}, Waves: []string{"baseline", "followup"}}
	s.Analysis.Outcomes = []string{"a.x"}
	nan := math.NaN()
	base := floats{1, 2, 3, 4, 5, 6, 7, 8}
	fu := floats{10, nan, 30, 40, nan, 60, 70, 80}
	c := &Columns{
		N:           8,
		Arm:         []int32{0, 1, 0, 1, -1, 1, 0, 1},
		Arms:        []string{"control", "intervention"},
		Team:        []int32{0, 1, 0, 1, 1, 1, 0, -1},
		Trust:       []int32{0, 0, 0, 0, 0, 0, 0, 0},
		Withdrawn:   []bool{false, false, false, true, false, false, false, false},
		Interviewed: []bool{true, true, true, true, true, true, false, true},
		Values: func(o, w int) (Values, bool) {
			if o != 0 {
				return nil, false
			}
			return []floats{base, fu}[w], true
		},
	}
	return s, c
}

// TestDescriptives: n, mean and SD per arm and over all, by hand: at
// follow-up, intervention has 60 and 80 (participant 4 withdrawn, 2
// missing), control 10, 30, 70, ALL those and nobody without an arm but
// with a value (participant 5 is missing at follow-up).
func TestDescriptives(t *testing.T) {
	s, c := describeTestColumns()
	rows := Descriptives(s, c)
	type want struct {
		wave, arm string
		n         int
		mean, sd  float64
	}
	sd := func(x ...float64) float64 {
		m := 0.0
		for _, v := range x {
			m += v / float64(len(x))
		}
		ss := 0.0
		for _, v := range x {
			ss += (v - m) * (v - m)
		}
		return math.Sqrt(ss / float64(len(x)-1))
	}
	wants := []want{
		{"baseline", "intervention", 3, (2 + 6 + 8) / 3.0, sd(2, 6, 8)},
		{"baseline", "control", 3, (1 + 3 + 7) / 3.0, sd(1, 3, 7)},
		{"baseline", All, 7, (1 + 2 + 3 + 5 + 6 + 7 + 8) / 7.0, sd(1, 2, 3, 5, 6, 7, 8)},
		{"followup", "intervention", 2, 70, sd(60, 80)},
		{"followup", "control", 3, (10 + 30 + 70) / 3.0, sd(10, 30, 70)},
		{"followup", All, 5, (10 + 30 + 60 + 70 + 80) / 5.0, sd(10, 30, 60, 70, 80)},
	}
	if len(rows) != len(wants) {
		t.Fatalf("%d rows, want %d", len(rows), len(wants))
	}
	for i, w := range wants {
		r := rows[i]
		if r.outcome != "a.x" || r.wave != w.wave || r.arm != w.arm || r.n != w.n ||
			math.Abs(r.mean-w.mean) > 1e-12 || math.Abs(r.sd-w.sd) > 1e-12 {
			t.Errorf("row %d: %+v, want %+v", i, r, w)
		}
	}
}

// TestMissingData: expected are those interviewed at baseline, not
// withdrawn, with a team and trust, per arm; observed those of them with
// a value; no first-wave rows without a baseline.
func TestMissingData(t *testing.T) {
	s, c := describeTestColumns()
	rows := MissingData(s, c, 0, "a.x", true)
	// Expected: intervention 2 (participants 2 and 6; 4 withdrawn, 8 no
	// team), control 2 (1 and 3; 7 not interviewed).
	wants := []MissingRow{
		{"a.x", "baseline", "intervention", 2, 2},
		{"a.x", "baseline", "control", 2, 2},
		{"a.x", "followup", "intervention", 2, 1},
		{"a.x", "followup", "control", 2, 2},
	}
	if len(rows) != len(wants) {
		t.Fatalf("%d rows, want %d", len(rows), len(wants))
	}
	for i, w := range wants {
		if rows[i] != w {
			t.Errorf("row %d: %+v, want %+v", i, rows[i], w)
		}
	}
	if rows := MissingData(s, c, 0, "a.x", false); len(rows) != 2 || rows[0].wave != "followup" {
		t.Errorf("without a baseline: %+v, want the follow-up rows only", rows)
	}
}
