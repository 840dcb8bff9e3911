package chart

import (
	"strings"
	"testing"
)

// The cost-effectiveness plane draws every replicate, the estimate and a
// line per λ through the origin, inside its box; the acceptability curve
// one line per method; labels are escaped.
func TestCharts(t *testing.T) {
	pts := []Point{{0.01, -100}, {0.02, 300}, {-0.005, 50}, {0.03, -400}}
	svg := string(Plane(pts, &Point{0.015, -50}, []float64{20000, 30000}))
	if n := strings.Count(svg, "<circle"); n != len(pts) {
		t.Errorf("%d points drawn, want %d", n, len(pts))
	}
	if strings.Count(svg, `stroke-dasharray="6 3"`) != 1 || strings.Count(svg, `stroke-dasharray="2 3"`) != 1 || !strings.Contains(svg, "λ 20k") || !strings.Contains(svg, "λ 30k") {
		t.Errorf("the λ lines are not both drawn: %s", svg)
	}
	if !strings.Contains(svg, "Incremental QALYs") || !strings.Contains(svg, "Incremental cost (£)") {
		t.Error("plane axes unlabelled")
	}
	curves := map[string][][2]float64{"cr2": {{0, 0.6}, {50000, 0.9}}, "<b>x</b>": {{0, 0.5}, {50000, 0.6}}}
	ceac := string(CEAC([]string{"cr2", "<b>x</b>"}, curves, []float64{20000, 30000}))
	if strings.Count(ceac, "<polyline") != 2 || strings.Contains(ceac, "<b>") || !strings.Contains(ceac, "&lt;b&gt;x&lt;/b&gt;") {
		t.Errorf("acceptability curve: two escaped methods wanted: %s", ceac)
	}
	// x of λ 50,000 is the right edge, y of P 0.9 is 10% below the top.
	if !strings.Contains(ceac, "348.0,48.0") {
		t.Errorf("cr2's last point is not at (348, 48): %s", ceac)
	}
}

// The forest across outcomes sizes squares by weight, marks reversed
// rows and says which side favours whom.
func TestOutcomeForest(t *testing.T) {
	rows := []ForestRow{
		{Label: "a", Est: 0.2, Lo: -0.1, Hi: 0.5, SE: 0.15, OK: true, Known: true},
		{Label: "b", Est: -0.1, Lo: -0.7, Hi: 0.5, SE: 0.3, OK: true, Known: true, Reversed: true},
		{Label: "<c>", OK: false},
	}
	svg := string(OutcomeForest(rows, []string{"intervention", "control"}))
	for _, want := range []string{"b †", "&lt;c&gt; ?", "n/e", "favours control", "favours intervention"} {
		if !strings.Contains(svg, want) {
			t.Errorf("forest lacks %q", want)
		}
	}
	// Square sides: 4 + 10 √(w/w_max): 14 for a (the heaviest), 9 for b
	// (a quarter of a's weight).
	if !strings.Contains(svg, `width="14.0" height="14.0"`) || !strings.Contains(svg, `width="9.0" height="9.0"`) {
		t.Errorf("squares not sized by weight: %s", svg)
	}
}
