package compare

import (
	"encoding/csv"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/connectingpeople/cpi/schemas"
	"github.com/connectingpeople/cpi/stats"
)

var updateITT = flag.Bool("update-itt", false, "rewrite testdata/reference/itt_mi/completed.csv from the imputer")

// miRefDir holds the itt_mi reference: completed.csv (written by this
// package's imputer, -update-itt), itt_mi.R and its output expected.csv.
var miRefDir = filepath.Join("..", "..", "testdata", "reference", "itt_mi")

// miTestFrame reads the shared MI reference data (testdata/reference/mi/
// mi_data.csv: 158 participants, 10 teams, 29 follow-ups and 6 baselines
// missing) into the frame itt_mi fits: strata in the study's trust order,
// clusters numbered by first appearance.
func miTestFrame(t *testing.T, s *schemas.Study) (*colFrame, []string) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "reference", "mi", "mi_data.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	num := func(s string) float64 {
		if s == "" || s == "NA" {
			return math.NaN()
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	fr := &colFrame{}
	var names []string
	seenTrust := map[string]bool{}
	clusterOf := map[string]int32{}
	var trusts []string
	var ids []string
	for i, r := range recs[1:] {
		fr.rows = append(fr.rows, int32(i))
		ids = append(ids, r[col["study_id"]])
		fr.yBase = append(fr.yBase, num(r[col["y_base"]]))
		fr.yFU = append(fr.yFU, num(r[col["y_fu"]]))
		fr.arm = append(fr.arm, num(r[col["arm"]]))
		tr, tm := r[col["trust"]], r[col["team"]]
		trusts = append(trusts, tr)
		if !seenTrust[tr] {
			seenTrust[tr] = true
			names = append(names, tr)
		}
		c, ok := clusterOf[tm]
		if !ok {
			c = int32(len(fr.teams))
			clusterOf[tm] = c
			fr.teams = append(fr.teams, tm)
		}
		fr.cluster = append(fr.cluster, c)
	}
	fr.strata = StrataOrder(s, names)
	pos := map[string]int32{}
	for i, n := range fr.strata {
		pos[n] = int32(i)
	}
	for _, tr := range trusts {
		fr.stratum = append(fr.stratum, pos[tr])
	}
	return fr, ids
}

// miTestComparison is an outcome comparison of the default study with m
// imputations, for one outcome with a baseline at its first follow-up wave.
func miTestComparison(t *testing.T, m int) *outcomeComparison {
	t.Helper()
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	s.Analysis.Imputations = m
	return &outcomeComparison{s: s, index: 0, wave: 1, waveName: s.Waves[1], outcome: s.Analysis.Outcomes[0], hasBase: true}
}

// TestITTMIReference: itt_mi's imputations of the MI reference data (M = 5,
// the default study's imputation seed) are exactly the completed data sets
// of testdata/reference/itt_mi/completed.csv, and pooling them — each set
// fitted by y_fu ~ arm + y_base + trust with CR2 by team, then Rubin's rules
// with the Satterthwaite df of the pooled variance from the mean
// Satterthwaite df (stats.SatterthwaiteMIDF) — gives R's
// figures (clubSandwich::coef_test + the recipe, itt_mi.R → expected.csv)
// to 1e-8, at δ = 0 (itt_mi) and at δ = 1.5 added to the intervention arm's
// imputed follow-ups (itt_delta).
func TestITTMIReference(t *testing.T) {
	const m = 5
	c := miTestComparison(t, m)
	f, ids := miTestFrame(t, c.s)
	type completed struct{ base, fu []float64 }
	var sets []completed
	c.onCompleted = func(_ int, base, fu []float64) {
		sets = append(sets, completed{append([]float64(nil), base...), append([]float64(nil), fu...)})
	}
	deltas := []float64{0, 1.5}
	res, info, err := c.miPool(f, deltas)
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != m || info.m != m || info.missingFU != 29 || info.missingBase != 6 {
		t.Fatalf("%d completed sets, info %+v; want %d sets, 29 follow-ups and 6 baselines imputed", len(sets), info, m)
	}
	path := filepath.Join(miRefDir, "completed.csv")
	if *updateITT {
		out, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := csv.NewWriter(out)
		_ = w.Write([]string{".imp", ".id", "study_id", "trust", "team", "arm", "y_base", "y_fu", "fu_imputed"})
		for k, set := range sets {
			for i := range f.rows {
				_ = w.Write([]string{strconv.Itoa(k + 1), strconv.Itoa(i + 1), ids[i], f.strata[f.stratum[i]], f.teams[f.cluster[i]],
					strconv.Itoa(int(f.arm[i])), strconv.FormatFloat(set.base[i], 'g', 17, 64), strconv.FormatFloat(set.fu[i], 'g', 17, 64),
					strconv.FormatBool(math.IsNaN(f.yFU[i]))})
			}
		}
		w.Flush()
		if err := w.Error(); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// The completed sets are the committed ones, bit for bit.
	recs := readCSV(t, path)
	if len(recs) != 1+m*len(f.rows) {
		t.Fatalf("%s: %d rows, want %d", path, len(recs)-1, m*len(f.rows))
	}
	for _, r := range recs[1:] {
		k, _ := strconv.Atoi(r[0])
		i, _ := strconv.Atoi(r[1])
		b, _ := strconv.ParseFloat(r[6], 64)
		y, _ := strconv.ParseFloat(r[7], 64)
		if sets[k-1].base[i-1] != b || sets[k-1].fu[i-1] != y {
			t.Fatalf("imputation %d row %d differs from %s: rerun with -update-itt and itt_mi.R", k, i, path)
		}
	}
	// R's pooled figures.
	exp := readCSV(t, filepath.Join(miRefDir, "expected.csv"))
	cols := map[string]int{}
	for i, h := range exp[0] {
		cols[h] = i
	}
	if len(exp) != 1+len(deltas) {
		t.Fatalf("expected.csv: %d rows, want %d", len(exp)-1, len(deltas))
	}
	for di, r := range exp[1:] {
		get := func(name string) float64 {
			v, err := strconv.ParseFloat(r[cols[name]], 64)
			if err != nil {
				t.Fatalf("expected.csv %s: %v", name, err)
			}
			return v
		}
		if get("delta") != deltas[di] {
			t.Fatalf("expected.csv row %d: delta %v, want %v", di+1, get("delta"), deltas[di])
		}
		p, tt := res[di].pooled, res[di].test
		for _, chk := range []struct {
			name string
			got  float64
		}{
			{"qbar", p.QBar}, {"ubar", p.UBar}, {"b", p.B}, {"t", p.T}, {"lambda", p.Lambda}, {"df_com", p.DFCom},
			{"df_m", p.DFM}, {"df_obs", p.DFObs}, {"df", p.DF}, {"std_error", tt.StdError},
			{"p_value", tt.PValue}, {"ci_low", tt.CILow}, {"ci_high", tt.CIHigh},
		} {
			want := get(chk.name)
			if d := math.Abs(chk.got-want) / math.Max(math.Abs(want), 1e-300); !(d <= 1e-8) {
				t.Errorf("delta %v %s: got %.12g, R %.12g (rel %.2g)", deltas[di], chk.name, chk.got, want, d)
			}
		}
		if p.FMI != p.Lambda || p.M != m {
			t.Errorf("delta %v: fmi %v, lambda %v, m %d", deltas[di], p.FMI, p.Lambda, p.M)
		}
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestITTDeltaZeroIsITTMI: itt_delta at δ = 0 has exactly itt_mi's pooled
// result (the same imputations), δ moves the pooled estimate by δ times
// the intervention arm's mean share of imputed values in the population
// (the model is linear and δ touches only imputed intervention follow-ups:
// the OLS arm coefficient moves by δ·(share of imputed intervention rows
// after adjusting for baseline and trust), so only the sign and
// monotonicity are asserted), and observed values never move.
func TestITTDeltaZeroIsITTMI(t *testing.T) {
	c := miTestComparison(t, 5)
	f, _ := miTestFrame(t, c.s)
	mi, _, err := c.miPool(f, []float64{0})
	if err != nil {
		t.Fatal(err)
	}
	grid := []float64{-2, -1, 0, 1.5, 2}
	res, _, err := c.miPool(f, grid)
	if err != nil {
		t.Fatal(err)
	}
	if res[2].pooled != mi[0].pooled {
		t.Errorf("δ = 0: %+v, itt_mi %+v", res[2].pooled, mi[0].pooled)
	}
	for i := 1; i < len(res); i++ {
		if !(res[i].test.Estimate > res[i-1].test.Estimate) {
			t.Errorf("estimate at δ = %v (%v) not above δ = %v (%v)", grid[i], res[i].test.Estimate, grid[i-1], res[i-1].test.Estimate)
		}
	}
	// Five δ are interpolated from the fits at 0 and ±2; each equals the
	// direct fit at that δ alone.
	for i, d := range grid {
		direct, _, err := c.miPool(f, []float64{d})
		if err != nil {
			t.Fatal(err)
		}
		a, b := res[i].test, direct[0].test
		for _, v := range [][2]float64{{a.Estimate, b.Estimate}, {a.StdError, b.StdError}, {a.DF, b.DF}, {a.PValue, b.PValue}} {
			if math.Abs(v[0]-v[1]) > 1e-9*math.Abs(v[1]) {
				t.Errorf("δ = %v: interpolated %+v, direct %+v", d, a, b)
				break
			}
		}
	}
	// The arm coefficient is linear in δ: the same slope on every step.
	d1 := (res[3].test.Estimate - res[2].test.Estimate) / 1.5
	d2 := (res[4].test.Estimate - res[3].test.Estimate) / 0.5
	if math.Abs(d1-d2) > 1e-9*math.Abs(d1) {
		t.Errorf("slopes of the estimate %v and %v differ", d1, d2)
	}
}

// TestITTMINoMissingAgreesWithCR2: with nothing missing every completed set
// is the data, so b = 0, fmi = 0 and the pooled estimate and variance are
// the complete-case CR2 fit's, with its df (DESIGN §13's rule; the
// Barnard–Rubin df would be df_com(df_com + 1)/(df_com + 3)), and so are
// the p-value and the interval.
func TestITTMINoMissingAgreesWithCR2(t *testing.T) {
	c := miTestComparison(t, 3)
	f, _ := miTestFrame(t, c.s)
	// Keep the complete rows only.
	g := &colFrame{strata: f.strata, teams: f.teams}
	for i := range f.rows {
		if math.IsNaN(f.yFU[i]) || math.IsNaN(f.yBase[i]) {
			continue
		}
		g.rows = append(g.rows, f.rows[i])
		g.yFU = append(g.yFU, f.yFU[i])
		g.yBase = append(g.yBase, f.yBase[i])
		g.arm = append(g.arm, f.arm[i])
		g.stratum = append(g.stratum, f.stratum[i])
		g.cluster = append(g.cluster, f.cluster[i])
	}
	res, _, err := c.miPool(g, []float64{0})
	if err != nil {
		t.Fatal(err)
	}
	fit, err := stats.OLS(newColDesign(g, TermArm, g.arm, true).dense(), g.yFU, nil)
	if err != nil {
		t.Fatal(err)
	}
	cr2, err := fit.CR2(g.clusterInts())
	if err != nil {
		t.Fatal(err)
	}
	p := res[0].pooled
	dfc := cr2.DF[1]
	if p.B != 0 || p.FMI != 0 || math.Abs(p.QBar-cr2.Coef[1]) > 1e-10*math.Abs(cr2.Coef[1]) ||
		math.Abs(p.T-cr2.VCov.At(1, 1)) > 1e-9*cr2.VCov.At(1, 1) ||
		math.Abs(p.DF-dfc) > 1e-9*dfc {
		t.Errorf("pooled %+v; CR2 estimate %v, variance %v, df %v", p, cr2.Coef[1], cr2.VCov.At(1, 1), dfc)
	}
	want, got := cr2.Test(1, c.level()), res[0].test
	for _, x := range [][2]float64{{got.PValue, want.PValue}, {got.CILow, want.CILow}, {got.CIHigh, want.CIHigh}} {
		if math.Abs(x[0]-x[1]) > 1e-8*math.Max(1, math.Abs(x[1])) {
			t.Errorf("pooled test %+v, CR2 fit's %+v", got, want)
			break
		}
	}
	if n := len(g.rows); n != 158-29-6 {
		t.Errorf("%d complete rows, want %d", n, 158-29-6)
	}
}

// TestITTDeltaReusesITTMI: with itt_delta in the study's analyses, itt_mi's
// call imputes once (M completed sets) and fits itt_delta's points too;
// itt_delta's call then imputes nothing and its pooled results equal, bit
// for bit, those of a comparison that imputes afresh for itt_delta alone.
// itt_mi's own result is the same whether or not itt_delta follows.
func TestITTDeltaReusesITTMI(t *testing.T) {
	const m = 6
	c := miTestComparison(t, m)
	if !slices.Contains(c.s.Analysis.Analyses, AnalysisITTDelta) {
		t.Fatal("the default study does not run itt_delta")
	}
	f, _ := miTestFrame(t, c.s)
	sets := 0
	c.onCompleted = func(int, []float64, []float64) { sets++ }
	mi, _, err := c.miPool(f, []float64{0})
	if err != nil {
		t.Fatal(err)
	}
	if sets != m {
		t.Fatalf("itt_mi imputed %d sets, want %d", sets, m)
	}
	sd, err := observedSD(f)
	if err != nil {
		t.Fatal(err)
	}
	var grid []float64
	for _, g := range c.s.Analysis.DeltaGrid {
		grid = append(grid, g*sd)
	}
	got, _, err := c.miPool(f, grid)
	if err != nil {
		t.Fatal(err)
	}
	if sets != m {
		t.Errorf("itt_delta imputed again: %d sets in all, want %d", sets, m)
	}
	fresh := miTestComparison(t, m)
	want, _, err := fresh.miPool(f, grid)
	if err != nil {
		t.Fatal(err)
	}
	alone := miTestComparison(t, m)
	alone.s.Analysis.Analyses = []string{AnalysisITTMI}
	miAlone, _, err := alone.miPool(f, []float64{0})
	if err != nil {
		t.Fatal(err)
	}
	if mi[0].test != miAlone[0].test {
		t.Errorf("itt_mi with itt_delta %+v, alone %+v", mi[0].test, miAlone[0].test)
	}
	for i := range grid {
		if got[i].test != want[i].test || got[i].pooled != want[i].pooled {
			t.Errorf("delta %v: reused %+v, fresh %+v", grid[i], got[i].test, want[i].test)
		}
	}
}

// TestITTMIClipsToScaleRange: imputed values are clipped to the range the
// scale can take (rguk.total: 27 items scored 0/1, so 0 to 27), not to the
// observed range of the reference data (−0.24 to 29.32 at follow-up): with
// M = 5 one imputed follow-up sits at 0 and one at 27, and none is outside;
// for an outcome without a range in the study definition the observed range
// is the limit (the same imputation goes to −0.24 and above 27).
func TestITTMIClipsToScaleRange(t *testing.T) {
	run := func(outcome string) (lo, hi float64) {
		c := miTestComparison(t, 5)
		c.outcome = outcome
		f, _ := miTestFrame(t, c.s)
		lo, hi = math.Inf(1), math.Inf(-1)
		c.onCompleted = func(_ int, _, fu []float64) {
			for i, v := range fu {
				if math.IsNaN(f.yFU[i]) {
					lo, hi = min(lo, v), max(hi, v)
				}
			}
		}
		if _, _, err := c.miPool(f, []float64{0}); err != nil {
			t.Fatal(err)
		}
		return lo, hi
	}
	if lo, hi := run("rguk.total"); lo != 0 || hi != 27 {
		t.Errorf("rguk.total: imputed follow-ups from %v to %v, want exactly 0 to 27 (clipped at the scale's range)", lo, hi)
	}
	if lo, hi := run("unranged.y"); lo != -0.24 || !(hi > 27) {
		t.Errorf("an outcome without a range: imputed follow-ups from %v to %v, want −0.24 (the observed minimum) to above 27", lo, hi)
	}
}
