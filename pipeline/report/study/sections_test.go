package study

import (
	"testing"

	"github.com/connectingpeople/cpi/schemas"
)

// tippingDelta reads the verdict's change from the tipping_point rows in
// both directions, the smaller |δ| first and the negative δ first at a tie.
func TestTippingDelta(t *testing.T) {
	row := func(sd, lo, hi float64) tippingRow {
		return tippingRow{Outcome: "o", Wave: "w", Delta: 10 * sd, DeltaSD: sd, Est: (lo + hi) / 2, Lo: lo, Hi: hi}
	}
	for _, c := range []struct {
		name string
		rows []tippingRow
		want string
	}{
		{"significant, tips at -0.4 before +0.4", []tippingRow{row(0, 1, 3), row(-0.2, 0.5, 2.5), row(0.2, 1.5, 3.5), row(-0.4, -0.1, 2), row(0.4, -0.2, 4)}, "includes 0 from δ = -4.0 (-0.4 SD)"},
		{"null, significant from +0.2", []tippingRow{row(0, -1, 1), row(-0.2, -2, 0.5), row(0.2, 0.1, 2)}, "excludes 0 from δ = 2.0 (0.2 SD)"},
		{"null everywhere", []tippingRow{row(0, -1, 1), row(0.2, -0.5, 1.5)}, "includes 0 at every δ"},
		{"significant everywhere", []tippingRow{row(0, 1, 2), row(-1, 0.5, 1)}, "excludes 0 at every δ"},
		{"no rows", nil, "—"},
	} {
		sec := &sections{tipping: c.rows}
		if got := sec.tippingDelta("o", "w", 1); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// fmtMoney groups thousands and writes a minus sign.
func TestFmtMoney(t *testing.T) {
	for v, want := range map[float64]string{0: "£0", 412.4: "£412", -7115.2: "−£7,115", 1234567: "£1,234,567", 999.5: "£1,000"} {
		if got := fmtMoney(v, 0); got != want {
			t.Errorf("%v: %q, want %q", v, got, want)
		}
	}
}

// The forest across outcomes orients each outcome by its scale's
// direction (schemas: better), read from the instrument definitions.
func TestScaleBetter(t *testing.T) {
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	for o, want := range map[string]string{"rguk.total": "higher", "ucla3.total": "lower", "csri.cost": "lower", "eq5d5l.qaly": "higher", "gas.t": "higher", "nope.total": ""} {
		if got := scaleBetter(s, o); got != want {
			t.Errorf("%s: %q, want %q", o, got, want)
		}
	}
	for _, o := range s.Analysis.Outcomes {
		if scaleBetter(s, o) == "" {
			t.Errorf("outcome %s of the default study does not say which way is better", o)
		}
	}
}
