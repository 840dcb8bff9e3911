package pipeline

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// econTestPerson is one participant of the bundled study as the economic
// tests rebuild them from the scores and participants tables.
type econTestPerson struct {
	id, trust, team, arm  string
	withdrawn             bool
	cost0, cost1, u0, qal float64 // NaN: null
}

// econTestPeople reads every participant with their baseline and
// follow-up costs, baseline utility and follow-up QALYs.
func econTestPeople(t *testing.T, gen string) []econTestPerson {
	t.Helper()
	byID := map[string]*econTestPerson{}
	var ids []string
	err := warehouse.ScanTable(context.Background(), gen, "participants", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "study_id", "trust", "team", "arm", "withdrawn")
		if err != nil {
			return err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			p := &econTestPerson{
				id: cols[0].(*array.String).Value(i), trust: cols[1].(*array.String).Value(i),
				team: cols[2].(*array.String).Value(i), arm: cols[3].(*array.String).Value(i),
				withdrawn: cols[4].(*array.Boolean).Value(i),
				cost0:     math.NaN(), cost1: math.NaN(), u0: math.NaN(), qal: math.NaN(),
			}
			byID[p.id] = p
			ids = append(ids, p.id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range compareTestReadTable(t, gen, "scores") {
		p := byID[r.str["study_id"]]
		if p == nil {
			t.Fatal("a score without a participant")
		}
		v := r.num["value"]
		switch r.str["instrument"] + "." + r.str["scale"] + "@" + r.str["wave"] {
		case "csri.cost@baseline":
			p.cost0 = v
		case "csri.cost@followup":
			p.cost1 = v
		case "eq5d5l.index@baseline":
			p.u0 = v
		case "eq5d5l.qaly@followup":
			p.qal = v
		}
	}
	sort.Strings(ids)
	out := make([]econTestPerson, len(ids))
	for i, id := range ids {
		out[i] = *byID[id]
	}
	return out
}

// econTestDesign is the rows [1, arm, covariates…, trust dummies] of the
// participants kept, their teams, and the trusts in order (the first the
// reference).
func econTestDesign(ps []econTestPerson, covs func(p econTestPerson) []float64) ([][]float64, []string) {
	var trusts []string
	for _, p := range ps {
		if !slices.Contains(trusts, p.trust) {
			trusts = append(trusts, p.trust)
		}
	}
	slices.Sort(trusts)
	var rows [][]float64
	var teams []string
	for _, p := range ps {
		arm := 0.0
		if p.arm == "intervention" {
			arm = 1
		}
		r := append([]float64{1, arm}, covs(p)...)
		for _, tr := range trusts[1:] {
			d := 0.0
			if p.trust == tr {
				d = 1
			}
			r = append(r, d)
		}
		rows = append(rows, r)
		teams = append(teams, p.team)
	}
	return rows, teams
}

// The economic outcomes join the analysis plan: csri.cost adjusts for its
// own baseline, eq5d5l.qaly for baseline utility (analysis.baselines).
// Their primary cr2 rows equal a recomputation on a frame this test builds
// itself from the scores table; change has no estimate for QALYs (their
// baseline is another scale) and a note saying so.
func TestEconomicOutcomesBundled(t *testing.T) {
	env := compareTestEnv(t)
	_, gen := runBundled(t, env)
	ps := econTestPeople(t, gen)
	effects, _ := compareTestReadEffects(t, gen)
	for _, c := range []struct {
		outcome string
		y, base func(p econTestPerson) float64
	}{
		{"csri.cost", func(p econTestPerson) float64 { return p.cost1 }, func(p econTestPerson) float64 { return p.cost0 }},
		{"eq5d5l.qaly", func(p econTestPerson) float64 { return p.qal }, func(p econTestPerson) float64 { return p.u0 }},
	} {
		var kept []econTestPerson
		var y []float64
		for _, p := range ps {
			if p.withdrawn || math.IsNaN(c.y(p)) || math.IsNaN(c.base(p)) {
				continue
			}
			kept = append(kept, p)
			y = append(y, c.y(p))
		}
		rows, teams := econTestDesign(kept, func(p econTestPerson) []float64 { return []float64{c.base(p)} })
		want := compareTestDense(t, rows, y, teams, 1)
		got, ok := effects["primary/"+c.outcome+"/cr2/arm_intervention"]
		if !ok {
			t.Fatalf("no primary cr2 row for %s", c.outcome)
		}
		if int(got.nObs) != len(kept) || got.estimate == nil ||
			compareTestRel(*got.estimate, want.Estimate) > 1e-9 || compareTestRel(*got.se, want.StdError) > 1e-9 || compareTestRel(*got.df, want.DF) > 1e-9 {
			t.Errorf("%s: n %d estimate %v se %v df %v; want n %d %v %v %v", c.outcome, got.nObs, deref(got.estimate), deref(got.se), deref(got.df),
				len(kept), want.Estimate, want.StdError, want.DF)
		}
	}
	ch := effects["change/eq5d5l.qaly/cr2/arm_intervention"]
	if ch.estimate != nil || ch.note == "" {
		t.Errorf("change for QALYs: estimate %v, note %q; want none, with a note", deref(ch.estimate), ch.note)
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// cpi run on the bundled study writes cost_effectiveness: 51 cr2 rows (λ
// 0 to 50,000 by 1,000), then 51 two_stage_bootstrap rows with the same
// point estimates, percentile intervals and a note of the replicates; each
// cr2 row equal to the dense OLS + CR2 recomputation of
// NB(λ) = λ·qaly − cost ~ arm + u_baseline + cost_baseline + trust on the
// population this test selects itself (not withdrawn, all four values).
func TestCostEffectivenessBundled(t *testing.T) {
	env := compareTestEnv(t)
	_, gen := runBundled(t, env)
	var kept []econTestPerson
	for _, p := range econTestPeople(t, gen) {
		if !p.withdrawn && !math.IsNaN(p.cost0) && !math.IsNaN(p.cost1) && !math.IsNaN(p.u0) && !math.IsNaN(p.qal) {
			kept = append(kept, p)
		}
	}
	rows, teams := econTestDesign(kept, func(p econTestPerson) []float64 { return []float64{p.u0, p.cost0} })
	all := compareTestReadTable(t, gen, "cost_effectiveness")
	if len(all) != 2*51 {
		t.Fatalf("%d rows, want 102 (cr2 and two_stage_bootstrap at 51 lambdas)", len(all))
	}
	got, boot := all[:51], all[51:]
	for i, r := range boot {
		c := got[i]
		if r.str["method"] != "two_stage_bootstrap" || r.num["lambda"] != c.num["lambda"] || r.num["inb"] != c.num["inb"] ||
			!math.IsNaN(r.num["inb_df"]) || !strings.HasPrefix(r.str["note"], "2000 replicates, seed 20190329") ||
			!(r.num["inb_ci_low"] < r.num["inb_ci_high"]) || !(r.num["prob_cost_effective"] >= 0 && r.num["prob_cost_effective"] <= 1) {
			t.Errorf("bootstrap row %d: %v %v", i, r.str, r.num)
		}
	}
	for i, r := range got {
		l := float64(1000 * i)
		if r.str["analysis"] != "cost_effectiveness" || r.str["method"] != "cr2" || r.num["lambda"] != l {
			t.Fatalf("row %d: %s %s %v, want cost_effectiveness cr2 %v", i, r.str["analysis"], r.str["method"], r.num["lambda"], l)
		}
		y := make([]float64, len(kept))
		for k, p := range kept {
			y[k] = l*p.qal - p.cost1
		}
		want := compareTestDense(t, rows, y, teams, 1)
		if int(r.num["n_obs"]) != len(kept) || r.num["n_clusters"] != 10 ||
			compareTestRel(r.num["inb"], want.Estimate) > 1e-9 || compareTestRel(r.num["inb_se"], want.StdError) > 1e-9 ||
			compareTestRel(r.num["inb_df"], want.DF) > 1e-9 || compareTestRel(r.num["inb_ci_low"], want.CILow) > 1e-9 {
			t.Errorf("lambda %v: n %v inb %v se %v df %v lo %v; want n %d %v %v %v %v", l, r.num["n_obs"], r.num["inb"], r.num["inb_se"], r.num["inb_df"], r.num["inb_ci_low"],
				len(kept), want.Estimate, want.StdError, want.DF, want.CILow)
		}
		if p := r.num["prob_cost_effective"]; !(p > 0 && p < 1) {
			t.Errorf("lambda %v: prob_cost_effective %v", l, p)
		}
		// EVPI under INB ~ inb + se·T_df, by the trapezium rule against
		// gonum's t density.
		td := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: want.DF}
		var evpi float64
		const h = 0.001
		for x := -80.0; x <= 80; x += h {
			evpi += max(want.Estimate+want.StdError*x, 0) * td.Prob(x) * h
		}
		evpi -= max(want.Estimate, 0)
		if math.Abs(r.num["evpi"]-evpi) > 1e-3*want.StdError {
			t.Errorf("lambda %v: evpi %v, integral %v", l, r.num["evpi"], evpi)
		}
	}
	// wave and primary (economics.default_method: cr2).
	for _, r := range all {
		if r.str["wave"] != "followup" || r.num["primary"] != map[string]float64{"cr2": 1, "two_stage_bootstrap": 0}[r.str["method"]] {
			t.Errorf("%s at %v: wave %q primary %v", r.str["method"], r.num["lambda"], r.str["wave"], r.num["primary"])
		}
	}
	// ce_bootstrap: the estimable replicates, numbered 1..2000 in order,
	// as many as the note says; at each λ their INB gives the bootstrap
	// row's SD, share above 0 and EVPI.
	var failed int
	if _, err := fmt.Sscanf(boot[0].str["note"], "2000 replicates, seed 20190329; %d in which", &failed); err != nil {
		t.Fatalf("note %q", boot[0].str["note"])
	}
	reps := compareTestReadTable(t, gen, "ce_bootstrap")
	if len(reps) != 2000-failed {
		t.Fatalf("ce_bootstrap has %d rows, want 2000 - %d", len(reps), failed)
	}
	for i, r := range reps {
		if r.str["analysis"] != "cost_effectiveness" || r.str["wave"] != "followup" || r.num["replicate"] < 1 || r.num["replicate"] > 2000 ||
			(i > 0 && r.num["replicate"] <= reps[i-1].num["replicate"]) {
			t.Fatalf("ce_bootstrap row %d: %v %v", i, r.str, r.num)
		}
	}
	for _, b := range boot {
		l := b.num["lambda"]
		var sum, sum2, pos, plus float64
		for _, r := range reps {
			x := l*r.num["inc_qaly"] - r.num["inc_cost"]
			sum, sum2, plus = sum+x, sum2+x*x, plus+max(x, 0)
			if x > 0 {
				pos++
			}
		}
		n := float64(len(reps))
		sd := math.Sqrt((sum2 - sum*sum/n) / (n - 1))
		evpi := plus/n - max(sum/n, 0)
		if compareTestRel(b.num["inb_se"], sd) > 1e-9 || b.num["prob_cost_effective"] != pos/n || math.Abs(b.num["evpi"]-evpi) > 1e-9*sd {
			t.Errorf("lambda %v: bootstrap se %v P %v evpi %v; from ce_bootstrap %v %v %v", l, b.num["inb_se"], b.num["prob_cost_effective"], b.num["evpi"], sd, pos/n, evpi)
		}
	}
}
