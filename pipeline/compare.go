package pipeline

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/connectingpeople/cpi/schemas"
	"github.com/connectingpeople/cpi/stats"
)

// The analyses of the analysis plan and the methods each reports (DESIGN §9).
const (
	analysisPrimary      = "primary"
	analysisWild         = "wild_bootstrap"
	analysisMixed        = "mixed"
	analysisChange       = "change"
	analysisWeighted     = "weighted"
	analysisFidelityDose = "fidelity_dose"

	termArm          = "arm_intervention"
	termHighFidelity = "high_fidelity"
)

// analysisMethods lists each analysis's methods, one effects row each.
var analysisMethods = map[string][]string{
	analysisPrimary:      {"cr2", "cr1"},
	analysisWild:         {"wild_webb"},
	analysisMixed:        {"reml"},
	analysisChange:       {"cr2"},
	analysisWeighted:     {"cr2"},
	analysisFidelityDose: {"cr2"},
}

// Compare is the comparison stage (`cpi compare`): it fits every analysis of
// the study's analysis plan (DESIGN §9) to every outcome and writes the
// tables effects, balance and flow (all unpartitioned, sorted by their keys).
//
// It reads participants, scores (the outcomes' values at the baseline wave,
// the first, and the follow-up wave, the last) and fidelity (the band of
// each team in the last rating period).
//
// Population: the complete cases of each outcome — participants with the
// outcome at baseline and follow-up (follow-up only for an outcome without a
// baseline, such as gas.t) — less anyone withdrawn, anyone without a team or
// trust, and anyone outside the first two arms; a row's note counts who was
// dropped and why ("dropped 8 without follow-up, 3 withdrawn").
// Clusters are teams, strata trusts, coded by treatment contrasts with the
// first trust (in study order) present as reference. The design columns are
// the intercept, the term (arm_intervention = 1 for the study's intervention
// arm), y_baseline, then the trust dummies.
//
// Analyses and methods (one effects row per analysis × outcome × method ×
// term):
//   - primary: y_fu ~ arm + y_baseline + trust by OLS; method cr2 (CR2
//     standard error, Satterthwaite df; clubSandwich) and cr1 (CR1, t with
//     G − 1 df; sandwich::vcovCL type HC1).
//   - wild_bootstrap: the same model, method wild_webb: wild cluster
//     restricted bootstrap-t with Webb weights, analysis.bootstrap.draws
//     draws from a PCG source seeded with (analysis.bootstrap.seed, index of
//     the outcome in analysis.outcomes); std_error is the CR1 standard
//     error, df is null, the interval comes from test inversion.
//   - mixed: the same fixed effects with a random intercept per team by
//     REML (lme4's estimate and SE), method reml. The t reference has nlme's
//     between-within degrees of freedom, G minus the number of columns
//     constant within every team (Pinheiro & Bates 2000, §4.2.2). The note
//     gives the ICC ("icc=0.119") and says when the fit is on the boundary.
//   - change: (y_fu − y_base) ~ arm + trust, cr2. Skipped for an outcome
//     without a baseline: a row with a null estimate and a note.
//   - weighted: the primary model by WLS with stabilised ATE weights from a
//     logistic propensity model of the intervention arm on
//     analysis.propensity_covariates and y_baseline, cr2. Categorical
//     covariates are dummies by treatment contrasts with the first level of
//     the study's code list present as reference; a dummy without variation
//     is left out and named in the note; a covariate nobody has is left out
//     and named; participants missing a used covariate are dropped.
//   - fidelity_dose: y_fu ~ high_fidelity + y_baseline + trust, cr2, where
//     high_fidelity = 1 for a team whose band in the last rating period is
//     the first (highest) band; participants of teams without a band in that
//     period are dropped.
//
// Effect sizes: every row has Hedges' g (effect_size_type hedges_g: the
// estimate over the pooled SD of the follow-up outcome between the two
// groups of the term, with the small-sample factor J; stats.HedgesG) except
// the primary/cr1 row, which has the pilot study's partial η² from the
// classical OLS t and the residual degrees of freedom (partial_eta2).
//
// balance has, for the weighted analysis of each outcome (analysis
// "weighted:<outcome>"), every level of each categorical covariate present
// ("gender=male"), each numeric covariate and y_baseline: unweighted arm
// means, SMD before and after weighting, the weighted variance ratio, Kish's
// effective sample sizes of the arms and the largest weight.
//
// flow is written by Flow.
//
// Data problems never fail the stage: too few clusters (fewer than two teams
// on either side of the term), a term that does not vary, a term collinear
// with the other columns, no participants, a failed fit — each gives rows
// with null estimates and a note saying why. The stage fails on an analysis
// plan it cannot carry out (an unknown analysis, outcome or covariate), on
// unreadable tables and on cancellation.
func Compare(ctx context.Context, env Env, tx *Tx) error {
	s := env.Study
	if err := checkAnalysisPlan(s); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	task := env.Progress.Start("compare", "analyses", int64(len(s.Analysis.Outcomes)*len(s.Analysis.Analyses)))
	defer task.Done()
	d, err := readCompareData(ctx, env, tx.Dir, s.Analysis.Outcomes)
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	ps, err := newPropensitySpec(s, d)
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	var effects []effectRow
	var balance []balanceRow
	for oi, outcome := range s.Analysis.Outcomes {
		c := &outcomeComparison{s: s, d: d, ps: ps, index: oi, outcome: outcome, hasBase: outcomeHasBaseline(s, outcome)}
		for _, a := range s.Analysis.Analyses {
			if err := ctx.Err(); err != nil {
				return err
			}
			rows, bal := c.analyse(a)
			effects = append(effects, rows...)
			balance = append(balance, bal...)
			task.Add(1)
		}
		env.log().Debug("compare", "outcome", outcome)
	}
	if err := writeEffects(env, tx, effects); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if err := writeBalance(env, tx, balance); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	return Flow(ctx, env, tx)
}

// checkAnalysisPlan refuses a plan the stage cannot carry out.
func checkAnalysisPlan(s *schemas.Study) error {
	for _, a := range s.Analysis.Analyses {
		if _, ok := analysisMethods[a]; !ok {
			return fmt.Errorf("analysis.analyses: unknown analysis %q", a)
		}
	}
	for _, o := range s.Analysis.Outcomes {
		inst, scale, ok := outcomeName(o)
		if !ok {
			return fmt.Errorf("analysis.outcomes: %q is not instrument.scale", o)
		}
		in, ok := s.Instrument(inst)
		if !ok || !slices.ContainsFunc(in.Scales, func(sc schemas.Scale) bool { return sc.Name == scale }) {
			return fmt.Errorf("analysis.outcomes: %q is not a scale of the study's instruments", o)
		}
	}
	if len(s.Arms) < 2 {
		return fmt.Errorf("arms: need an intervention and a control arm")
	}
	return nil
}

// effectRow is one row of effects; NaN stands for null.
type effectRow struct {
	analysis, outcome, method, term             string
	estimate, stdError, df, ciLow, ciHigh, pVal float64
	nObs, nClusters                             int
	effectSize                                  float64
	effectSizeType, note                        string
}

// balanceRow is one row of balance; NaN stands for null.
type balanceRow struct {
	analysis, covariate                string
	meanI, meanC, smdU, smdW, varRatio float64
	essI, essC, maxWeight              float64
}

// outcomeComparison runs the analyses of one outcome.
type outcomeComparison struct {
	s       *schemas.Study
	d       *compareData
	ps      *propensitySpec
	index   int
	outcome string
	hasBase bool
}

func (c *outcomeComparison) level() float64 {
	if l := c.s.Analysis.CILevel; l > 0 && l < 1 {
		return l
	}
	return 0.95
}

// rows makes one row per method of the analysis, all null, with a note.
func (c *outcomeComparison) nullRows(analysis, term string, n, g int, notes ...string) []effectRow {
	var out []effectRow
	for _, m := range analysisMethods[analysis] {
		out = append(out, effectRow{
			analysis: analysis, outcome: c.outcome, method: m, term: term,
			estimate: math.NaN(), stdError: math.NaN(), df: math.NaN(), ciLow: math.NaN(), ciHigh: math.NaN(),
			pVal: math.NaN(), effectSize: math.NaN(), nObs: n, nClusters: g, note: joinNotes(notes...),
		})
	}
	return out
}

func joinNotes(notes ...string) string {
	var keep []string
	for _, n := range notes {
		if n != "" {
			keep = append(keep, n)
		}
	}
	return strings.Join(keep, "; ")
}

// analyse fits one analysis of the outcome: its effects rows and, for the
// weighted analysis, its balance rows.
func (c *outcomeComparison) analyse(analysis string) ([]effectRow, []balanceRow) {
	s, d := c.s, c.d
	term := termArm
	if analysis == analysisFidelityDose {
		term = termHighFidelity
	}
	if analysis == analysisChange && !c.hasBase {
		return c.nullRows(analysis, term, 0, 0, c.outcome+" has no baseline, so no change from baseline"), nil
	}
	var keep func(p *cmpParticipant) string
	switch analysis {
	case analysisFidelityDose:
		keep = func(p *cmpParticipant) string {
			if _, ok := d.bands[p.team]; !ok {
				return "in a team without a fidelity band"
			}
			return ""
		}
	case analysisWeighted:
		keep = c.ps.keep
	}
	f := buildFrame(s, d, c.outcome, c.hasBase, keep)
	n, g := len(f.rows), len(f.teams)
	dropped := f.dropNote()

	x := f.arm
	if analysis == analysisFidelityDose {
		x = make([]float64, n)
		high := s.Fidelity.Bands[0].Name
		for i, r := range f.rows {
			if d.bands[d.parts[r].team] == high {
				x[i] = 1
			}
		}
	}
	y := f.yFU
	withBase := c.hasBase
	if analysis == analysisChange {
		y = make([]float64, n)
		for i := range y {
			y[i] = f.yFU[i] - f.yBase[i]
		}
		withBase = false
	}

	var weights []float64
	var bal []balanceRow
	var weightNote string
	if analysis == analysisWeighted {
		weights, bal, weightNote = c.weights(f)
	}

	if note := c.check(analysis, f, x); note != "" {
		return c.nullRows(analysis, term, n, g, note, weightNote, dropped), bal
	}
	des := linearDesign(s, f, term, x, withBase)
	if _, k := des.x.Dims(); n <= k {
		return c.nullRows(analysis, term, n, g, fmt.Sprintf("too few participants: %d for %d coefficients", n, k), weightNote, dropped), bal
	}
	if collinear(des.x, 1) {
		others := slices.Clone(des.names[:1])
		others = append(others, des.names[2:]...)
		return c.nullRows(analysis, term, n, g, fmt.Sprintf("not estimable: %s is collinear with %s", term, strings.Join(others, ", ")), weightNote, dropped), bal
	}
	if analysis == analysisWeighted && weights == nil {
		return c.nullRows(analysis, term, n, g, weightNote, dropped), bal
	}

	base := effectRow{analysis: analysis, outcome: c.outcome, term: term, nObs: n, nClusters: g}
	hedges := func(est float64) (float64, string) {
		es, err := stats.HedgesG(est, f.yFU, x)
		if err != nil {
			return math.NaN(), "effect size: " + err.Error()
		}
		return es, ""
	}
	level := c.level()
	switch analysis {
	case analysisMixed:
		fit, err := stats.MixedREML(des.x, y, f.cluster)
		if err != nil {
			return c.nullRows(analysis, term, n, g, "fit failed: "+err.Error(), dropped), nil
		}
		row := base
		row.method = "reml"
		df := float64(g - betweenColumns(des.x, f.cluster))
		notes := []string{formatICC(fit.ICC)}
		if fit.Boundary {
			notes = append(notes, "boundary fit: team variance estimated as 0, fixed effects equal OLS")
		}
		if df > 0 {
			row.setTest(stats.TTest(fit.Coef[1], fit.StdError[1], df, level))
		} else {
			row.setTest(stats.CoefTest{Estimate: fit.Coef[1], StdError: fit.StdError[1], DF: math.NaN(), PValue: math.NaN(), CILow: math.NaN(), CIHigh: math.NaN()})
			notes = append(notes, "no between-team degrees of freedom left for a t reference")
		}
		es, esNote := hedges(row.estimate)
		row.effectSize, row.effectSizeType = es, "hedges_g"
		row.note = joinNotes(append(notes, esNote, dropped)...)
		return []effectRow{row}, nil
	case analysisWild:
		rng := rand.New(rand.NewPCG(c.s.Analysis.Bootstrap.Seed, uint64(c.index)))
		draws := c.s.Analysis.Bootstrap.Draws
		if draws <= 0 {
			draws = 9999
		}
		res, err := stats.WildClusterBootstrap(des.x, y, nil, f.cluster, 1, stats.WildConfig{Draws: draws, Level: level}, rng)
		if err != nil {
			return c.nullRows(analysis, term, n, g, "fit failed: "+err.Error(), dropped), nil
		}
		row := base
		row.method = "wild_webb"
		row.setTest(stats.CoefTest{Estimate: res.Estimate, StdError: res.StdError, DF: math.NaN(), PValue: res.PValue, CILow: res.CILow, CIHigh: res.CIHigh})
		es, esNote := hedges(row.estimate)
		row.effectSize, row.effectSizeType = es, "hedges_g"
		row.note = joinNotes(fmt.Sprintf("%d draws, CR1 standard error", res.Draws), esNote, dropped)
		return []effectRow{row}, nil
	}

	fit, err := stats.OLS(des.x, y, weights)
	if err != nil {
		return c.nullRows(analysis, term, n, g, "fit failed: "+err.Error(), weightNote, dropped), bal
	}
	cr2, err := fit.CR2(f.cluster)
	if err != nil {
		return c.nullRows(analysis, term, n, g, "fit failed: "+err.Error(), weightNote, dropped), bal
	}
	row := base
	row.method = "cr2"
	row.setTest(cr2.Test(1, level))
	es, esNote := hedges(row.estimate)
	row.effectSize, row.effectSizeType = es, "hedges_g"
	row.note = joinNotes(weightNote, esNote, dropped)
	out := []effectRow{row}
	if analysis == analysisPrimary {
		row1 := base
		row1.method = "cr1"
		t1, err := fit.CR1Test(f.cluster, 1, level)
		if err != nil {
			row1 = c.nullRows(analysis, term, n, g, "fit failed: "+err.Error(), dropped)[1]
		} else {
			row1.setTest(t1)
			row1.effectSize = stats.PartialEta2(fit.CoefTest(1, level).T, float64(fit.DFResid))
			row1.effectSizeType = "partial_eta2"
			row1.note = joinNotes(fmt.Sprintf("df = G - 1 = %d", g-1), dropped)
		}
		out = append(out, row1)
	}
	return out, bal
}

func (r *effectRow) setTest(t stats.CoefTest) {
	r.estimate, r.stdError, r.df = t.Estimate, t.StdError, t.DF
	r.ciLow, r.ciHigh, r.pVal = t.CILow, t.CIHigh, t.PValue
}

// check is the analysis plan's check before fitting: participants, a term
// that varies, at least two clusters on each side of the term. It returns
// why the model cannot be fitted, or "".
func (c *outcomeComparison) check(analysis string, f *frame, x []float64) string {
	if len(f.rows) == 0 {
		return "no participants with " + c.outcome + " in the analysis population"
	}
	one, zero := f.clustersByLevel(x)
	if analysis == analysisFidelityDose {
		high := c.s.Fidelity.Bands[0].Name
		if one == 0 || zero == 0 {
			return fmt.Sprintf("high_fidelity does not vary: %d teams with band %s in %s, %d without", one, high, c.d.lastPeriod, zero)
		}
		if one < 2 || zero < 2 {
			return fmt.Sprintf("too few clusters: %d teams with band %s in %s and %d without, need at least two of each", one, high, c.d.lastPeriod, zero)
		}
		return ""
	}
	if one < 2 || zero < 2 {
		return fmt.Sprintf("too few clusters: %d %s and %d %s teams, need at least two per arm", one, c.s.Arms[0], zero, c.s.Arms[1])
	}
	return ""
}

// weights fits the propensity model of the frame and returns the stabilised
// ATE weights (nil when the model could not be fitted), the balance rows and
// a note on covariates left out or a failed fit.
func (c *outcomeComparison) weights(f *frame) ([]float64, []balanceRow, string) {
	n := len(f.rows)
	notes := slices.Clone(c.ps.notes)
	if n == 0 {
		return nil, nil, joinNotes(notes...)
	}
	balCols, model, left := propensityDesign(c.s, c.d, f, c.ps)
	if len(left) > 0 {
		notes = append(notes, "propensity: left out without variation: "+strings.Join(left, ", "))
	}
	_, ps, _, err := stats.Logistic(withIntercept(n, model), f.arm)
	var w []float64
	if err == nil {
		w, err = stats.ATEWeights(f.arm, ps)
	}
	if err != nil {
		notes = append(notes, "propensity model failed: "+err.Error())
		w = nil
	}
	name := analysisWeighted + ":" + c.outcome
	essI, essC, maxW := math.NaN(), math.NaN(), math.NaN()
	if w != nil {
		var wi, wc []float64
		for i, v := range w {
			if f.arm[i] == 1 {
				wi = append(wi, v)
			} else {
				wc = append(wc, v)
			}
		}
		essI, essC, maxW = stats.KishESS(wi), stats.KishESS(wc), slices.Max(w)
	}
	var rows []balanceRow
	for _, col := range balCols {
		r := balanceRow{analysis: name, covariate: col.name, essI: essI, essC: essC, maxWeight: maxW}
		r.meanI, r.meanC = armMean(col.x, f.arm, 1), armMean(col.x, f.arm, 0)
		r.smdU = orNaN(stats.SMD(col.x, f.arm, nil))
		r.smdW, r.varRatio = math.NaN(), math.NaN()
		if w != nil {
			r.smdW = orNaN(stats.SMD(col.x, f.arm, w))
			r.varRatio = orNaN(stats.VarianceRatio(col.x, f.arm, w))
		}
		rows = append(rows, r)
	}
	return w, rows, joinNotes(notes...)
}

func orNaN(v float64, err error) float64 {
	if err != nil {
		return math.NaN()
	}
	return v
}

func armMean(x, arm []float64, a float64) float64 {
	sum, n := 0.0, 0
	for i, v := range x {
		if arm[i] == a {
			sum += v
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// writeEffects writes the effects table sorted by its key.
func writeEffects(env Env, tx *Tx, rows []effectRow) error {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		return cmpKeys([]string{a.analysis, a.outcome, a.method, a.term}, []string{b.analysis, b.outcome, b.method, b.term}) < 0
	})
	tb := env.Study.Tables.Table("effects")
	col := func(name string) int { return colIndex(tb, name) }
	return writeTable(env, tx, "effects", func(rw *RowWriter) error {
		for _, r := range rows {
			rw.Str(col("analysis"), r.analysis)
			rw.Str(col("outcome"), r.outcome)
			rw.Str(col("method"), r.method)
			rw.Str(col("term"), r.term)
			optFloat(rw, col("estimate"), r.estimate)
			optFloat(rw, col("std_error"), r.stdError)
			optFloat(rw, col("df"), r.df)
			optFloat(rw, col("ci_low"), r.ciLow)
			optFloat(rw, col("ci_high"), r.ciHigh)
			optFloat(rw, col("p_value"), r.pVal)
			rw.Int32(col("n_obs"), int32(r.nObs), true)
			rw.Int32(col("n_clusters"), int32(r.nClusters), true)
			optFloat(rw, col("effect_size"), r.effectSize)
			if math.IsNaN(r.effectSize) {
				rw.Null(col("effect_size_type"))
			} else {
				rw.NullStr(col("effect_size_type"), r.effectSizeType)
			}
			rw.NullStr(col("note"), r.note)
			if err := rw.RowDone(); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeBalance writes the balance table sorted by its key.
func writeBalance(env Env, tx *Tx, rows []balanceRow) error {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		return cmpKeys([]string{a.analysis, a.covariate}, []string{b.analysis, b.covariate}) < 0
	})
	tb := env.Study.Tables.Table("balance")
	col := func(name string) int { return colIndex(tb, name) }
	return writeTable(env, tx, "balance", func(rw *RowWriter) error {
		for _, r := range rows {
			rw.Str(col("analysis"), r.analysis)
			rw.Str(col("covariate"), r.covariate)
			optFloat(rw, col("mean_intervention"), r.meanI)
			optFloat(rw, col("mean_control"), r.meanC)
			optFloat(rw, col("smd_unweighted"), r.smdU)
			optFloat(rw, col("smd_weighted"), r.smdW)
			optFloat(rw, col("variance_ratio"), r.varRatio)
			optFloat(rw, col("ess_intervention"), r.essI)
			optFloat(rw, col("ess_control"), r.essC)
			optFloat(rw, col("max_weight"), r.maxWeight)
			if err := rw.RowDone(); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeTable rewrites an unpartitioned table in one file.
func writeTable(env Env, tx *Tx, name string, fill func(rw *RowWriter) error) error {
	if err := os.RemoveAll(tx.Path("tables", name)); err != nil {
		return fmt.Errorf("table %s: %w", name, err)
	}
	schema := tableSchema(env, name, nil)
	tf, err := tx.CreateTableFile(schema, name, "", "", "data")
	if err != nil {
		return err
	}
	rw := NewRowWriter(schema, tf)
	if err := fill(rw); err != nil {
		rw.Abort()
		return fmt.Errorf("table %s: %w", name, err)
	}
	if err := rw.Close(); err != nil {
		return fmt.Errorf("table %s: %w", name, err)
	}
	return nil
}

// optFloat appends v, or null when v is NaN or infinite.
func optFloat(rw *RowWriter, col int, v float64) {
	rw.Float64(col, v, !math.IsNaN(v) && !math.IsInf(v, 0))
}

// cmpKeys compares two keys column by column in byte order.
func cmpKeys(a, b []string) int {
	for i := range a {
		if c := strings.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}
