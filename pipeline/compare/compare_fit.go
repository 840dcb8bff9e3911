package compare

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"

	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/stats"
)

// This file fits the analyses of one outcome (DESIGN §9). Every model is
// fitted from per-team sufficient statistics (stats.ClusterSums: O(G·K²)
// memory whatever the number of participants), the propensity model from
// covariate-pattern counts and the balance table from per-arm sums. The
// dense route — an N × K design matrix and the row-wise stats functions, as
// the stage fitted before — is kept for what the sums cannot decide: a term
// that may be collinear, an aliased column, a failed fit (so that notes
// and errors are the dense functions' own), and for tests (compareDense).

// CompareDense, set by tests, makes every analysis take the dense route.
var CompareDense = false

// ComparePatternFallbacks counts propensity models fitted from the rows
// because the pattern fit failed (for tests).
var ComparePatternFallbacks atomic.Int64

// CompareCellFits counts propensity models fitted from cell sums
// (propensityCells; for tests).
var CompareCellFits atomic.Int64

// frame returns the outcome's frame for a population at the comparison's
// wave. Frames are built once per outcome and wave, shared by the analyses
// of one population (and by a CompleteLane population that Exclude leaves
// whole with the complete cases), and dropped with the lane (see done).
func (c *outcomeComparison) frame(pop Population) *colFrame {
	f, ok := c.frames[pop.Key]
	if !ok {
		var keep func(i int) int
		if pop.Exclude != nil {
			keep = pop.Exclude(c)
		}
		if pop.CompleteLane && keep == nil {
			f = c.frame(completeCases)
		} else {
			f = buildColFrame(c.s, c.d, c.index, c.wave, c.hasBase, pop, keep, c.pool)
		}
		if c.frames == nil {
			c.frames = map[string]*colFrame{}
		}
		c.frames[pop.Key] = f
	}
	return f
}

// done gives the lane's frames back to the pool (a shared frame once:
// release empties it).
func (c *outcomeComparison) done() {
	for _, f := range c.frames {
		f.release(c.pool)
	}
	c.frames = nil
}

// analyse fits one analysis of the outcome at the comparison's wave: its
// effects rows and, for the weighted analysis, its balance rows.
func (c *outcomeComparison) analyse(a Analysis) ([]effectRow, []balanceRow) {
	term := a.Term()
	m := &Model{C: c, a: a}
	if skip := a.Model(m); skip != "" {
		n, g := 0, 0
		if m.frame != nil {
			n, g = len(m.frame.rows), len(m.frame.teams)
		}
		return c.nullRows(a, n, g, skip), m.Balance
	}
	f := m.Frame()
	n, g := len(f.rows), len(f.teams)
	dropped := f.dropNote()
	x, y, weights, bal, weightNote := m.X, m.Y, m.Weights, m.Balance, m.WeightNote

	if note := c.check(a, f, x); note != "" {
		return c.nullRows(a, n, g, note, weightNote, dropped), bal
	}
	if sf, ok := a.(SelfFitter); ok {
		return sf.Fit(m), bal
	}
	if constant(y) {
		return c.nullRows(a, n, g, "not estimable: the response is constant in the analysis population, so its standard error and p-value would be rounding noise", weightNote, dropped), bal
	}
	weightNote = joinNotes(weightNote, positivityNote(bal, c.s.Arms))
	des := newColDesign(f, term, x, m.WithBase)
	if k := des.k(); n <= k {
		return c.nullRows(a, n, g, fmt.Sprintf("too few participants: %d for %d coefficients", n, k), weightNote, dropped), bal
	}
	var sums *stats.ClusterSums
	if !CompareDense {
		sums = c.sums(m.Shared, des, c.teamGroups(term, f, x), y, weights)
	}
	var dx *mat.Dense // the dense design, built only for the dense route
	denseX := func() *mat.Dense {
		if dx == nil {
			dx = des.dense()
		}
		return dx
	}
	coll, sure := false, false
	if sums != nil {
		coll, sure = suffCollinear(sums, x)
	}
	if !sure {
		coll = collinear(denseX(), 1)
	}
	if coll {
		others := slices.Clone(des.names[:1])
		others = append(others, des.names[2:]...)
		return c.nullRows(a, n, g, fmt.Sprintf("not estimable: %s is collinear with %s", term, strings.Join(others, ", ")), weightNote, dropped), bal
	}
	if m.NeedWeights && weights == nil {
		return c.nullRows(a, n, g, weightNote, dropped), bal
	}

	fr := fitRows{c: c, a: a, base: effectRow{analysis: a.Name(), outcome: c.outcome, wave: c.waveName, term: term, nObs: n, nClusters: g},
		yFU: f.yFU, x: x, weightNote: weightNote, dropped: dropped, names: des.names}
	if !CompareDense {
		fr.scale = c.hedgesScale(term, f, x)
	}
	if sums != nil {
		if rows, ok := a.FitSuff(&fr, sums, des); ok {
			return rows, bal
		}
	}
	return a.FitDense(&fr, denseX(), f.clusterInts(), y, weights), bal
}

// hedgesScale returns the frame's Hedges' g scale for the analysis's term,
// computed once per frame and term.
func (c *outcomeComparison) hedgesScale(term string, f *colFrame, x []float64) *hedgesScale {
	key := hedgesKey{f, term}
	if h, ok := c.scales[key]; ok {
		return h
	}
	var h hedgesScale
	h.s, h.err = stats.NewHedgesScale(f.yFU, x)
	if c.scales == nil {
		c.scales = map[hedgesKey]*hedgesScale{}
	}
	c.scales[key] = &h
	return &h
}

// teamGroups returns the frame's rows grouped by team, trust and term
// (newTeamGroups), built once per frame and term.
func (c *outcomeComparison) teamGroups(term string, f *colFrame, x []float64) *teamGroups {
	key := hedgesKey{f, term}
	if g, ok := c.groups[key]; ok {
		return g
	}
	g := newTeamGroups(f, x)
	if c.groups == nil {
		c.groups = map[hedgesKey]*teamGroups{}
	}
	c.groups[key] = g
	return g
}

type hedgesKey struct {
	f    *colFrame
	term string
}

// sums accumulates the sufficient statistics of the analysis's model from
// the moments of its rows' team groups (nil when a row cannot be added:
// the dense route then decides). primary, wild_bootstrap and mixed share
// one model and so one set of sums.
func (c *outcomeComparison) sums(shared bool, des colDesign, g *teamGroups, y, w []float64) *stats.ClusterSums {
	if shared && c.main != nil {
		return c.main
	}
	cs, err := stats.NewClusterSums(des.k(), w != nil)
	if err != nil {
		return nil
	}
	vary, v := -1, []float64(nil)
	if des.withBase {
		vary, v = 2, des.f.yBase
	}
	var m *stats.GroupMoments
	if f := des.f; w == nil && des.withBase == (f.yBase != nil) && len(y) > 0 && &y[0] == &f.yFU[0] {
		m, err = g.moments(f) // the frame's y unweighted: shared
	} else {
		m, err = g.momentsOf(v, y, w)
	}
	if err != nil || cs.AddMoments(m, g.cluster, func(gi int, buf []float64) { des.row(int(g.first[gi]), buf) }, vary) != nil {
		return nil
	}
	if shared {
		c.main = cs
	}
	return cs
}

// suffCollinear decides from the sums whether the term (column 1) is
// collinear with the other columns, as collinear does: the squared length
// of what is left of the term after projecting it on the others, relative
// to its squared length, is 1/((X'X)⁻¹₁₁ · x'x). sure is false when the
// sums cannot tell with a wide margin (a fit that fails, any aliased column
// — the term is then projected on fewer columns —, a ratio below 1e-10,
// where collinear's threshold is 1e-18): the dense check decides then.
func suffCollinear(sums *stats.ClusterSums, x []float64) (coll, sure bool) {
	u := sums
	if sums.Weighted() {
		u = sums.Unweighted()
	}
	fit, err := stats.SuffOLS(u)
	if err != nil || len(fit.Aliased) > 0 {
		return false, false
	}
	xx := 0.0
	for _, v := range x {
		xx += v * v
	}
	b := fit.Bread.At(1, 1)
	if !(b > 0) || !(xx > 0) {
		return false, false
	}
	if 1/(b*xx) > 1e-10 {
		return false, true
	}
	return false, false
}

// fitRows makes the effects rows of one analysis from a fit by either
// route.
type fitRows struct {
	c                   *outcomeComparison
	a                   Analysis
	base                effectRow
	yFU, x              []float64
	scale               *hedgesScale // nil: stats.HedgesG (the dense route)
	weightNote, dropped string
	names               []string // the design's columns (colDesign.names)
}

// aliasedNote names the columns dropped as aliased, by covariate and
// level ("y_baseline", "trust=EPUT"), never by position.
func (fr *fitRows) aliasedNote(aliased []int) string {
	var names []string
	for _, j := range aliased {
		if j < len(fr.names) {
			names = append(names, fr.names[j])
		}
	}
	return "aliased and dropped as R's lm does (coefficient NA): " + strings.Join(names, ", ")
}

// exactFit is the note of a model that fits the response exactly (the
// residuals are all 0 up to rounding: R² within 1e-12 of 1), whose
// standard errors would be rounding noise; "" otherwise.
func exactFit(r2 float64) string {
	if r2 > 1-1e-12 {
		return "not estimable: the model fits the response exactly (residuals all 0), so its standard error and p-value would be rounding noise"
	}
	return ""
}

// constant reports whether every value of y is the same.
func constant(y []float64) bool {
	for _, v := range y[1:] {
		if v != y[0] {
			return false
		}
	}
	return true
}

// positivityNote names the categorical covariate levels of the balance
// rows present in one arm only ("positivity: gender=other only in
// control"): weighting cannot balance them.
func positivityNote(bal []balanceRow, arms []string) string {
	if len(arms) < 2 {
		return ""
	}
	var levels []string
	for _, b := range bal {
		if !strings.Contains(b.covariate, "=") || (b.nI > 0) == (b.nC > 0) {
			continue
		}
		arm := arms[0]
		if b.nC > 0 {
			arm = arms[1]
		}
		levels = append(levels, b.covariate+" only in "+arm)
	}
	if len(levels) == 0 {
		return ""
	}
	return "positivity: " + strings.Join(levels, ", ")
}

func (fr *fitRows) hedges(est float64) (float64, string) {
	var es float64
	var err error
	if fr.scale != nil {
		es, err = fr.scale.g(est)
	} else {
		es, err = stats.HedgesG(est, fr.yFU, fr.x)
	}
	if err != nil {
		return math.NaN(), "effect size: " + err.Error()
	}
	return es, ""
}

func (fr *fitRows) failed(err error, notes ...string) []effectRow {
	b := fr.base
	return fr.c.nullRows(fr.a, b.nObs, b.nClusters, append([]string{"fit failed: " + err.Error()}, notes...)...)
}

func (fr *fitRows) rng() *rand.Rand {
	return rand.New(rand.NewPCG(fr.c.s.Analysis.Bootstrap.Seed, fr.c.stream()))
}

func (fr *fitRows) wildConfig() stats.WildConfig {
	draws := fr.c.s.Analysis.Bootstrap.Draws
	if draws <= 0 {
		draws = 9999
	}
	return stats.WildConfig{Draws: draws, Level: fr.c.level()}
}

// olsSuff fits an OLS (or WLS) analysis from the sums: the cr2 row and,
// with cr1, the cr1 row; false sends it to the dense route.
func (fr *fitRows) olsSuff(sums *stats.ClusterSums, cr1 bool) ([]effectRow, bool) {
	level := fr.c.level()
	fit, err := stats.SuffOLS(sums)
	if err != nil || slices.Contains(fit.Aliased, 1) {
		return nil, false
	}
	if note := exactFit(fit.RSquared); note != "" {
		return fr.c.nullRows(fr.a, fr.base.nObs, fr.base.nClusters, note, fr.weightNote, fr.dropped), true
	}
	cr2, err := fit.CR2()
	if err != nil {
		return nil, false
	}
	if len(fit.Aliased) > 0 {
		fr.weightNote = joinNotes(fr.weightNote, fr.aliasedNote(fit.Aliased))
	}
	var t1 stats.CoefTest
	var eta float64
	if cr1 {
		if t1, err = fit.CR1Test(1, level); err != nil {
			return nil, false
		}
		eta = stats.PartialEta2(fit.CoefTest(1, level).T, float64(fit.DFResid))
	}
	return fr.ols(cr2.Test(1, level), t1, nil, eta, cr1), true
}

// olsDense fits an OLS (or WLS) analysis from the design matrix x, as the
// stage did before the sufficient statistics.
func (fr *fitRows) olsDense(x *mat.Dense, cluster []int, y, weights []float64, cr1 bool) []effectRow {
	level := fr.c.level()
	fit, err := stats.OLS(x, y, weights)
	if err != nil {
		return fr.failed(err, fr.weightNote, fr.dropped)
	}
	if note := exactFit(fit.RSquared); note != "" {
		return fr.c.nullRows(fr.a, fr.base.nObs, fr.base.nClusters, note, fr.weightNote, fr.dropped)
	}
	cr2, err := fit.CR2(cluster)
	if err != nil {
		return fr.failed(err, fr.weightNote, fr.dropped)
	}
	var t1 stats.CoefTest
	var err1 error
	var eta float64
	if cr1 {
		t1, err1 = fit.CR1Test(cluster, 1, level)
		eta = stats.PartialEta2(fit.CoefTest(1, level).T, float64(fit.DFResid))
	}
	return fr.ols(cr2.Test(1, level), t1, err1, eta, cr1)
}

// mixed is the reml row; between is the number of columns constant within
// every team (the containment rule's between-team parameters).
func (fr *fitRows) mixed(fit *stats.MixedFit, between int) []effectRow {
	row := fr.base
	row.method = "reml"
	df := float64(row.nClusters - between)
	notes := []string{formatICC(fit.ICC)}
	if fit.Boundary {
		notes = append(notes, "boundary fit: team variance estimated as 0, fixed effects equal OLS")
	}
	if df > 0 {
		row.setTest(stats.TTest(fit.Coef[1], fit.StdError[1], df, fr.c.level()))
	} else {
		row.setTest(stats.CoefTest{Estimate: fit.Coef[1], StdError: fit.StdError[1], DF: math.NaN(), PValue: math.NaN(), CILow: math.NaN(), CIHigh: math.NaN()})
		notes = append(notes, "no between-team degrees of freedom left for a t reference")
	}
	es, esNote := fr.hedges(row.estimate)
	row.effectSize, row.effectSizeType = es, "hedges_g"
	row.note = joinNotes(append(notes, esNote, fr.dropped)...)
	return []effectRow{row, fr.iccRow(fit)}
}

// iccRow is the mixed model's ICC as a number: a row of its own, term
// icc, whose effect_size is the team variance over the total
// (effect_size_type icc) and whose estimate, standard error, df, interval
// and p-value are null.
func (fr *fitRows) iccRow(fit *stats.MixedFit) effectRow {
	row := fr.base
	row.method, row.term = "reml", TermICC
	row.estimate, row.stdError, row.df = math.NaN(), math.NaN(), math.NaN()
	row.ciLow, row.ciHigh, row.pVal = math.NaN(), math.NaN(), math.NaN()
	row.effectSize, row.effectSizeType = fit.ICC, "icc"
	notes := []string{"intraclass correlation of team: team variance / (team + residual variance), REML"}
	if fit.Boundary {
		notes = append(notes, "boundary fit: team variance estimated as 0")
	}
	row.note = joinNotes(append(notes, fr.dropped)...)
	return row
}

// TermICC is the term of the mixed model's ICC row.
const TermICC = "icc"

// wild is the wild_webb row.
func (fr *fitRows) wild(res stats.WildResult) []effectRow {
	row := fr.base
	row.method = "wild_webb"
	row.setTest(stats.CoefTest{Estimate: res.Estimate, StdError: res.StdError, DF: math.NaN(), PValue: res.PValue, CILow: res.CILow, CIHigh: res.CIHigh})
	es, esNote := fr.hedges(row.estimate)
	row.effectSize, row.effectSizeType = es, "hedges_g"
	row.note = joinNotes(fmt.Sprintf("%d draws, CR1 standard error", res.Draws), esNote, fr.dropped)
	return []effectRow{row}
}

// ols is the cr2 row and, for the primary analysis, the cr1 row (t1, or
// err1 when CR1 failed) with the classical fit's partial η².
func (fr *fitRows) ols(t2, t1 stats.CoefTest, err1 error, eta float64, cr1 bool) []effectRow {
	row := fr.base
	row.method = "cr2"
	row.setTest(t2)
	es, esNote := fr.hedges(row.estimate)
	row.effectSize, row.effectSizeType = es, "hedges_g"
	row.note = joinNotes(fr.weightNote, esNote, fr.dropped)
	out := []effectRow{row}
	if cr1 {
		row1 := fr.base
		row1.method = "cr1"
		if err1 != nil {
			row1 = fr.failed(err1, fr.dropped)[1]
		} else {
			row1.setTest(t1)
			row1.effectSize = eta
			row1.effectSizeType = "partial_eta2"
			row1.note = joinNotes(fmt.Sprintf("df = G - 1 = %d", row1.nClusters-1), fr.dropped)
		}
		out = append(out, row1)
	}
	return out
}

// check is the analysis plan's check before fitting: participants, a term
// that varies, at least two clusters on each side of the term. It returns
// why the model cannot be fitted, or "".
func (c *outcomeComparison) check(a Analysis, f *colFrame, x []float64) string {
	if len(f.rows) == 0 {
		return "no participants with " + c.outcome + " in the analysis population"
	}
	g := c.teamGroups(a.Term(), f, x)
	one, zero := g.clustersByLevel(len(f.teams))
	if a.Term() == termHighFidelity {
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
	return c.checkInformative(a, f, g)
}

// checkInformative counts the clusters that inform the term once the
// strata (trust dummies) are absorbed: only a team in a trust that has
// teams on both sides of the term contributes to its within-trust
// contrast. Fewer than two such teams on either side and the CR2 standard
// error rests on a single pair of teams (a meaningless p-value, or a
// standard error of rounding noise): the model is refused with a note.
func (c *outcomeComparison) checkInformative(a Analysis, f *colFrame, g *teamGroups) string {
	// levels[s] has bit 1 when stratum s has a cluster with term 1, bit 0
	// with term 0; level[c] is cluster c's side (a cluster on both sides
	// informs both), stratum[c] the stratum of its last row.
	levels := make([]uint8, len(f.strata))
	side := make([]uint8, len(f.teams))
	stratum := make([]int32, len(f.teams))
	last := make([]int32, len(f.teams))
	for gi, cl := range g.cluster {
		bit := uint8(1)
		if g.term[gi] == 1 {
			bit = 2
		}
		side[cl] |= bit
		if g.last[gi] >= last[cl] {
			stratum[cl], last[cl] = g.stratum[gi], g.last[gi]
		}
		levels[g.stratum[gi]] |= bit
	}
	one, zero := 0, 0
	for cl, sd := range side {
		if levels[stratum[cl]] != 3 {
			continue
		}
		if sd&2 != 0 {
			one++
		}
		if sd&1 != 0 {
			zero++
		}
	}
	if one >= 2 && zero >= 2 {
		return ""
	}
	on, off := c.s.Arms[0]+" teams", c.s.Arms[1]+" teams"
	if a.Term() == termHighFidelity {
		high := c.s.Fidelity.Bands[0].Name
		on, off = "teams with band "+high, "teams without"
	}
	return fmt.Sprintf("too few informative clusters: once trusts are absorbed only teams in a trust with teams on both sides of %s inform it: %d %s and %d %s, need at least two of each", a.Term(), one, on, zero, off)
}

// weights fits the propensity model of the frame and returns the stabilised
// ATE weights (nil when the model could not be fitted), the balance rows and
// a note on covariates left out or a failed fit.
func (c *outcomeComparison) weights(f *colFrame) ([]float64, []balanceRow, string) {
	n := len(f.rows)
	notes := slices.Clone(c.ps.notes)
	if n == 0 {
		return nil, nil, joinNotes(notes...)
	}
	covs, left := propensityCovs(c.s, c.d, f, c.ps)
	if len(left) > 0 {
		notes = append(notes, "propensity: left out without variation: "+strings.Join(left, ", "))
	}
	levelPos := levelPositions(c.d, covs)
	ps, pat, aliasNote, err := c.propensity(f, covs, levelPos)
	if aliasNote != "" {
		notes = append(notes, aliasNote)
	}
	var w []float64
	switch {
	case err == nil && pat != nil:
		w, err = stats.ATEWeightsGrouped(f.arm, pat, ps)
	case err == nil:
		w, err = stats.ATEWeights(f.arm, ps)
	}
	if err != nil {
		notes = append(notes, "propensity model failed: "+err.Error())
		w = nil
	}
	name := AnalysisWeighted + ":" + c.outcome
	essI, essC, maxW := math.NaN(), math.NaN(), math.NaN()
	if w != nil {
		essI, essC, maxW = stats.KishESSByArm(w, f.arm)
	}
	var rows []balanceRow
	for ci, cv := range covs {
		switch {
		case CompareDense:
		case cv.codes != nil:
			rows = append(rows, categoricalBalance(name, cv, levelPos[ci], f.arm, w, essI, essC, maxW)...)
			continue
		default:
			rows = append(rows, numericBalance(name, cv, f.arm, w, essI, essC, maxW))
			continue
		}
		cols := []propensityColumn{{Name: cv.name, x: cv.x}}
		if cv.codes != nil {
			cols = cols[:0]
			for li, code := range cv.levels {
				col := make([]float64, n)
				for i, v := range cv.codes {
					if v == code {
						col[i] = 1
					}
				}
				cols = append(cols, propensityColumn{Name: cv.name + "=" + cv.names[li], x: col})
			}
		}
		for _, col := range cols {
			r := balanceRow{analysis: name, covariate: col.Name, essI: essI, essC: essC, maxWeight: maxW}
			r.meanI, r.meanC = armMean(col.x, f.arm, 1), armMean(col.x, f.arm, 0)
			r.smdU = orNaN(stats.SMD(col.x, f.arm, nil))
			r.smdW, r.varRatio = math.NaN(), math.NaN()
			if w != nil {
				r.smdW = orNaN(stats.SMD(col.x, f.arm, w))
				r.varRatio = orNaN(stats.VarianceRatio(col.x, f.arm, w))
			}
			r.nI, r.nC = balanceCount(col.x, f.arm, cv.codes != nil || cv.binary)
			rows = append(rows, r)
		}
	}
	for i := range rows {
		rows[i].wave = c.waveName
	}
	return w, rows, joinNotes(notes...)
}

// balanceCount counts the participants of each arm having a balance row's
// covariate: the value 1 of a 0/1 column (a level's dummy, living_alone),
// any value of another numeric one (y_baseline).
func balanceCount(x, arm []float64, binary bool) (nI, nC int) {
	var n [2]int
	for i, v := range x {
		if (binary && v == 1) || (!binary && !math.IsNaN(v)) {
			n[int(arm[i])]++
		}
	}
	return n[1], n[0]
}

// propensity fits the propensity model (intercept and the model columns of
// covs) and returns the fitted probabilities: each covariate pattern's and
// each row's pattern, from the patterns' counts (stats.LogisticPatterns),
// or each row's (pattern nil) by stats.Logistic over the rows on the dense
// route or when the pattern fit fails.
func (c *outcomeComparison) propensity(f *colFrame, covs []propCov, levelPos [][]int) ([]float64, []int32, string, error) {
	n := len(f.rows)
	k := 1 + modelWidth(covs)
	buf := make([]float64, k)
	var g *patternGroups
	var cells *patternCells
	if !CompareDense {
		var base *OutcomeValues
		if c.hasBase {
			base = &c.d.vals[c.index][0]
		}
		g = groupPatterns(f, covs, levelPos, base)
		cells = groupCells(g, covs, levelPos, k)
	}
	aliased := propensityAliased(covs, levelPos, n, k, g, cells)
	if !CompareDense && len(aliased) == 0 {
		if g != nil {
			if ps, ok := propensityPatterns(g, cells, covs, levelPos, k); ok {
				return ps, g.pat, "", nil
			}
		}
		ComparePatternFallbacks.Add(1)
	}
	// The dense route, without the aliased columns: R's glm drops them
	// (coefficient NA) and the fitted probabilities are those of the
	// model without them.
	drop := make([]bool, k)
	for _, j := range aliased {
		drop[j] = true
	}
	x := mat.NewDense(max(n, 1), k-len(aliased), nil)
	row := make([]float64, 0, k)
	for i := 0; i < n; i++ {
		modelRow(covs, levelPos, i, buf)
		row = row[:0]
		for j, v := range buf {
			if !drop[j] {
				row = append(row, v)
			}
		}
		x.SetRow(i, row)
	}
	note := ""
	if len(aliased) > 0 {
		names := propensityNames(covs, levelPos)
		var dropped []string
		for _, j := range aliased {
			dropped = append(dropped, names[j])
		}
		note = "propensity: aliased and dropped as R's glm does (coefficient NA): " + strings.Join(dropped, ", ")
	}
	_, ps, _, err := stats.Logistic(x, f.arm)
	return ps, nil, note, err
}

// propensityNames names the propensity model's columns: "(intercept)",
// each categorical covariate's dummies as name=level, each numeric
// covariate by its name.
func propensityNames(covs []propCov, levelPos [][]int) []string {
	names := []string{"(intercept)"}
	for ci, c := range covs {
		switch {
		case c.codes != nil:
			w := max(len(c.levels)-1, 0)
			col := make([]string, w)
			for li, code := range c.levels {
				if p := levelPos[ci][code]; p >= 0 && p < w {
					col[p] = c.name + "=" + c.names[li]
				}
			}
			names = append(names, col...)
		case c.inModel:
			names = append(names, c.name)
		}
	}
	return names
}

// propensityAliased lists the propensity model's columns that are a linear
// combination of the columns before them (as R's glm finds them, by a
// pivot-free decomposition in column order) from the cross-products X'X
// (stats.AliasedColumns).
// With g, X'X is summed over the covariate patterns (each row of a pattern
// times its rows: the same sums, exact for the 0/1 columns, rounded
// differently only in y_baseline's, far from the threshold but for a
// column that is aliased; with cells, y_baseline's products with the cell
// columns are summed over each cell's patterns first), else over the rows.
func propensityAliased(covs []propCov, levelPos [][]int, n, k int, g *patternGroups, cells *patternCells) []int {
	xx := make([]float64, k*k)
	buf := make([]float64, k)
	addRow := func(t float64) {
		for a, va := range buf {
			if va == 0 {
				continue
			}
			ta := t * va
			for b := a; b < k; b++ {
				xx[a*k+b] += ta * buf[b]
			}
		}
	}
	switch {
	case cells != nil:
		// Per cell: its rows T, Σ t·y; over the patterns Σ t·y·y.
		tc, ty := make([]float64, len(cells.cells)), make([]float64, len(cells.cells))
		var tyy float64
		for p, c := range cells.cellOf {
			t, y := g.trials[p], cells.y[p]
			tc[c] += t
			ty[c] += t * y
			tyy += t * y * y
		}
		buf[k-1] = 0
		for c, row := range cells.cells {
			copy(buf, row)
			addRow(tc[c])
			for a, va := range row {
				xx[a*k+k-1] += va * ty[c]
			}
		}
		xx[k*k-1] = tyy
	case g != nil:
		for p, i := range g.first {
			modelRow(covs, levelPos, int(i), buf)
			addRow(g.trials[p])
		}
	default:
		for i := 0; i < n; i++ {
			modelRow(covs, levelPos, i, buf)
			addRow(1)
		}
	}
	return stats.AliasedColumns(xx, k)
}

// patternKey identifies a row's covariate pattern: the codes of its
// categorical covariates (mixed radix) and the bits of its numeric ones
// (living_alone, y_baseline) in the model.
type patternKey struct {
	cat uint64
	num [2]uint64
}

// propensityPatterns fits the propensity model from the rows grouped by
// covariate pattern (in order of first appearance, as
// stats.PatternCounts.Add would number them) and returns each pattern's
// fitted probability; false when the pattern fit fails (the rows then
// decide).
func propensityPatterns(g *patternGroups, cells *patternCells, covs []propCov, levelPos [][]int, k int) ([]float64, bool) {
	first, trials, ones := g.first, g.trials, g.ones
	if cells != nil {
		if _, fitted, _, err := stats.LogisticCells(cells.cells, cells.cellOf, cells.y, trials, ones); err == nil {
			CompareCellFits.Add(1)
			return fitted, true
		}
	}
	pc, err := stats.NewPatternCounts(k)
	if err != nil {
		return nil, false
	}
	buf := make([]float64, k)
	for p, i := range first {
		modelRow(covs, levelPos, int(i), buf)
		if c, err := pc.AddRows(buf, trials[p], ones[p]); err != nil || c != p {
			return nil, false
		}
	}
	_, fitted, _, err := stats.LogisticPatterns(pc)
	return fitted, err == nil
}

// cellRoutePatterns is the number of covariate patterns from which the
// propensity model is fitted by stats.LogisticCells rather than
// stats.LogisticPatterns: a continuous y_baseline (costs, utilities) makes
// nearly every row its own pattern, and a QR of the P × K pattern matrix at
// every step took most of the stage's time at 1,000,000 participants
// (issue 14). Below it (the bundled study) the pattern route is kept, so
// its results are unchanged to the bit.
const cellRoutePatterns = 4096

// patternCells is the covariate patterns' cells for stats.LogisticCells:
// the model rows but the last column (y_baseline), numbered in order of
// first appearance, each pattern's cell and y_baseline.
type patternCells struct {
	cells  [][]float64
	cellOf []int32
	y      []float64
}

// groupCells is the patterns' cells when the propensity model is fitted by
// stats.LogisticCells: from cellRoutePatterns patterns when its last
// column is y_baseline and the others are the intercept, dummies and 0/1
// covariates; nil otherwise.
func groupCells(g *patternGroups, covs []propCov, levelPos [][]int, k int) *patternCells {
	if g == nil || len(g.first) < cellRoutePatterns || !cellColumn(covs) {
		return nil
	}
	first := g.first
	buf := make([]float64, k)
	key := make([]byte, 8*(k-1))
	index := map[string]int32{}
	var cells [][]float64
	cellOf := make([]int32, len(first))
	y := make([]float64, len(first))
	// A row's cell follows from its codes and other numeric covariates:
	// its key is looked up once per combination of them, not per row.
	rowKey, keyed := cellKeys(covs, levelPos)
	known := map[patternKey]int32{}
	for p, i := range first {
		var rk patternKey
		if keyed {
			rk = rowKey(int(i))
			if c, ok := known[rk]; ok {
				cellOf[p], y[p] = c, covs[len(covs)-1].x[i]
				continue
			}
		}
		modelRow(covs, levelPos, int(i), buf)
		for j, v := range buf[:k-1] {
			binary.LittleEndian.PutUint64(key[8*j:], math.Float64bits(v))
		}
		c, ok := index[string(key)]
		if !ok {
			c = int32(len(cells))
			index[string(key)] = c
			cells = append(cells, slices.Clone(buf[:k-1]))
		}
		cellOf[p], y[p] = c, buf[k-1]
		if keyed {
			known[rk] = c
		}
	}
	return &patternCells{cells: cells, cellOf: cellOf, y: y}
}

// cellKeys returns the key of a row's covariates but the last
// (y_baseline), which decides its model row but for the last column:
// codes in mixed radix and the bits of at most two numeric covariates;
// false when they do not fit a patternKey.
func cellKeys(covs []propCov, levelPos [][]int) (func(i int) patternKey, bool) {
	size, nums := 1.0, 0
	for ci, c := range covs[:len(covs)-1] {
		if c.codes != nil {
			size *= float64(len(levelPos[ci]) + 1)
		} else if c.inModel {
			nums++
		}
	}
	if size > 1<<62 || nums > 2 {
		return nil, false
	}
	return func(i int) patternKey {
		var key patternKey
		n := 0
		for ci, c := range covs[:len(covs)-1] {
			if c.codes != nil {
				key.cat = key.cat*uint64(len(levelPos[ci])+1) + uint64(c.codes[i]+1)
			} else if c.inModel {
				key.num[n] = math.Float64bits(c.x[i])
				n++
			}
		}
		return key
	}, true
}

// cellColumn reports whether the propensity model's last column is
// y_baseline, so that the others make the cells of propensityCells (the
// demographic covariates are coded or 0/1).
func cellColumn(covs []propCov) bool {
	if len(covs) == 0 {
		return false
	}
	last := covs[len(covs)-1]
	return last.name == "y_baseline" && last.codes == nil && last.inModel
}

// patternGroups is the rows of a frame grouped by covariate pattern (in
// order of first appearance, as stats.PatternCounts.Add would number them):
// a row of each pattern, its rows and those of them in the intervention
// arm, and each row's pattern.
type patternGroups struct {
	first        []int32
	trials, ones []float64
	pat          []int32
}

// groupPatterns groups the frame's rows by covariate pattern; nil when the
// model has more numeric columns than a pattern key holds.
func groupPatterns(f *colFrame, covs []propCov, levelPos [][]int, base *OutcomeValues) *patternGroups {
	n := len(f.rows)
	var first []int32 // a row of each pattern
	pat := make([]int32, n)
	if dense := newDensePatterns(f, covs, levelPos, base); dense != nil {
		dense.keys(pat)
		index := dense.index
		for i, key := range pat { // dense.keys, overwritten by the patterns
			p := index[key] - 1
			if p < 0 {
				p = int32(len(first))
				first = append(first, int32(i))
				index[key] = p + 1
			}
			pat[i] = p
		}
	} else if n >= cellRoutePatterns && cellColumn(covs) {
		// A y_baseline of too many values for the table (costs): nearly
		// every row is a pattern of its own, so the rows are the patterns,
		// without a map of a million keys (stats.LogisticCells is the same
		// fit over grouped or ungrouped rows).
		first, trials := make([]int32, n), make([]float64, n)
		for i := range pat {
			first[i], pat[i], trials[i] = int32(i), int32(i), 1
		}
		return &patternGroups{first: first, trials: trials, ones: slices.Clone(f.arm), pat: pat}
	} else {
		index := map[patternKey]int32{}
		for i := 0; i < n; i++ {
			var key patternKey
			nums := 0
			for ci, c := range covs {
				switch {
				case c.codes != nil:
					key.cat = key.cat*uint64(len(levelPos[ci])+1) + uint64(c.codes[i]+1)
				case c.inModel:
					if nums == len(key.num) {
						return nil
					}
					v := c.x[i]
					if v == 0 {
						v = 0 // −0 and +0 are one pattern
					}
					key.num[nums] = math.Float64bits(v)
					nums++
				}
			}
			p, ok := index[key]
			if !ok {
				p = int32(len(first))
				first = append(first, int32(i))
				index[key] = p
			}
			pat[i] = p
		}
	}
	trials, ones := make([]float64, len(first)), make([]float64, len(first))
	for i, p := range pat {
		trials[p]++
		ones[p] += f.arm[i]
	}
	return &patternGroups{first: first, trials: trials, ones: ones, pat: pat}
}

// densePatterns numbers the covariate patterns by a table instead of a
// map when every model column takes few values: categorical codes, a
// numeric covariate of whole numbers in a short range (living_alone) and
// y_baseline by its code in the outcome's table of distinct values.
type densePatterns struct {
	index []int32 // 1 + pattern of each key, 0 none yet
	keys  func(key []int32)
}

// maxDensePatterns bounds the table of densePatterns (16 MiB).
const maxDensePatterns = 1 << 22

func newDensePatterns(f *colFrame, covs []propCov, levelPos [][]int, base *OutcomeValues) *densePatterns {
	// A part's add multiplies each row's key by its radix and adds the
	// row's code: the keys are made a column at a time.
	type part struct {
		radix int
		add   func(key []int32)
	}
	var parts []part
	size := 1
	for ci, c := range covs {
		var p part
		switch {
		case c.codes != nil:
			codes, r := c.codes, int32(len(levelPos[ci])+1)
			p = part{radix: int(r), add: func(key []int32) {
				for i, v := range codes {
					key[i] = key[i]*r + v + 1
				}
			}}
		case !c.inModel:
			continue
		case c.name == "y_baseline":
			if base == nil || base.Raw != nil {
				return nil
			}
			// −0 and +0 have codes of their own but are one pattern.
			canon := make([]int, len(base.Table)+1)
			zero := -1
			for j := range canon {
				canon[j] = j
				if j > 0 && base.Table[j-1] == 0 {
					if zero < 0 {
						zero = j
					}
					canon[j] = zero
				}
			}
			codes, rows, r := base.codes, f.rows, int32(len(base.Table)+1)
			p = part{radix: int(r), add: func(key []int32) {
				for i, row := range rows {
					key[i] = key[i]*r + int32(canon[codes[row]])
				}
			}}
		default:
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, v := range c.x {
				if v != math.Trunc(v) || math.IsInf(v, 0) {
					return nil
				}
				lo, hi = min(lo, v), max(hi, v)
			}
			if !(hi-lo < 1024) {
				return nil
			}
			x, off, r := c.x, lo, int32(hi-lo)+1
			p = part{radix: int(r), add: func(key []int32) {
				for i, v := range x {
					key[i] = key[i]*r + int32(v-off)
				}
			}}
		}
		if size > maxDensePatterns/p.radix {
			return nil
		}
		size *= p.radix
		parts = append(parts, p)
	}
	d := &densePatterns{index: make([]int32, size)}
	d.keys = func(key []int32) {
		clear(key)
		for _, p := range parts {
			p.add(key)
		}
	}
	return d
}

// categoricalBalance is the balance rows of a categorical covariate's
// levels from one pass of per-arm sums: for a 0/1 dummy the moments of
// stats.SMD and stats.VarianceRatio follow from the count c and the weight
// Σw of the level's rows and the arm's n, Σw and Σw² (the means are the
// same sums as the row-wise functions'; the sums of squares are the closed
// forms c(1 − m)² + (n − c)m²).
func categoricalBalance(name string, cv propCov, pos []int, arm, w []float64, essI, essC, maxW float64) []balanceRow {
	L := len(pos)
	cnt := make([][2]float64, L)
	wsum := make([][2]float64, L)
	var n, sw, sw2 [2]float64
	for i, code := range cv.codes {
		a := int(arm[i])
		cnt[code][a]++
		n[a]++
		if w != nil {
			wsum[code][a] += w[i]
			sw[a] += w[i]
			sw2[a] += w[i] * w[i]
		}
	}
	// moments: the (weighted) mean, the unweighted variance and the
	// weighted variance of the dummy in arm a, as armMoments.
	moments := func(code int32, a int, weighted bool) (mean, v, wv float64, ok bool) {
		na, c := n[a], cnt[code][a]
		if na == 0 {
			return math.NaN(), math.NaN(), math.NaN(), false
		}
		s, s1, s2 := na, c, na
		if weighted {
			s, s1, s2 = sw[a], wsum[code][a], sw2[a]
		}
		mean = s1 / s
		m := c / na
		v = (c*(1-m)*(1-m) + (na-c)*m*m) / (na - 1)
		wv = (s1*(1-mean)*(1-mean) + (s-s1)*mean*mean) / (s - s2/s)
		return mean, v, wv, na >= 2
	}
	smd := func(code int32, weighted bool) float64 {
		m1, v1, _, ok1 := moments(code, 1, weighted)
		m0, v0, _, ok0 := moments(code, 0, weighted)
		if !ok1 || !ok0 {
			return math.NaN()
		}
		d := math.Sqrt((v1 + v0) / 2)
		if d == 0 {
			return math.NaN()
		}
		return (m1 - m0) / d
	}
	var rows []balanceRow
	for li, code := range cv.levels {
		r := balanceRow{analysis: name, covariate: cv.name + "=" + cv.names[li], essI: essI, essC: essC, maxWeight: maxW}
		r.nI, r.nC = int(cnt[code][1]), int(cnt[code][0])
		r.meanI, r.meanC = math.NaN(), math.NaN()
		if n[1] > 0 {
			r.meanI = cnt[code][1] / n[1]
		}
		if n[0] > 0 {
			r.meanC = cnt[code][0] / n[0]
		}
		r.smdU = smd(code, false)
		r.smdW, r.varRatio = math.NaN(), math.NaN()
		if w != nil {
			r.smdW = smd(code, true)
			_, _, wv1, ok1 := moments(code, 1, true)
			_, _, wv0, ok0 := moments(code, 0, true)
			if ok1 && ok0 && wv0 != 0 {
				r.varRatio = wv1 / wv0
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// hedgesScale is a frame's stats.HedgesScale for a term (HedgesG's sums
// in its order: the same g), computed once, or its error.
type hedgesScale struct {
	s   stats.HedgesScale
	err error
}

// g is Hedges' g of an estimate.
func (h hedgesScale) g(est float64) (float64, error) {
	if h.err != nil {
		return math.NaN(), h.err
	}
	return h.s.G(est), nil
}

// numericBalance is the balance row of a numeric covariate: the arm means,
// stats.SMD before and after weighting and stats.VarianceRatio, from two
// passes over x with their sums in their order, and the counts of
// balanceCount.
func numericBalance(name string, cv propCov, arm, w []float64, essI, essC, maxW float64) balanceRow {
	r := balanceRow{analysis: name, covariate: cv.name, essI: essI, essC: essC, maxWeight: maxW}
	x := cv.x
	var n, ones [2]int
	var sx, sw, swx, ss, wss, sw2 [2]float64
	for i, v := range x {
		if math.IsNaN(v) {
			r.meanI, r.meanC, r.smdU, r.smdW, r.varRatio = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
			r.nI, r.nC = balanceCount(x, arm, cv.binary)
			return r
		}
		a := int(arm[i])
		n[a]++
		if v == 1 {
			ones[a]++
		}
		sx[a] += v
		if w != nil {
			sw[a] += w[i]
			swx[a] += w[i] * v
		}
	}
	var m, mw [2]float64
	for a := range m {
		m[a], mw[a] = math.NaN(), math.NaN()
		if n[a] > 0 {
			m[a] = sx[a] / float64(n[a])
			if w != nil {
				mw[a] = swx[a] / sw[a]
			}
		}
	}
	for i, v := range x {
		a := int(arm[i])
		ss[a] += (v - m[a]) * (v - m[a])
		if w != nil {
			wi := w[i]
			wss[a] += wi * (v - mw[a]) * (v - mw[a])
			sw2[a] += wi * wi
		}
	}
	r.meanI, r.meanC = m[1], m[0]
	r.nI, r.nC = n[1], n[0]
	if cv.binary {
		r.nI, r.nC = ones[1], ones[0]
	}
	r.smdU, r.smdW, r.varRatio = math.NaN(), math.NaN(), math.NaN()
	if n[1] < 2 || n[0] < 2 {
		return r
	}
	v1, v0 := ss[1]/float64(n[1]-1), ss[0]/float64(n[0]-1)
	if d := math.Sqrt((v1 + v0) / 2); d != 0 {
		r.smdU = (m[1] - m[0]) / d
		if w != nil {
			r.smdW = (mw[1] - mw[0]) / d
		}
	}
	if w != nil {
		wv1 := wss[1] / (sw[1] - sw2[1]/sw[1])
		wv0 := wss[0] / (sw[0] - sw2[0]/sw[0])
		if wv0 != 0 {
			r.varRatio = wv1 / wv0
		}
	}
	return r
}
