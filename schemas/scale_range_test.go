package schemas

import (
	"math"
	"testing"
)

// TestScaleRange: the default study's scale ranges, computed by hand from
// the instrument files: rguk 27 items 0/1; swemwbs 7 items 1..5 and the
// metric table's ends; ucla3 3 items 1..3; qpr 15 items 0..4; eq5d5l index
// 1 − (0.274 + 0.203 + 0.184 + 0.335 + 0.289) to 1, vas 0..100; cost from
// 0; no range for gas.t and eq5d5l.qaly.
func TestScaleRange(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		outcome string
		lo, hi  float64
		ok      bool
	}{
		{"rguk.total", 0, 27, true},
		{"swemwbs.total", 7, 35, true},
		{"swemwbs.metric", 7, 35, true},
		{"ucla3.total", 3, 9, true},
		{"qpr.total", 0, 60, true},
		{"eq5d5l.index", 1 - (0.274 + 0.203 + 0.184 + 0.335 + 0.289), 1, true},
		{"eq5d5l.vas", 0, 100, true},
		{"csri.cost", 0, math.Inf(1), true},
		{"gas.t", 0, 0, false},
		{"eq5d5l.qaly", 0, 0, false},
		{"nope.total", 0, 0, false},
	} {
		lo, hi, ok := s.ScaleRange(c.outcome)
		if ok != c.ok || (ok && (math.Abs(lo-c.lo) > 1e-12 || hi != c.hi)) {
			t.Errorf("%s: [%v, %v] %v, want [%v, %v] %v", c.outcome, lo, hi, ok, c.lo, c.hi, c.ok)
		}
	}
}
