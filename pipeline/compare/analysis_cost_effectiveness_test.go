package compare

import (
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/schemas"
	"github.com/connectingpeople/cpi/stats"
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

// The two_stage_bootstrap rows agree with an R implementation of the same
// resampling (testdata/reference/cost_effectiveness_bootstrap.R, R's own
// random numbers, B = 2,000 each) within Monte-Carlo error: the share of
// replicates with INB > 0 within four standard errors of the difference of
// two independent shares, the SD of INB within 12%, the percentile limits
// within a quarter of that SD, and about as many replicates (about 1 in 80)
// in which the arm effect cannot be estimated, counted in the note. The
// same seed gives the same rows.
func TestCostEffectivenessBootstrapAgainstR(t *testing.T) {
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	fr := ceBuildFrame(s, ceTestColumns(t, s))
	grid := s.Economics.LambdaGrid()
	point, err := ceFitCR2(fr, grid, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	const B = 2000
	rows, reps, err := ceBootstrap(t.Context(), fr, grid, func() []ceRow { return point }, B, 20190329, 0.95, ceExactTeam)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := ceBootstrap(t.Context(), fr, grid, func() []ceRow { return point }, B, 20190329, 0.95, ceExactTeam)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(rows, again, func(a, b ceRow) bool { return a.inbSE == b.inbSE && a.pCE == b.pCE && a.note == b.note }) {
		t.Error("the same seed gave different replicates")
	}
	f, err := os.Open(filepath.Join("..", "..", "testdata", "reference", "cost_effectiveness_bootstrap.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(want)-1 != len(rows) {
		t.Fatalf("%d rows, R %d", len(rows), len(want)-1)
	}
	var failedGo int
	if _, err := fmt.Sscanf(rows[0].note, "2000 replicates, seed 20190329; %d in which", &failedGo); err != nil {
		t.Fatalf("note %q does not count the replicates left out", rows[0].note)
	}
	// ce_bootstrap holds exactly the estimable replicates, numbered in
	// the order drawn, and they give the rows' INB.
	if len(reps) != B-failedGo {
		t.Errorf("%d replicates in ce_bootstrap, want %d - %d", len(reps), B, failedGo)
	}
	inb20 := make([]float64, len(reps))
	for i, r := range reps {
		if r.replicate < 1 || r.replicate > B || (i > 0 && r.replicate <= reps[i-1].replicate) {
			t.Fatalf("replicate %d numbered %d", i, r.replicate)
		}
		inb20[i] = 20000*r.incQALY - r.incCost
	}
	if sd := stats.SampleSD(inb20); math.Abs(sd-rows[20].inbSE) > 1e-9*sd {
		t.Errorf("ce_bootstrap's INB at 20,000 has SD %v, the row %v", sd, rows[20].inbSE)
	}
	t.Logf("λ 20,000: inb_se %.1f, interval %.1f..%.1f, P(CE) %.3f; %s", rows[20].inbSE, rows[20].inbLow, rows[20].inbHigh, rows[20].pCE, rows[20].note)
	for i, w := range want[1:] {
		v := make([]float64, len(w))
		for j := range w {
			if v[j], err = strconv.ParseFloat(w[j], 64); err != nil {
				t.Fatal(err)
			}
		}
		r := rows[i]
		if r.lambda != v[0] || r.method != "two_stage_bootstrap" || r.inb != point[i].inb || !math.IsNaN(r.inbDF) {
			t.Fatalf("row %d: %s at %v, inb %v df %v", i, r.method, r.lambda, r.inb, r.inbDF)
		}
		if i == 0 {
			failedR := v[6]
			if failedGo == 0 || math.Abs(float64(failedGo)-failedR) > 4*math.Sqrt(2*failedR) {
				t.Errorf("%d replicates left out, R %v", failedGo, failedR)
			}
		}
		p := (r.pCE + v[4]) / 2
		if tol := 4 * math.Sqrt(2*p*(1-p)/B); math.Abs(r.pCE-v[4]) > tol+1e-12 {
			t.Errorf("lambda %v: prob_cost_effective %v, R %v (tolerance %v)", r.lambda, r.pCE, v[4], tol)
		}
		if math.Abs(r.inbSE-v[1]) > 0.12*v[1] {
			t.Errorf("lambda %v: inb_se %v, R %v", r.lambda, r.inbSE, v[1])
		}
		if math.Abs(r.inbLow-v[2]) > 0.25*v[1] || math.Abs(r.inbHigh-v[3]) > 0.25*v[1] {
			t.Errorf("lambda %v: interval %v..%v, R %v..%v", r.lambda, r.inbLow, r.inbHigh, v[2], v[3])
		}
	}
}

// ceFitCR2's three fits (cost, QALYs, NB at the largest λ) give, at every
// λ of the grid, the estimate, CR2 standard error and Satterthwaite df of
// fitting NB(λ) itself (to 1e-9 relative), on simulated studies with
// skewed costs.
func TestCostEffectivenessCR2QuadraticEqualsDirect(t *testing.T) {
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	grid := s.Economics.LambdaGrid()
	for r := range 5 {
		f := ceSimFrame(rand.New(rand.NewPCG(99, uint64(r))), 15)
		rows, err := ceFitCR2(f, grid, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		nb := make([]float64, len(f.cost))
		for k, l := range grid {
			for i := range nb {
				nb[i] = l*f.qaly[i] - f.cost[i]
			}
			d, err := ceFit(f, nb, 0.95)
			if err != nil {
				t.Fatal(err)
			}
			got := rows[k]
			for _, c := range [][2]float64{{got.inb, d.Estimate}, {got.inbSE, d.StdError}, {got.inbDF, d.DF}, {got.inbLow, d.CILow}, {got.inbHigh, d.CIHigh}} {
				if math.Abs(c[0]-c[1]) > 1e-9*math.Max(1, math.Abs(c[1])) {
					t.Fatalf("study %d, lambda %v: %v, direct fit %v (row %+v)", r, l, c[0], c[1], got)
				}
			}
		}
	}
}

// ceEstimate fits the regressions beside the bootstrap: its rows and
// replicates are those of fitting first and bootstrapping after, and when
// the regressions cannot be fitted (here: one participant in each of four
// teams, fewer than the model's columns)
// there are no rows or replicates, only the note saying why.
func TestCostEffectivenessEstimate(t *testing.T) {
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	s.Economics.Bootstrap.Replicates = 200
	grid := s.Economics.LambdaGrid()
	fr := ceBuildFrame(s, ceTestColumns(t, s))
	rows, reps, err := ceEstimate(t.Context(), s, fr, grid)
	if err != nil || fr.note != "" {
		t.Fatalf("estimate: %v, note %q", err, fr.note)
	}
	point, err := ceFitCR2(fr, grid, s.Analysis.CILevel)
	if err != nil {
		t.Fatal(err)
	}
	b := s.Economics.Bootstrap
	boot, wantReps, err := ceBootstrap(t.Context(), fr, grid, func() []ceRow { return point }, b.Replicates, b.Seed, s.Analysis.CILevel, ceExactTeam)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2*len(grid) || len(reps) != len(wantReps) || len(reps) < b.Replicates*9/10 {
		t.Fatalf("%d rows and %d replicates, want %d and %d (of %d drawn)", len(rows), len(reps), 2*len(grid), len(wantReps), b.Replicates)
	}
	if got, want := fmt.Sprint(rows, reps), fmt.Sprint(append(point, boot...), wantReps); got != want {
		t.Errorf("rows beside the bootstrap differ from fitting first:\n%s\n%s", got, want)
	}

	d := ceTestColumns(t, s)
	seen := map[int32]bool{}
	for i := range d.n { // one participant of each team of two trusts: fewer rows than columns
		keep := d.trust[i] < 2 && !d.withdrawn[i] && !seen[d.team[i]]
		seen[d.team[i]] = seen[d.team[i]] || keep
		d.withdrawn[i] = !keep
	}
	fr = ceBuildFrame(s, d)
	if fr.note != "" {
		t.Fatalf("frame: %s", fr.note)
	}
	if _, err := ceFitCR2(fr, grid, s.Analysis.CILevel); err == nil {
		t.Fatal("the regressions were fitted with one team in a trust; the test needs a frame they cannot fit")
	}
	rows, reps, err = ceEstimate(t.Context(), s, fr, grid)
	if err != nil || rows != nil || reps != nil {
		t.Fatalf("got %d rows, %d replicates, error %v; want none", len(rows), len(reps), err)
	}
	if len(fr.cost) != 4 || !strings.HasPrefix(fr.note, "the net-benefit regression could not be fitted: ") {
		t.Errorf("%d rows, note %q", len(fr.cost), fr.note)
	}
}
