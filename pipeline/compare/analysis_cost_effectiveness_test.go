package compare

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/connectingpeople/cpi/schemas"
)

// ceTestColumns loads testdata/reference/cost_effectiveness_data.csv into
// an analysis frame of the default study: csri.cost and eq5d5l.qaly at
// the study's waves (QALYs' baseline being baseline utility), plus, to
// show they are left out, a withdrawn participant and one without a
// baseline cost.
func ceTestColumns(t *testing.T, s *schemas.Study) *cmpColumns {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "reference", "cost_effectiveness_data.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := recs[0]
	col := func(name string) int { return slices.Index(header, name) }
	recs = recs[1:]
	extra := [][]string{
		{"TEWV-01-X01", "TEWV", "TEWV-01", "intervention", "0.9", "100", "99999", "0.1"},
		{"TEWV-02-X02", "TEWV", "TEWV-02", "control", "0.9", "", "99999", "0.1"},
	}
	recs = append(recs, extra...)
	d := &cmpColumns{n: len(recs)}
	oc, oq := slices.Index(s.Analysis.Outcomes, ceCost), slices.Index(s.Analysis.Outcomes, ceQALY)
	d.vals = make([][]OutcomeValues, len(s.Analysis.Outcomes))
	for o := range d.vals {
		d.vals[o] = make([]OutcomeValues, len(s.Waves))
		for w := range d.vals[o] {
			d.vals[o][w].Init(d.n)
		}
	}
	num := func(v string) float64 {
		if v == "" {
			return math.NaN()
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	set := func(o, w, i int, x float64) {
		if !math.IsNaN(x) {
			d.vals[o][w].Set(i, x)
		}
	}
	for i, r := range recs {
		d.trust = append(d.trust, int32(d.trusts.code(r[col("trust")])))
		d.team = append(d.team, int32(d.teams.code(r[col("team")])))
		d.arm = append(d.arm, int32(d.arms.code(r[col("arm")])))
		d.withdrawn = append(d.withdrawn, r[0] == "TEWV-01-X01")
		set(oc, 0, i, num(r[col("cost_baseline")]))
		set(oc, 1, i, num(r[col("cost")]))
		set(oq, 0, i, num(r[col("u_baseline")]))
		set(oq, 1, i, num(r[col("qaly")]))
	}
	return d
}

// The cr2 rows of cost_effectiveness equal R's (clubSandwich on the
// net-benefit regression at each lambda; testdata/reference/
// cost_effectiveness.R): 1e-8 relative for estimates and standard errors,
// 1e-6 for df, intervals and probabilities.
func TestCostEffectivenessAgainstR(t *testing.T) {
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	d := ceTestColumns(t, s)
	fr := ceBuildFrame(s, d)
	if fr.note != "" {
		t.Fatal(fr.note)
	}
	rows, err := ceFitCR2(fr, s.Economics.LambdaGrid(), s.Analysis.CILevel)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join("..", "..", "testdata", "reference", "cost_effectiveness_cr2.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(want)-1 || len(rows) != 51 {
		t.Fatalf("%d rows, R has %d, want 51 (lambda 0 to 50,000 by 1,000)", len(rows), len(want)-1)
	}
	rel := func(a, b float64) float64 {
		if a == b {
			return 0
		}
		return math.Abs(a-b) / math.Max(math.Abs(a), math.Abs(b))
	}
	for i, w := range want[1:] {
		v := make([]float64, len(w))
		for j := range w {
			if v[j], err = strconv.ParseFloat(w[j], 64); err != nil {
				t.Fatal(err)
			}
		}
		r := rows[i]
		for _, c := range []struct {
			name      string
			got, want float64
			tol       float64
		}{
			{"lambda", r.lambda, v[0], 0}, {"inc_cost", r.incCost, v[1], 1e-8}, {"inc_qaly", r.incQALY, v[2], 1e-8},
			{"icer", r.icer, v[3], 1e-8}, {"inb", r.inb, v[4], 1e-8}, {"inb_se", r.inbSE, v[5], 1e-8},
			{"inb_df", r.inbDF, v[6], 1e-6}, {"inb_ci_low", r.inbLow, v[7], 1e-6}, {"inb_ci_high", r.inbHigh, v[8], 1e-6},
			{"prob_cost_effective", r.pCE, v[9], 1e-6}, {"n_obs", float64(r.nObs), v[10], 0}, {"n_clusters", float64(r.nClusters), v[11], 0},
		} {
			if rel(c.got, c.want) > c.tol || math.IsNaN(c.got) {
				t.Errorf("lambda %v: %s %v, R %v", r.lambda, c.name, c.got, c.want)
			}
		}
		// inb = lambda·inc_qaly − inc_cost, as the regressions are linear.
		if math.Abs(r.inb-(r.lambda*r.incQALY-r.incCost)) > 1e-8*math.Max(1, math.Abs(r.inb)) {
			t.Errorf("lambda %v: inb %v is not lambda*inc_qaly - inc_cost = %v", r.lambda, r.inb, r.lambda*r.incQALY-r.incCost)
		}
	}
}
