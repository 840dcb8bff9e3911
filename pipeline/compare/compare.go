package compare

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/connectingpeople/cpi/pipeline/compare/describe"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
	"github.com/connectingpeople/cpi/stats"
)

// TermArm is the term of the arm: the intervention arm against control.
const TermArm = "arm_intervention"

// Compare is the comparison stage (`cpi compare`): it fits every analysis of
// the study's analysis plan (DESIGN §9; the analyses of Registry named in
// analysis.analyses) to every outcome at every follow-up wave (every wave
// after the first, s.FollowupWaves(): y at that wave against y at the
// first) and writes the tables effects, balance, trust_effects,
// descriptives, service_use, missing_data, tipping_point and flow
// (all unpartitioned, sorted by their keys). The primary estimate is the
// primary analysis at s.PrimaryWave().
//
// It reads participants, scores (the outcomes' values at every wave) and
// fidelity (the band of each team in the last rating period, used at every
// wave).
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
// Analyses and methods (one effects row per analysis × outcome × wave ×
// method × term; each analysis is a file analysis_<name>.go, see Analysis;
// "y_fu" below is the outcome at the wave):
//   - primary: y_fu ~ arm + y_baseline + trust by OLS; method cr2 (CR2
//     standard error, Satterthwaite df; clubSandwich) and cr1 (CR1, t with
//     G − 1 df; sandwich::vcovCL type HC1).
//   - wild_bootstrap: the same model, method wild_webb: wild cluster
//     restricted bootstrap-t with Webb weights, analysis.bootstrap.draws
//     draws from a PCG source seeded with (analysis.bootstrap.seed, index of
//     the outcome in analysis.outcomes, plus the number of outcomes times
//     the wave's position among the follow-up waves); std_error is the CR1 standard
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
// balance has, for the weighted analysis of each outcome at each wave
// (analysis "weighted:<outcome>", wave), every level of each categorical covariate present
// ("gender=male"), each numeric covariate and y_baseline: unweighted arm
// means, SMD before and after weighting, the weighted variance ratio, Kish's
// effective sample sizes of the arms and the largest weight, and the
// participants of each arm having the covariate (n_intervention, n_control:
// for a level or a 0/1 covariate those with it, else those with a value).
//
//   - itt_mi and itt_delta: intention to treat by multiple imputation and
//     its δ-adjusted sensitivity analysis (analysis_itt_mi.go,
//     analysis_itt_delta.go; method cr2_mi, with effects.fmi and effects.m);
//     missing_data counts the missing values of their population
//     (package describe) and tipping_point holds itt_delta's grid.
//
// Before fitting, beside the counts of teams per side of the term, the
// stage counts the teams that inform the term once trusts are absorbed
// (those in a trust with teams on both sides) and refuses below two per
// side; a constant response, or one the model fits exactly, gives null
// rows with a note; a column aliased in an OLS model is dropped as R's lm
// does and named by covariate and level; the weighted analysis notes a
// covariate level present in one arm only (positivity). The mixed model's
// ICC is a row of its own (term icc).
//
// trust_effects has the arm effect within each trust for every outcome at
// every wave (method cr2_by_trust, see trustEffects).
//
// flow is written by Flow.
//
// Scale: the stage reads the columns it needs (strings as dictionary codes)
// into plain slices, one entry per participant, and fits every model from
// per-team sufficient statistics (stats.ClusterSums, SuffOLS, CR2, the wild
// bootstrap, SuffMixedREML), the propensity model from covariate-pattern
// counts (stats.LogisticPatterns) and the balance table from per-arm sums:
// memory is the participants' columns, one frame at a time and O(G·K²) per
// model, never an N × K design. A model the sums cannot settle (a term that
// may be collinear, an aliased column, a failed fit) is fitted as before,
// from its design matrix (compare_fit.go), so its notes are unchanged.
// The analyses of each population of an outcome at a wave (a lane) are
// fitted on one of two goroutines; what needs no fit (flow, service_use,
// descriptives) is made on another beside the reading and the analyses;
// the first error on either side stops the other.
//
// Data problems never fail the stage: too few clusters (fewer than two teams
// on either side of the term), a term that does not vary, a term collinear
// with the other columns, no participants, a failed fit — each gives rows
// with null estimates and a note saying why. The stage fails on an analysis
// plan it cannot carry out (an unknown analysis, outcome or covariate), on
// unreadable tables and on cancellation.
func Compare(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
	s := env.Study
	if err := checkAnalysisPlan(s); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	var analyses []Analysis
	var tables []TableAnalysis
	for _, name := range s.Analysis.Analyses {
		a, _ := Lookup(name) // checked by checkAnalysisPlan
		if ta, ok := a.(TableAnalysis); ok {
			tables = append(tables, ta)
			continue
		}
		analyses = append(analyses, a)
	}
	waves := s.FollowupWaves()
	task := env.Progress.Start("compare", "analyses", int64(len(s.Analysis.Outcomes)*len(waves)*len(analyses)))
	defer task.Done()
	// The summaries that need nothing of the fits (the flow's pass over
	// interviews, service_use from service_sums, descriptives) are made
	// beside the reading and the analyses; a failure there stops the
	// analyses with its error.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	side := describe.Start(ctx, s, tx.Dir, cancel)
	defer side.Stop()
	d, err := readCompareColumns(ctx, env, tx.Dir, s.Analysis.Outcomes)
	if err != nil {
		return fmt.Errorf("compare: %w", causeOf(ctx, err))
	}
	cols := d.describeColumns()
	ps, err := newPropensitySpecCols(s, d)
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	side.Columns(cols)
	d.ids = nil // read: no longer needed
	// Lanes: the analyses of each population, the complete cases' (and
	// trust_effects) first. A lane of an outcome at a wave has frames and
	// sums of its own, so `workers` goroutines (each with its own frame
	// pool) fit the lanes, then the table analyses (cost_effectiveness)
	// run; rows are gathered in the plan's order.
	lanes, laneOf := [][]int{nil}, map[string]int{completeCases.Key: 0}
	for ai, a := range analyses {
		key := a.Population().Key
		if a.Population().CompleteLane {
			key = completeCases.Key
		}
		l, ok := laneOf[key]
		if !ok {
			l, laneOf[key] = len(lanes), len(lanes)
			lanes = append(lanes, nil)
		}
		lanes[l] = append(lanes[l], ai)
	}
	nw, na := len(waves), len(analyses)
	effects := make([][]effectRow, len(s.Analysis.Outcomes)*nw*na) // by outcome, wave and analysis
	balance := make([][]balanceRow, len(effects))
	tipping := make([][]tippingRow, len(effects))
	trusts := make([][]trustRow, len(s.Analysis.Outcomes)*nw)
	missing := make([][]describe.MissingRow, len(s.Analysis.Outcomes))
	workers, _ := ctx.Value(workersKey{}).(int)
	workers = cmp.Or(max(workers, 0), 2)
	next, nl := make(chan int), len(trusts)*len(lanes)
	errs := make(chan error, workers)
	var gate sync.RWMutex // a lane that imputes runs alone: its completed data sets are the peak
	solo := func(t int) bool {
		return t < nl && t%len(lanes) > 0 && analyses[lanes[t%len(lanes)][0]].Population().KeepIncomplete
	}
	fit := func(t int, pool **framePool) error {
		lock, unlock := gate.RLock, gate.RUnlock
		if solo(t) {
			lock, unlock = gate.Lock, gate.Unlock
		}
		lock()
		defer unlock()
		oi, wi, lane := t/(nw*len(lanes)), t/len(lanes)%nw, t%len(lanes)
		outcome := s.Analysis.Outcomes[oi]
		if wi == 0 && lane == 0 {
			missing[oi] = describe.MissingData(s, cols, oi, outcome, OutcomeHasBaseline(s, outcome))
		}
		c := &outcomeComparison{s: s, d: d, ps: ps, index: oi, wave: wi + 1, waveName: waves[wi], outcome: outcome,
			hasBase: OutcomeHasBaseline(s, outcome), pool: *pool}
		for _, ai := range lanes[lane] {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := (oi*nw+wi)*na + ai
			effects[k], balance[k] = c.analyse(analyses[ai])
			tipping[k], c.tipping = c.tipping, nil
			task.Add(1)
		}
		if lane == 0 { // from the complete cases' frame while it is held
			trusts[oi*nw+wi] = c.trustEffects()
		}
		c.done()         // the lane's frames go
		if solo(t + 1) { // this pool's frames go while the next lane runs alone
			*pool = &framePool{}
		}
		if wi == nw-1 && lane == len(lanes)-1 { // the outcome's last lane
			env.Logger().Debug("compare", "outcome", outcome)
		}
		return nil
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool := &framePool{}
			for t := range next {
				if err := fit(t, &pool); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
send:
	for t := range nl {
		select {
		case next <- t:
		case <-ctx.Done():
			break send
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := cmp.Or(<-errs, ctx.Err()); err != nil {
		if c := causeOf(ctx, err); c != err {
			return fmt.Errorf("compare: %w", c)
		}
		return err
	}
	for _, ta := range tables { // the lanes' frames gone
		if err := ta.Run(ctx, env, tx, d); err != nil {
			return fmt.Errorf("compare: %w", causeOf(ctx, fmt.Errorf("%s: %w", ta.Name(), err)))
		}
	}
	sum, err := side.Wait()
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if err := writeEffects(env, tx, slices.Concat(effects...)); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if err := writeBalance(env, tx, slices.Concat(balance...)); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if err := writeTrustEffects(env, tx, slices.Concat(trusts...)); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if err := describe.WriteDescriptives(env, tx, sum.Descriptives); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if err := describe.WriteServiceUse(env, tx, sum.ServiceUse); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if err := describe.WriteMissingData(env, tx, slices.Concat(missing...)); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if err := writeTippingPoint(env, tx, slices.Concat(tipping...)); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	countAnalysed(s, d, slices.Index(s.Analysis.Outcomes, s.Analysis.PrimaryOutcome), sum.Flow)
	return describe.WriteFlowCounts(env, tx, sum.Flow)
}

type workersKey struct{}

// WithWorkers returns ctx in which Compare fits on n goroutines (for
// tests; n < 1: the default, two).
func WithWorkers(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, workersKey{}, n)
}

// causeOf is the error that cancelled ctx when it was not the caller's
// cancellation (the summaries' beside the analyses), else err.
func causeOf(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, ctx.Err()) {
		return c
	}
	return err
}

// checkAnalysisPlan refuses a plan the stage cannot carry out.
func checkAnalysisPlan(s *schemas.Study) error {
	if err := CheckStudy(s); err != nil {
		return err
	}
	for _, o := range s.Analysis.Outcomes {
		inst, scale, ok := OutcomeName(o)
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
	analysis, outcome, wave, method, term       string
	estimate, stdError, df, ciLow, ciHigh, pVal float64
	nObs, nClusters                             int
	effectSize                                  float64
	effectSizeType, note                        string
	// fmi and m (imputations) of a multiple-imputation analysis; m = 0
	// writes both as null (every other analysis).
	fmi float64
	m   int
}

// balanceRow is one row of balance; NaN stands for null.
type balanceRow struct {
	analysis  string  `col:"analysis"`
	wave      string  `col:"wave"`
	covariate string  `col:"covariate"`
	meanI     float64 `col:"mean_intervention"`
	meanC     float64 `col:"mean_control"`
	smdU      float64 `col:"smd_unweighted"`
	smdW      float64 `col:"smd_weighted"`
	varRatio  float64 `col:"variance_ratio"`
	essI      float64 `col:"ess_intervention"`
	essC      float64 `col:"ess_control"`
	maxWeight float64 `col:"max_weight"`
	nI        int     `col:"n_intervention"`
	nC        int     `col:"n_control"`
}

// outcomeComparison runs the analyses of one outcome.
type outcomeComparison struct {
	s        *schemas.Study
	d        *cmpColumns
	ps       *propensitySpec
	index    int // of the outcome in analysis.outcomes (and in d.vals)
	wave     int // the follow-up wave's index in the study's waves
	waveName string
	outcome  string
	hasBase  bool

	// frames holds the outcome's frames by keep rule (see frame), main the
	// sums of the model y_fu ~ arm + y_baseline + trust that primary,
	// wild_bootstrap and mixed share.
	frames map[string]*colFrame
	main   *stats.ClusterSums
	scales map[hedgesKey]*hedgesScale
	groups map[hedgesKey]*teamGroups
	// tipping holds the tipping_point rows of the last analysis fitted
	// (itt_delta), gathered by Compare.
	tipping []tippingRow
	pool    *framePool // the worker's, shared by its outcomes
	// onCompleted, set by tests, sees every completed data set of the
	// multiple-imputation analyses (the baseline, nil without one, and the
	// wave's values, before any δ).
	onCompleted func(m int, base, fu []float64)
	// mi keeps itt_mi's fits of the completed data sets for itt_delta.
	mi *miCache
}

func (c *outcomeComparison) level() float64 {
	if l := c.s.Analysis.CILevel; l > 0 && l < 1 {
		return l
	}
	return 0.95
}

// stream is the bootstrap stream of the outcome at the wave: the outcome's
// index at the first follow-up wave, then one block of outcomes per wave.
func (c *outcomeComparison) stream() uint64 {
	return uint64(c.index + (c.wave-1)*len(c.s.Analysis.Outcomes))
}

// nullRows makes one row per method of the analysis, all null, with a note.
func (c *outcomeComparison) nullRows(a Analysis, n, g int, notes ...string) []effectRow {
	var out []effectRow
	for _, m := range a.Methods() {
		out = append(out, effectRow{
			analysis: a.Name(), outcome: c.outcome, wave: c.waveName, method: m, term: a.Term(),
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

func (r *effectRow) setTest(t stats.CoefTest) {
	r.estimate, r.stdError, r.df = t.Estimate, t.StdError, t.DF
	r.ciLow, r.ciHigh, r.pVal = t.CILow, t.CIHigh, t.PValue
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
func writeEffects(env warehouse.Env, tx *warehouse.Tx, rows []effectRow) error {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		return CmpKeys([]string{a.analysis, a.outcome, a.wave, a.method, a.term}, []string{b.analysis, b.outcome, b.wave, b.method, b.term}) < 0
	})
	tb := env.Study.Tables.Table("effects")
	col := func(name string) int { return warehouse.ColIndex(tb, name) }
	return WriteTable(env, tx, "effects", func(rw *warehouse.RowWriter) error {
		for _, r := range rows {
			rw.Str(col("analysis"), r.analysis)
			rw.Str(col("outcome"), r.outcome)
			rw.Str(col("wave"), r.wave)
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
			if r.m > 0 {
				optFloat(rw, col("fmi"), r.fmi)
				rw.Int32(col("m"), int32(r.m), true)
			} else {
				rw.Null(col("fmi"))
				rw.Null(col("m"))
			}
			if err := rw.RowDone(); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeBalance writes the balance table sorted by its key.
func writeBalance(env warehouse.Env, tx *warehouse.Tx, rows []balanceRow) error {
	return warehouse.WriteRecords(env, tx, "balance", rows)
}

// WriteTable rewrites an unpartitioned table in one file.
func WriteTable(env warehouse.Env, tx *warehouse.Tx, name string, fill func(rw *warehouse.RowWriter) error) error {
	return warehouse.WriteTable(env, tx, name, fill)
}

// optFloat appends v, or null when v is NaN or infinite.
func optFloat(rw *warehouse.RowWriter, col int, v float64) {
	rw.Float64(col, v, !math.IsNaN(v) && !math.IsInf(v, 0))
}

// CmpKeys compares two keys column by column in byte order.
func CmpKeys(a, b []string) int {
	for i := range a {
		if c := strings.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}
