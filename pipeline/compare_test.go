package pipeline

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/compare"
	"github.com/connectingpeople/cpi/pipeline/report/study"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
	"github.com/connectingpeople/cpi/stats"
)

// compareTestParticipant is one participant of a test warehouse with its
// rguk.total scores (NaN: no score).
type compareTestParticipant struct {
	id, trust, team, arm                string
	ageBand, gender, diagnosis          string
	livingAlone                         int32
	withdrawn, interviewedB, interviewF bool
	yBase, yFU                          float64
}

func compareTestEnv(t testing.TB) warehouse.Env {
	t.Helper()
	study, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	study.Analysis.Imputations = 5 // itt_mi's figures are checked in pipeline/compare
	return warehouse.Env{Study: study, Version: "test"}
}

// compareTestAncova reads testdata/reference/ancova.csv: 158 participants
// of 10 teams with R's answers in expected.json.
func compareTestAncova(t testing.TB) ([]compareTestParticipant, map[string]int) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "reference", "ancova.csv"))
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
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var out []compareTestParticipant
	high := map[string]int{}
	for _, r := range recs[1:] {
		arm := "control"
		if r[col["arm"]] == "1" {
			arm = "intervention"
		}
		out = append(out, compareTestParticipant{
			id: r[col["study_id"]], trust: r[col["trust"]], team: r[col["team"]], arm: arm,
			ageBand: r[col["age_band"]], gender: r[col["gender"]], diagnosis: r[col["diagnosis_group"]],
			livingAlone: int32(num(r[col["living_alone"]])), interviewedB: true, interviewF: true,
			yBase: num(r[col["y_base"]]), yFU: num(r[col["y_fu"]]),
		})
		high[r[col["team"]]] = int(num(r[col["high_fidelity"]]))
	}
	return out, high
}

// compareTestWrite writes participants and scores (rguk.total) partitioned
// by trust, sorted by key, as the ingest and score stages would.
func compareTestWrite(t testing.TB, env warehouse.Env, tx *warehouse.Tx, ps []compareTestParticipant) {
	t.Helper()
	ps = append([]compareTestParticipant(nil), ps...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].id < ps[j].id })
	byTrust := map[string][]compareTestParticipant{}
	var trusts []string
	for _, p := range ps {
		if _, ok := byTrust[p.trust]; !ok {
			trusts = append(trusts, p.trust)
		}
		byTrust[p.trust] = append(byTrust[p.trust], p)
	}
	sort.Strings(trusts)
	pt, st := env.Study.Tables.Table("participants"), env.Study.Tables.Table("scores")
	for _, tr := range trusts {
		schema := warehouse.ArrowSchema(env, "participants", nil)
		tf, err := tx.CreateTableFile(schema, "participants", "trust", tr, "data")
		if err != nil {
			t.Fatal(err)
		}
		rw := warehouse.NewRowWriter(schema, tf)
		c := func(n string) int { return warehouse.ColIndex(pt, n) }
		for _, p := range byTrust[tr] {
			rw.Str(c("study_id"), p.id)
			rw.Str(c("trust"), p.trust)
			rw.Str(c("team"), p.team)
			rw.Str(c("arm"), p.arm)
			rw.NullStr(c("age_band"), p.ageBand)
			rw.NullStr(c("gender"), p.gender)
			rw.Null(c("ethnicity"))
			rw.Int32(c("living_alone"), p.livingAlone, true)
			rw.NullStr(c("diagnosis_group"), p.diagnosis)
			rw.Bool(c("withdrawn"), p.withdrawn)
			rw.Date(c("baseline_date"), 17600, p.interviewedB)
			rw.Date(c("followup_date"), 17780, p.interviewF)
			rw.Bool(c("interviewed_baseline"), p.interviewedB)
			rw.Bool(c("interviewed_followup"), p.interviewF)
			if err := rw.RowDone(); err != nil {
				t.Fatal(err)
			}
		}
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
		compareTestWriteInterviews(t, env, tx, tr, byTrust[tr])

		schema = warehouse.ArrowSchema(env, "scores", nil)
		tf, err = tx.CreateTableFile(schema, "scores", "trust", tr, "data")
		if err != nil {
			t.Fatal(err)
		}
		rw = warehouse.NewRowWriter(schema, tf)
		c = func(n string) int { return warehouse.ColIndex(st, n) }
		for _, p := range byTrust[tr] {
			for _, wave := range []string{"baseline", "followup"} { // byte order
				v, ok := p.yBase, p.interviewedB
				chg := math.NaN()
				if wave == "followup" {
					v, ok = p.yFU, p.interviewF
					chg = p.yFU - p.yBase
				}
				if !ok {
					continue
				}
				rw.Str(c("study_id"), p.id)
				rw.Str(c("wave"), wave)
				rw.Str(c("instrument"), "rguk")
				rw.Str(c("scale"), "total")
				rw.Str(c("trust"), p.trust)
				rw.Str(c("team"), p.team)
				rw.Str(c("arm"), p.arm)
				rw.Float64(c("value"), v, !math.IsNaN(v))
				rw.Int32(c("items_answered"), 27, true)
				rw.Int32(c("items_total"), 27, true)
				rw.Bool(c("prorated"), false)
				rw.Float64(c("base"), p.yBase, !math.IsNaN(p.yBase))
				rw.Float64(c("chg"), chg, !math.IsNaN(chg))
				if err := rw.RowDone(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// compareTestWriteFidelity writes the fidelity table: bands[period][team].
// compareTestWriteInterviews writes a trust's interviews rows of ps (sorted
// by id): baseline and followup, dated when interviewed.
func compareTestWriteInterviews(t testing.TB, env warehouse.Env, tx *warehouse.Tx, trust string, ps []compareTestParticipant) {
	t.Helper()
	schema := warehouse.ArrowSchema(env, "interviews", nil)
	tf, err := tx.CreateTableFile(schema, "interviews", "trust", trust, "data")
	if err != nil {
		t.Fatal(err)
	}
	rw := warehouse.NewRowWriter(schema, tf)
	c := func(n string) int { return warehouse.ColIndex(env.Study.Tables.Table("interviews"), n) }
	for _, p := range ps {
		for _, w := range []struct {
			wave string
			on   bool
			date int32
		}{{"baseline", p.interviewedB, 17600}, {"followup", p.interviewF, 17780}} {
			rw.Str(c("study_id"), p.id)
			rw.Str(c("wave"), w.wave)
			rw.Date(c("interview_date"), w.date, w.on)
			rw.Bool(c("interviewed"), w.on)
			rw.Bool(c("withdrawn"), p.withdrawn)
			rw.Str(c("trust"), p.trust)
			rw.Str(c("team"), p.team)
			rw.Str(c("arm"), p.arm)
			if err := rw.RowDone(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
}

func compareTestWriteFidelity(t testing.TB, env warehouse.Env, tx *warehouse.Tx, bands map[string]map[string]string) {
	t.Helper()
	type row struct{ team, period, band string }
	var rows []row
	for p, m := range bands {
		for team, b := range m {
			rows = append(rows, row{team, p, b})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		return compare.CmpKeys([]string{rows[i].team, rows[i].period}, []string{rows[j].team, rows[j].period}) < 0
	})
	tb := env.Study.Tables.Table("fidelity")
	c := func(n string) int { return warehouse.ColIndex(tb, n) }
	pct := map[string]float64{"high": 80, "moderate": 60, "low": 30}
	err := compare.WriteTable(env, tx, "fidelity", func(rw *warehouse.RowWriter) error {
		for _, r := range rows {
			team, _ := env.Study.Team(r.team)
			rw.Str(c("team"), r.team)
			rw.Str(c("period"), r.period)
			rw.Str(c("trust"), team.Trust)
			rw.Str(c("arm"), team.Arm)
			rw.Int32(c("n_raters"), 2, true)
			rw.Float64(c("total"), pct[r.band]*48/100, true)
			rw.Float64(c("max"), 48, true)
			rw.Float64(c("pct"), pct[r.band], true)
			rw.Str(c("band"), r.band)
			rw.Null(c("lowest_components"))
			rw.Null(c("icc2_1"))
			if err := rw.RowDone(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// compareTestEffect is a row of effects; nil pointers are nulls.
type compareTestEffect struct {
	estimate, se, df, lo, hi, p, es *float64
	nObs, nClusters                 int32
	esType, note                    string
}

func compareTestReadEffects(t *testing.T, dir string) (map[string]compareTestEffect, []string) {
	t.Helper()
	out := map[string]compareTestEffect{}
	var order []string
	err := warehouse.ScanTable(context.Background(), dir, "effects", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "analysis", "outcome", "method", "term", "estimate", "std_error", "df",
			"ci_low", "ci_high", "p_value", "n_obs", "n_clusters", "effect_size", "effect_size_type", "note")
		if err != nil {
			return err
		}
		f := func(c, i int) *float64 {
			a := cols[c].(*array.Float64)
			if a.IsNull(i) {
				return nil
			}
			v := a.Value(i)
			return &v
		}
		s := func(c, i int) string {
			a := cols[c].(*array.String)
			if a.IsNull(i) {
				return ""
			}
			return a.Value(i)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			k := s(0, i) + "/" + s(1, i) + "/" + s(2, i) + "/" + s(3, i)
			order = append(order, k)
			out[k] = compareTestEffect{
				estimate: f(4, i), se: f(5, i), df: f(6, i), lo: f(7, i), hi: f(8, i), p: f(9, i),
				nObs: cols[10].(*array.Int32).Value(i), nClusters: cols[11].(*array.Int32).Value(i),
				es: f(12, i), esType: s(13, i), note: s(14, i),
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, order
}

// compareTestRun writes the inputs into a new warehouse, runs Compare and
// returns the generation folder.
func compareTestRun(t *testing.T, env warehouse.Env, ps []compareTestParticipant, bands map[string]map[string]string) string {
	t.Helper()
	tx := testTx(t)
	compareTestWrite(t, env, tx, ps)
	if bands != nil {
		compareTestWriteFidelity(t, env, tx, bands)
	}
	if err := compare.Compare(context.Background(), env, tx); err != nil {
		t.Fatal(err)
	}
	return tx.Dir
}

// compareTestBands makes month3 and month6 bands: the teams with
// high_fidelity = 1 are "high" in month6 (the last period); month3 differs
// on purpose, so that using the wrong period changes the answer.
func compareTestBands(high map[string]int) map[string]map[string]string {
	b := map[string]map[string]string{"month3": {}, "month6": {}}
	for team, h := range high {
		b["month6"][team] = "moderate"
		b["month3"][team] = "low"
		if h == 1 {
			b["month6"][team] = "high"
		}
	}
	b["month3"]["BDCT-01"] = "high"
	b["month3"]["TEWV-01"] = "moderate"
	return b
}

type compareTestExpected struct {
	CR1, CR2, ChangeCR2, FidelityDoseCR2, WeightedCR2 compareTestCoef
	Mixed                                             struct {
		Estimate float64 `json:"estimate"`
		StdError float64 `json:"std_error"`
		ICC      float64 `json:"icc"`
	} `json:"mixed"`
	PartialEta2 float64 `json:"partial_eta2"`
	HedgesG     float64 `json:"hedges_g"`
	Propensity  struct {
		Coef         map[string]float64 `json:"coef"`
		WeightsFirst []float64          `json:"weights_first5"`
		WeightsSum   float64            `json:"weights_sum"`
		WeightsMax   float64            `json:"weights_max"`
	} `json:"propensity"`
	Balance map[string]struct {
		SMDUnweighted float64 `json:"smd_unweighted"`
		SMDWeighted   float64 `json:"smd_weighted"`
	} `json:"balance"`
}

type compareTestCoef struct {
	Estimate float64 `json:"estimate"`
	StdError float64 `json:"std_error"`
	DF       float64 `json:"df"`
	PValue   float64 `json:"p_value"`
	CILow    float64 `json:"ci_low"`
	CIHigh   float64 `json:"ci_high"`
}

func compareTestLoadExpected(t *testing.T) compareTestExpected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "reference", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		compareTestExpected
		CR1             compareTestCoef `json:"cr1"`
		CR2             compareTestCoef `json:"cr2"`
		ChangeCR2       compareTestCoef `json:"change_cr2"`
		FidelityDoseCR2 compareTestCoef `json:"fidelity_dose_cr2"`
		WeightedCR2     compareTestCoef `json:"weighted_cr2"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	e := raw.compareTestExpected
	e.CR1, e.CR2, e.ChangeCR2, e.FidelityDoseCR2, e.WeightedCR2 = raw.CR1, raw.CR2, raw.ChangeCR2, raw.FidelityDoseCR2, raw.WeightedCR2
	return e
}

// compareTestClose fails unless got is within rel (relative, with an
// absolute floor of rel for values near zero) of want.
func compareTestClose(t *testing.T, what string, got *float64, want, rel float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: null, want %.12g", what, want)
		return
	}
	if d := math.Abs(*got - want); d > rel*math.Max(math.Abs(want), 1e-2) {
		t.Errorf("%s = %.12g, want %.12g (R), difference %.3g", what, *got, want, d)
	}
}

func compareTestCheckCoef(t *testing.T, name string, got compareTestEffect, want compareTestCoef, df bool) {
	t.Helper()
	compareTestClose(t, name+" estimate", got.estimate, want.Estimate, 1e-8)
	compareTestClose(t, name+" std_error", got.se, want.StdError, 1e-8)
	if df {
		compareTestClose(t, name+" df", got.df, want.DF, 1e-6)
	}
	compareTestClose(t, name+" p_value", got.p, want.PValue, 1e-6)
	compareTestClose(t, name+" ci_low", got.lo, want.CILow, 1e-6)
	compareTestClose(t, name+" ci_high", got.hi, want.CIHigh, 1e-6)
}

// TestCompareAgainstR runs the stage on the reference data set, with six
// extra participants who must be left out (three withdrawn with complete
// scores, two without a follow-up, one never interviewed), and checks the
// effects rows against the numbers R computed (testdata/reference/
// expected.json: lm + clubSandwich + sandwich + lme4 + glm) to the
// tolerances stated there.
func TestCompareAgainstR(t *testing.T) {
	env := compareTestEnv(t)
	ps, high := compareTestAncova(t)
	extra := []compareTestParticipant{
		{id: "TEWV-X01", trust: "TEWV", team: "TEWV-01", arm: "intervention", ageBand: "18-24", gender: "male", diagnosis: "other", withdrawn: true, interviewedB: true, interviewF: true, yBase: 2, yFU: 27},
		{id: "AWP-X02", trust: "AWP", team: "AWP-02", arm: "control", ageBand: "18-24", gender: "male", diagnosis: "other", withdrawn: true, interviewedB: true, interviewF: true, yBase: 27, yFU: 0},
		{id: "EPUT-X03", trust: "EPUT", team: "EPUT-01", arm: "intervention", ageBand: "65+", gender: "female", diagnosis: "anxiety", withdrawn: true, interviewedB: true, yBase: 10, yFU: math.NaN()},
		{id: "EPUT-X04", trust: "EPUT", team: "EPUT-02", arm: "control", ageBand: "65+", gender: "female", diagnosis: "anxiety", interviewedB: true, yBase: 10, yFU: math.NaN()},
		{id: "HPFT-X05", trust: "HPFT", team: "HPFT-01", arm: "intervention", ageBand: "65+", gender: "female", diagnosis: "anxiety", interviewedB: true, yBase: 11, yFU: math.NaN()},
		{id: "HPFT-X06", trust: "HPFT", team: "HPFT-02", arm: "control", yBase: math.NaN(), yFU: math.NaN()},
	}
	dir := compareTestRun(t, env, append(ps, extra...), compareTestBands(high))
	got, order := compareTestReadEffects(t, dir)
	want := compareTestLoadExpected(t)

	// One row per analysis x outcome x method x term, sorted by key: 7
	// methods of the complete-case analyses and itt_mi, itt_delta for
	// each of 10 outcomes (csri.cost and eq5d5l.qaly among them), and the
	// mixed model's icc row for rguk.total, the only outcome with data.
	if n := 10*(7+2) + 1; len(order) != n {
		t.Errorf("%d effects rows, want %d (10 outcomes x 9 methods, 1 icc row)", len(order), n)
	}
	if !sort.StringsAreSorted(order) {
		t.Errorf("effects rows not sorted by key: %v", order)
	}

	const o = "/rguk.total/"
	cr2 := got["primary"+o+"cr2/arm_intervention"]
	compareTestCheckCoef(t, "primary cr2", cr2, want.CR2, true)
	compareTestClose(t, "primary cr2 hedges_g", cr2.es, want.HedgesG, 1e-8)
	if cr2.esType != "hedges_g" || cr2.nObs != 158 || cr2.nClusters != 10 {
		t.Errorf("primary cr2: effect_size_type %q, n_obs %d, n_clusters %d; want hedges_g, 158, 10", cr2.esType, cr2.nObs, cr2.nClusters)
	}
	if cr2.note != "dropped 3 withdrawn, 3 without follow-up" {
		t.Errorf("primary cr2 note %q", cr2.note)
	}
	cr1 := got["primary"+o+"cr1/arm_intervention"]
	compareTestCheckCoef(t, "primary cr1", cr1, want.CR1, true)
	compareTestClose(t, "primary cr1 partial_eta2", cr1.es, want.PartialEta2, 1e-8)
	if cr1.esType != "partial_eta2" {
		t.Errorf("primary cr1 effect_size_type %q", cr1.esType)
	}
	compareTestCheckCoef(t, "change cr2", got["change"+o+"cr2/arm_intervention"], want.ChangeCR2, true)
	compareTestCheckCoef(t, "fidelity_dose cr2", got["fidelity_dose"+o+"cr2/high_fidelity"], want.FidelityDoseCR2, true)
	compareTestCheckCoef(t, "weighted cr2", got["weighted"+o+"cr2/arm_intervention"], want.WeightedCR2, true)

	mixed := got["mixed"+o+"reml/arm_intervention"]
	// An optimiser on both sides: 1e-6 on the fixed effect and its SE
	// (REML variance components agree to 1e-5, README).
	compareTestClose(t, "mixed estimate", mixed.estimate, want.Mixed.Estimate, 1e-6)
	compareTestClose(t, "mixed std_error", mixed.se, want.Mixed.StdError, 1e-6)
	if wantNote := "icc=" + strconv.FormatFloat(want.Mixed.ICC, 'f', 3, 64); !strings.HasPrefix(mixed.note, wantNote+";") {
		t.Errorf("mixed note %q, want it to start with %q", mixed.note, wantNote)
	}
	// nlme's between-within df: 10 teams - 6 team-level columns.
	if mixed.df == nil || *mixed.df != 4 {
		t.Errorf("mixed df %v, want 4", mixed.df)
	}

	// The wild bootstrap has no R reference here (stats checks it); its
	// estimate and standard error are the OLS estimate and the CR1 SE.
	wild := got["wild_bootstrap"+o+"wild_webb/arm_intervention"]
	compareTestClose(t, "wild estimate", wild.estimate, want.CR1.Estimate, 1e-8)
	compareTestClose(t, "wild std_error", wild.se, want.CR1.StdError, 1e-8)
	if wild.df != nil || wild.p == nil || *wild.p <= 0 || *wild.p >= 1 || wild.lo == nil || wild.hi == nil ||
		*wild.lo >= *wild.estimate || *wild.hi <= *wild.estimate {
		t.Errorf("wild bootstrap row: df %v p %v ci %v %v", wild.df, wild.p, wild.lo, wild.hi)
	}

	// GAS has no baseline: its change row says so; outcomes without data
	// give null rows with a note, not an error.
	gas := got["change/gas.t/cr2/arm_intervention"]
	if gas.estimate != nil || !strings.Contains(gas.note, "no baseline") {
		t.Errorf("gas change row: estimate %v note %q", gas.estimate, gas.note)
	}
	q := got["primary/qpr.total/cr2/arm_intervention"]
	if q.estimate != nil || !strings.Contains(q.note, "no participants") {
		t.Errorf("qpr primary row: estimate %v note %q", q.estimate, q.note)
	}

	// Balance against R (the SMDs of expected.json). R's names become
	// name=level.
	bal := compareTestReadBalance(t, dir)
	for rName, w := range want.Balance {
		name := rName
		for _, cov := range []string{"age_band", "gender", "diagnosis_group"} {
			if strings.HasPrefix(rName, cov) {
				name = cov + "=" + strings.TrimPrefix(rName, cov)
			}
		}
		if name == "y_base" {
			name = "y_baseline"
		}
		b, ok := bal["weighted:rguk.total/"+name]
		if !ok {
			t.Errorf("balance row %s missing", name)
			continue
		}
		compareTestClose(t, "balance "+name+" smd_unweighted", b[0], w.SMDUnweighted, 1e-8)
		compareTestClose(t, "balance "+name+" smd_weighted", b[1], w.SMDWeighted, 1e-6)
	}
	if b := bal["weighted:rguk.total/diagnosis_group=anxiety"]; b[0] == nil {
		t.Errorf("balance lacks the reference level diagnosis_group=anxiety")
	}
	if b := bal["weighted:rguk.total/y_baseline"]; b[4] == nil {
		t.Errorf("balance max_weight null")
	} else {
		compareTestClose(t, "balance max_weight", b[4], want.Propensity.WeightsMax, 1e-8)
	}
}

// compareTestReadBalance returns, per "analysis/covariate", smd_unweighted,
// smd_weighted, variance_ratio, ess_intervention, max_weight.
func compareTestReadBalance(t *testing.T, dir string) map[string][5]*float64 {
	t.Helper()
	out := map[string][5]*float64{}
	err := warehouse.ScanTable(context.Background(), dir, "balance", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "analysis", "covariate", "smd_unweighted", "smd_weighted", "variance_ratio", "ess_intervention", "max_weight")
		if err != nil {
			return err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			var v [5]*float64
			for j := range v {
				a := cols[2+j].(*array.Float64)
				if a.IsValid(i) {
					x := a.Value(i)
					v[j] = &x
				}
			}
			out[cols[0].(*array.String).Value(i)+"/"+cols[1].(*array.String).Value(i)] = v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestComparePropensityModel checks the propensity model's dummy coding
// against R's glm. The study's code list puts psychosis first, R's
// alphabetical levels put anxiety first: the fitted probabilities (and so
// the weights) are the same, and the coefficients are R's reparametrised
// (ours = R's level minus R's psychosis coefficient).
func TestComparePropensityModel(t *testing.T) {
	env := compareTestEnv(t)
	ps, _ := compareTestAncova(t)
	want := compareTestLoadExpected(t)
	d := &compare.CompareData{Base: map[string][]float64{"rguk.total": nil}, Fu: map[string][]float64{"rguk.total": nil}}
	sort.Slice(ps, func(i, j int) bool { return ps[i].id < ps[j].id })
	for _, p := range ps {
		cp := compare.CmpParticipant{Id: p.id, Trust: p.trust, Team: p.team, Arm: p.arm}
		cp.SetCovariate("age_band", p.ageBand, math.NaN())
		cp.SetCovariate("gender", p.gender, math.NaN())
		cp.SetCovariate("diagnosis_group", p.diagnosis, math.NaN())
		cp.SetCovariate("living_alone", "", float64(p.livingAlone))
		d.Parts = append(d.Parts, cp)
		d.Base["rguk.total"] = append(d.Base["rguk.total"], p.yBase)
		d.Fu["rguk.total"] = append(d.Fu["rguk.total"], p.yFU)
	}
	spec, err := compare.NewPropensitySpec(env.Study, d)
	if err != nil {
		t.Fatal(err)
	}
	f := compare.BuildFrame(env.Study, d, "rguk.total", true, spec.Keep)
	_, model, left := compare.PropensityDesign(env.Study, d, f, spec)
	if strings.Join(left, ",") != "gender=non_binary,gender=other,gender=not_stated,diagnosis_group=bipolar,diagnosis_group=personality,diagnosis_group=not_stated" {
		t.Errorf("left out %v", left)
	}
	coef, fitted, _, err := stats.Logistic(compare.WithIntercept(len(f.Rows), model), f.Arm)
	if err != nil {
		t.Fatal(err)
	}
	rc := want.Propensity.Coef
	wantCoef := map[string]float64{
		"(intercept)":                rc["(Intercept)"] + rc["diagnosis_grouppsychosis"],
		"diagnosis_group=anxiety":    -rc["diagnosis_grouppsychosis"],
		"diagnosis_group=depression": rc["diagnosis_groupdepression"] - rc["diagnosis_grouppsychosis"],
		"diagnosis_group=other":      rc["diagnosis_groupother"] - rc["diagnosis_grouppsychosis"],
		"living_alone":               rc["living_alone"],
		"y_baseline":                 rc["y_base"],
		"gender=male":                rc["gendermale"],
	}
	for _, ab := range []string{"25-34", "35-44", "45-54", "55-64", "65+"} {
		wantCoef["age_band="+ab] = rc["age_band"+ab]
	}
	names := []string{"(intercept)"}
	for _, m := range model {
		names = append(names, m.Name)
	}
	if len(names) != len(wantCoef) {
		t.Fatalf("propensity columns %v, want %d", names, len(wantCoef))
	}
	for j, n := range names {
		w, ok := wantCoef[n]
		if !ok {
			t.Errorf("unexpected propensity column %s", n)
			continue
		}
		compareTestClose(t, "propensity "+n, &coef[j], w, 1e-7)
	}
	w, err := stats.ATEWeights(f.Arm, fitted)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]float64{}
	sum := 0.0
	for i, r := range f.Rows {
		byID[d.Parts[r].Id] = w[i]
		sum += w[i]
	}
	for i, id := range []string{"TEWV-P001", "TEWV-P002", "TEWV-P003", "TEWV-P004", "TEWV-P005"} {
		v := byID[id]
		compareTestClose(t, "weight "+id, &v, want.Propensity.WeightsFirst[i], 1e-8)
	}
	compareTestClose(t, "weights sum", &sum, want.Propensity.WeightsSum, 1e-8)
}

// TestCompareTooFewClusters: one team per arm gives null rows with notes
// and no error; so does a fidelity dose that is collinear with the trusts.
func TestCompareTooFewClusters(t *testing.T) {
	env := compareTestEnv(t)
	ps, high := compareTestAncova(t)
	var tewv []compareTestParticipant
	for _, p := range ps {
		if p.trust == "TEWV" {
			tewv = append(tewv, p)
		}
	}
	dir := compareTestRun(t, env, tewv, compareTestBands(high))
	got, order := compareTestReadEffects(t, dir)
	if len(order) != 90 {
		t.Errorf("%d rows, want 90 (10 outcomes x 9 methods; no icc row without a mixed fit)", len(order))
	}
	for _, k := range order {
		if !strings.Contains(k, "/rguk.total/") {
			continue
		}
		e := got[k]
		if e.estimate != nil || e.se != nil || e.p != nil {
			t.Errorf("%s: estimate %v, want null", k, *e.estimate)
		}
		want := "too few clusters: 1 intervention and 1 control teams"
		if strings.HasPrefix(k, "fidelity_dose/") {
			want = "too few clusters: 1 teams with band high in month6 and 1 without"
		}
		if !strings.HasPrefix(e.note, want) || e.nObs != int32(len(tewv)) || e.nClusters != 2 {
			t.Errorf("%s: note %q n_obs %d n_clusters %d", k, e.note, e.nObs, e.nClusters)
		}
	}

	// Both teams of TEWV and of AWP rated high: high_fidelity is constant
	// within every trust, so it is a combination of the trust dummies.
	bands := compareTestBands(high)
	bands["month6"]["TEWV-02"], bands["month6"]["AWP-02"] = "high", "high"
	dir = compareTestRun(t, env, ps, bands)
	got, _ = compareTestReadEffects(t, dir)
	fd := got["fidelity_dose/rguk.total/cr2/high_fidelity"]
	if fd.estimate != nil || !strings.HasPrefix(fd.note, "not estimable: high_fidelity is collinear with (intercept), y_baseline, trust=BDCT") {
		t.Errorf("collinear fidelity dose: estimate %v note %q", fd.estimate, fd.note)
	}
	if p := got["primary/rguk.total/cr2/arm_intervention"]; p.estimate == nil {
		t.Errorf("primary should still be fitted: %q", p.note)
	}

	// No team rated high in the last period: high_fidelity does not vary.
	for team := range bands["month6"] {
		bands["month6"][team] = "moderate"
	}
	dir = compareTestRun(t, env, ps, bands)
	got, _ = compareTestReadEffects(t, dir)
	if fd := got["fidelity_dose/rguk.total/cr2/high_fidelity"]; fd.estimate != nil || !strings.HasPrefix(fd.note, "high_fidelity does not vary") {
		t.Errorf("constant fidelity dose: note %q", fd.note)
	}
}

// TestCompareDeterministic: two runs over the same inputs write the same
// bytes (the wild bootstrap is seeded).
func TestCompareDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the comparison twice")
	}
	env := compareTestEnv(t)
	ps, high := compareTestAncova(t)
	var files [2][]byte
	for i := range files {
		dir := compareTestRun(t, env, ps, compareTestBands(high))
		for _, table := range []string{"effects", "balance", "flow"} {
			b, err := os.ReadFile(filepath.Join(dir, "tables", table, "data.parquet"))
			if err != nil {
				t.Fatal(err)
			}
			files[i] = append(files[i], b...)
		}
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Error("effects, balance and flow differ between two runs over the same inputs")
	}
}

// TestFlowAddsUp counts a hand-made interviews table whose counts are
// known: per trust x arm, recruited = baseline + not interviewed at
// baseline, and baseline = followup + withdrawn + lost; analysed and
// analysed_itt are the primary analysis's and itt_mi's populations.
func TestFlowAddsUp(t *testing.T) {
	env := compareTestEnv(t)
	// TEWV intervention: 2 followed up, 1 withdrawn after baseline, 1 lost,
	// 1 never interviewed, 1 withdrawn before any interview, 1 followed up
	// but withdrawn at follow-up (counts as withdrawn).
	// BDCT control: 1 followed up without a baseline interview (not
	// interviewed at baseline), 1 lost.
	mk := func(id, trust, team, arm string, wd, ib, ifu bool) compareTestParticipant {
		return compareTestParticipant{id: id, trust: trust, team: team, arm: arm, withdrawn: wd, interviewedB: ib, interviewF: ifu, yBase: 1, yFU: 2}
	}
	ps := []compareTestParticipant{
		mk("TEWV-a1", "TEWV", "TEWV-01", "intervention", false, true, true),
		mk("TEWV-a2", "TEWV", "TEWV-01", "intervention", false, true, true),
		mk("TEWV-a3", "TEWV", "TEWV-01", "intervention", true, true, false),
		mk("TEWV-a4", "TEWV", "TEWV-01", "intervention", false, true, false),
		mk("TEWV-a5", "TEWV", "TEWV-01", "intervention", false, false, false),
		mk("TEWV-a6", "TEWV", "TEWV-01", "intervention", true, false, false),
		mk("TEWV-a7", "TEWV", "TEWV-01", "intervention", true, true, true),
		mk("BDCT-b1", "BDCT", "BDCT-02", "control", false, false, true),
		mk("BDCT-b2", "BDCT", "BDCT-02", "control", false, true, false),
	}
	tx := testTx(t)
	compareTestWrite(t, env, tx, ps)
	if err := compare.Flow(context.Background(), env, tx); err != nil {
		t.Fatal(err)
	}
	got, err := compare.ReadFlowTable(context.Background(), env.Study, tx.Dir)
	if err != nil {
		t.Fatal(err)
	}
	waves := func(b, f int64) map[string]int64 { return map[string]int64{"baseline": b, "followup": f} }
	want := map[compare.FlowKey]compare.FlowCounts{
		// Analysed: a1 and a2 (scored at both waves, not withdrawn); ITT:
		// a1, a2 and a4 (interviewed at baseline, not withdrawn).
		{Trust: "TEWV", Arm: "intervention"}: {Recruited: 7, Baseline: 5, Followup: 2, Withdrawn: 2, Lost: 1, Analysed: 2, AnalysedITT: 3, Waves: waves(5, 2)},
		// b1 has no baseline score (not interviewed then): not analysed;
		// b2, lost, is in the ITT population.
		{Trust: "BDCT", Arm: "control"}: {Recruited: 2, Baseline: 1, Followup: 0, Withdrawn: 0, Lost: 1, AnalysedITT: 1, Waves: waves(1, 0)},
		{Trust: "TEWV", Arm: "control"}: {Waves: waves(0, 0)},
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%v: %+v, want %+v", k, got[k], w)
		}
	}
	if len(got) != 10 {
		t.Errorf("%d trust x arm groups, want the study's 10", len(got))
	}
	for k, c := range got {
		if c.Recruited != c.Baseline+c.NotBaseline() || c.Baseline != c.Followup+c.Withdrawn+c.Lost {
			t.Errorf("%v does not add up: %+v", k, c)
		}
	}
}

// TestCompareEmptyWarehouse: nothing ingested yet gives null rows with
// notes, zero flow counts for every trust x arm, and no error.
func TestCompareEmptyWarehouse(t *testing.T) {
	env := compareTestEnv(t)
	tx := testTx(t)
	if err := compare.Compare(context.Background(), env, tx); err != nil {
		t.Fatal(err)
	}
	got, order := compareTestReadEffects(t, tx.Dir)
	if len(order) != 90 {
		t.Errorf("%d effects rows, want 90 (10 outcomes x 9 methods)", len(order))
	}
	for _, k := range order {
		if e := got[k]; e.estimate != nil || e.note == "" {
			t.Errorf("%s: estimate %v note %q", k, e.estimate, e.note)
		}
	}
	flow, err := compare.ReadFlowTable(context.Background(), env.Study, tx.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(flow) != 10 {
		t.Errorf("%d flow groups, want 10", len(flow))
	}
	zero := compare.FlowCounts{Waves: map[string]int64{"baseline": 0, "followup": 0}}
	for k, c := range flow {
		if !reflect.DeepEqual(c, zero) {
			t.Errorf("%v: %+v, want zeros", k, c)
		}
	}
	var buf bytes.Buffer
	if err := study.Report(context.Background(), env, tx.Dir, &buf); err != nil {
		t.Fatalf("study report of an empty warehouse: %v", err)
	}
}

// TestComparePropensityAliased: when diagnosis_group is other exactly for
// the men, the dummy diagnosis_group=other equals gender=male, a column
// before it; R's glm drops the later aliased column and fits the rest.
// The weighted analysis is fitted (not refused naming "column 7"), its note
// names the dropped dummy by covariate and level, and its estimate and
// standard error equal those of the same design without that dummy (the
// men at the reference diagnosis instead).
func TestComparePropensityAliased(t *testing.T) {
	env := compareTestEnv(t)
	ps, high := compareTestAncova(t)
	aliased := append([]compareTestParticipant(nil), ps...)
	plain := append([]compareTestParticipant(nil), ps...)
	for i := range aliased {
		if aliased[i].gender == "male" {
			aliased[i].diagnosis = "other"
		} else if aliased[i].diagnosis == "other" {
			aliased[i].diagnosis = "psychosis"
		}
		// The same design less the aliased dummy: the men at the
		// reference level instead of other.
		plain[i].diagnosis = aliased[i].diagnosis
		if plain[i].gender == "male" {
			plain[i].diagnosis = "psychosis"
		}
	}
	got, _ := compareTestReadEffects(t, compareTestRun(t, env, aliased, compareTestBands(high)))
	want, _ := compareTestReadEffects(t, compareTestRun(t, env, plain, compareTestBands(high)))
	k := "weighted/rguk.total/cr2/arm_intervention"
	g, w := got[k], want[k]
	if g.estimate == nil || w.estimate == nil {
		t.Fatalf("weighted: estimate %v (note %q), without diagnosis %v (note %q)", g.estimate, g.note, w.estimate, w.note)
	}
	if !strings.Contains(g.note, "aliased and dropped as R's glm does (coefficient NA): diagnosis_group=other") || strings.Contains(g.note, "column") {
		t.Errorf("note %q", g.note)
	}
	if d := math.Abs(*g.estimate - *w.estimate); d > 1e-8*math.Abs(*w.estimate) {
		t.Errorf("estimate %v, without the aliased dummy %v", *g.estimate, *w.estimate)
	}
	if d := math.Abs(*g.se - *w.se); d > 1e-8**w.se {
		t.Errorf("std error %v, without the aliased dummy %v", *g.se, *w.se)
	}
}

// TestCompareMissingData: missing_data counts, per wave and arm, those
// expected (interviewed at baseline, not withdrawn) and those with the
// outcome, recounted here from the participants written; the counts add
// up (n_missing = n_expected − n_observed, percentages), only rguk.total
// has values, and itt_mi's n_obs is the expected total, its note the
// missing follow-ups and baselines it imputed, fmi and m filled.
func TestCompareMissingData(t *testing.T) {
	env := compareTestEnv(t)
	ps, high := compareTestAncova(t)
	// Some follow-ups missing, one withdrawn, one never interviewed.
	for i := range ps {
		if i%7 == 3 {
			ps[i].yFU, ps[i].interviewF = math.NaN(), false
		}
	}
	ps[0].withdrawn = true
	ps[1].interviewedB, ps[1].interviewF = false, false
	dir := compareTestRun(t, env, ps, compareTestBands(high))
	type key struct{ outcome, wave, arm string }
	type counts struct {
		exp, obs, miss int32
		pct            float64
	}
	got := map[key]counts{}
	err := warehouse.ScanTable(context.Background(), dir, "missing_data", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "outcome", "wave", "arm", "n_expected", "n_observed", "n_missing", "pct_missing")
		if err != nil {
			return err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			k := key{cols[0].(*array.String).Value(i), cols[1].(*array.String).Value(i), cols[2].(*array.String).Value(i)}
			pct := math.NaN()
			if cols[6].IsValid(i) {
				pct = cols[6].(*array.Float64).Value(i)
			}
			got[k] = counts{cols[3].(*array.Int32).Value(i), cols[4].(*array.Int32).Value(i), cols[5].(*array.Int32).Value(i), pct}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// 10 outcomes × 2 arms × 2 waves, less gas.t at baseline (eq5d5l.qaly
	// has one: its baseline is eq5d5l.index).
	if len(got) != 10*2*2-2 {
		t.Errorf("%d rows, want %d", len(got), 10*2*2-2)
	}
	total := 0
	for _, arm := range []string{"intervention", "control"} {
		var exp, obsB, obsF int32
		for _, p := range ps {
			if p.arm != arm || p.withdrawn || !p.interviewedB {
				continue
			}
			exp++
			if !math.IsNaN(p.yBase) {
				obsB++
			}
			if p.interviewF && !math.IsNaN(p.yFU) {
				obsF++
			}
		}
		total += int(exp)
		for wave, obs := range map[string]int32{"baseline": obsB, "followup": obsF} {
			c := got[key{"rguk.total", wave, arm}]
			want := counts{exp, obs, exp - obs, 100 * float64(exp-obs) / float64(exp)}
			if c.exp != want.exp || c.obs != want.obs || c.miss != want.miss || math.Abs(c.pct-want.pct) > 1e-12 {
				t.Errorf("rguk.total %s %s: %+v, want %+v", wave, arm, c, want)
			}
			if o := got[key{"swemwbs.total", wave, arm}]; o.exp != exp || o.obs != 0 || o.pct != 100 {
				t.Errorf("swemwbs.total %s %s: %+v, want %d expected, none observed", wave, arm, o, exp)
			}
		}
	}
	eff, _ := compareTestReadEffects(t, dir)
	mi := eff["itt_mi/rguk.total/cr2_mi/arm_intervention"]
	fu := got[key{"rguk.total", "followup", "intervention"}].miss + got[key{"rguk.total", "followup", "control"}].miss
	if mi.estimate == nil || int(mi.nObs) != total || !strings.Contains(mi.note, "5 imputations of "+strconv.Itoa(int(fu))+" missing values at followup") {
		t.Errorf("itt_mi: estimate %v, n_obs %d (want %d), note %q (want %d follow-ups imputed)", mi.estimate, mi.nObs, total, mi.note, fu)
	}
}
