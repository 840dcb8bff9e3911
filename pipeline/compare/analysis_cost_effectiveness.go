package compare

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
	"github.com/connectingpeople/cpi/stats"
)

// cost_effectiveness (DESIGN §13): the net-benefit regression of Hoch,
// Briggs & Willan (2002) at every willingness to pay λ of the study's grid
// (economics.lambda), on the population not withdrawn with csri.cost at
// baseline and at the primary wave, eq5d5l.index at baseline and
// eq5d5l.qaly at the primary wave:
//
//	NB_i(λ) = λ·qaly_i − cost_i ~ arm + u_baseline + cost_baseline + trust
//
// by OLS, CR2 by team with Satterthwaite df (method cr2). inb is the arm
// coefficient, prob_cost_effective P(T_df ≤ inb/inb_se); inc_cost and
// inc_qaly are the arm coefficients of cost and qaly on the same
// regressors (so inb = λ·inc_qaly − inc_cost), icer their ratio.
//
// It is not fitted per outcome: it implements TableAnalysis, and the stage
// runs it once and writes its table, cost_effectiveness (one row per
// method × λ). Its effects-row methods are never called.
type costEffectivenessAnalysis struct{}

// The outcomes the analysis reads: costs and QALYs (QALYs adjusted for
// baseline utility through analysis.baselines).
const (
	ceCost = "csri.cost"
	ceQALY = "eq5d5l.qaly"
)

func (costEffectivenessAnalysis) Name() string { return "cost_effectiveness" }
func (costEffectivenessAnalysis) Methods() []string {
	return []string{"cr2", "two_stage_bootstrap"}
}
func (costEffectivenessAnalysis) Term() string { return TermArm }
func (costEffectivenessAnalysis) Needs() []string {
	return []string{ceCost, ceCost + "_baseline", ceQALY, "eq5d5l.index_baseline", "arm", "trust", "team"}
}
func (costEffectivenessAnalysis) Population() Population {
	return Population{Key: "cost_effectiveness"}
}
func (costEffectivenessAnalysis) Model(*Model) string {
	return "cost_effectiveness writes its own table"
}
func (costEffectivenessAnalysis) FitSuff(*fitRows, *stats.ClusterSums, colDesign) ([]effectRow, bool) {
	return nil, true
}
func (costEffectivenessAnalysis) FitDense(*fitRows, *mat.Dense, []int, []float64, []float64) []effectRow {
	return nil
}

// Tables names the table the analysis writes.
func (costEffectivenessAnalysis) Tables() []string {
	return []string{"cost_effectiveness", "ce_bootstrap"}
}

// ceReplicate is one row of ce_bootstrap: an estimable replicate of the
// two-stage bootstrap (the cost-effectiveness plane).
type ceReplicate struct {
	analysis  string  `col:"analysis"`
	wave      string  `col:"wave"`
	replicate int     `col:"replicate"`
	incCost   float64 `col:"inc_cost"`
	incQALY   float64 `col:"inc_qaly"`
}

// ceExactTeam is the largest team the bootstrap resamples member by
// member; a larger one takes stats.TwoStage's normal route.
const ceExactTeam = 1000

// ceRow is one row of cost_effectiveness; NaN stands for null.
type ceRow struct {
	analysis  string  `col:"analysis"` // set by ceWrite
	wave      string  `col:"wave"`     // set by ceWrite
	method    string  `col:"method"`
	primary   bool    `col:"primary"` // set by ceWrite
	lambda    float64 `col:"lambda"`
	incCost   float64 `col:"inc_cost"`
	incQALY   float64 `col:"inc_qaly"`
	icer      float64 `col:"icer"`
	inb       float64 `col:"inb"`
	inbSE     float64 `col:"inb_se"`
	inbDF     float64 `col:"inb_df"`
	inbLow    float64 `col:"inb_ci_low"`
	inbHigh   float64 `col:"inb_ci_high"`
	pCE       float64 `col:"prob_cost_effective"`
	evpi      float64 `col:"evpi"`
	nObs      int     `col:"n_obs"`
	nClusters int     `col:"n_clusters"`
	note      string  `col:"note"`
}

// ceFrame is the analysis's population as columns: the design [1, arm,
// u_baseline, cost_baseline, trust dummies] and the responses.
type ceFrame struct {
	cols      [][]float64
	cluster   []int
	qaly      []float64
	cost      []float64
	nClusters int
	armTeams  [2]int // teams in the intervention and control arms
	note      string // why there is no frame
}

// Run fits the net-benefit regression at every λ and writes the table.
func (a costEffectivenessAnalysis) Run(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, d *cmpColumns) error {
	s := env.Study
	grid := s.Economics.LambdaGrid()
	f := ceBuildFrame(s, d)
	var rows []ceRow
	var reps []ceReplicate
	if f.note == "" {
		var err error
		if rows, reps, err = ceEstimate(ctx, s, f, grid); err != nil {
			return err
		}
	}
	if f.note != "" {
		rows = rows[:0]
		for _, m := range a.Methods() {
			for _, l := range grid {
				n := math.NaN()
				rows = append(rows, ceRow{method: m, lambda: l, incCost: n, incQALY: n, icer: n, inb: n, inbSE: n, inbDF: n, inbLow: n, inbHigh: n, pCE: n, evpi: n,
					nObs: len(f.cost), nClusters: f.nClusters, note: f.note})
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	wave := s.PrimaryWave()
	for i := range reps {
		reps[i].analysis, reps[i].wave = a.Name(), wave
	}
	if err := warehouse.WriteRecords(env, tx, "ce_bootstrap", reps); err != nil {
		return err
	}
	return ceWrite(env, tx, a.Name(), wave, s.Economics.DefaultMethod, rows)
}

// ceEstimate fits the net-benefit regressions (cr2 rows) beside the
// bootstrap's replicates, which take the regressions' rows once fitted.
// When the regressions cannot be fitted, f.note says why and there are no
// rows: the bootstrap is left out.
func ceEstimate(ctx context.Context, s *schemas.Study, f *ceFrame, grid []float64) ([]ceRow, []ceReplicate, error) {
	var rows, boot []ceRow
	var reps []ceReplicate
	var err, berr error
	var wg sync.WaitGroup
	wg.Go(func() {
		if rows, err = ceFitCR2(f, grid, s.Analysis.CILevel); err != nil {
			rows = make([]ceRow, len(grid))
		}
	})
	if b := s.Economics.Bootstrap; b.Replicates > 0 {
		point := func() []ceRow { wg.Wait(); return rows }
		boot, reps, berr = ceBootstrap(ctx, f, grid, point, b.Replicates, b.Seed, s.Analysis.CILevel, ceExactTeam)
	}
	if wg.Wait(); err != nil {
		f.note = "the net-benefit regression could not be fitted: " + err.Error()
		return nil, nil, nil
	}
	if berr != nil {
		return nil, nil, berr
	}
	return append(rows, boot...), reps, nil
}

// ceBuildFrame selects the population at the primary wave.
func ceBuildFrame(s *schemas.Study, d *cmpColumns) *ceFrame {
	f := &ceFrame{}
	oc, oq := slices.Index(s.Analysis.Outcomes, ceCost), slices.Index(s.Analysis.Outcomes, ceQALY)
	if oc < 0 || oq < 0 {
		f.note = "needs csri.cost and eq5d5l.qaly among analysis.outcomes"
		return f
	}
	if b := s.OutcomeBaseline(ceQALY); b != "eq5d5l.index" {
		f.note = "needs analysis.baselines to adjust eq5d5l.qaly for eq5d5l.index"
		return f
	}
	w := s.WaveIndex(s.PrimaryWave())
	armI, armC := -1, -1
	if i, ok := d.arms.index[s.InterventionArm()]; ok {
		armI = i
	}
	if i, ok := d.arms.index[s.Arms[1]]; ok {
		armC = i
	}
	var trusts []int32
	keep := make([]int, 0, d.n)
	for i := 0; i < d.n; i++ {
		a := int(d.arm[i])
		if d.withdrawn[i] || d.team[i] < 0 || d.trust[i] < 0 || (a != armI && a != armC) {
			continue
		}
		c0, c1 := d.vals[oc][0].At(i), d.vals[oc][w].At(i)
		u0, q := d.vals[oq][0].At(i), d.vals[oq][w].At(i)
		if math.IsNaN(c0) || math.IsNaN(c1) || math.IsNaN(u0) || math.IsNaN(q) {
			continue
		}
		keep = append(keep, i)
		if !slices.Contains(trusts, d.trust[i]) {
			trusts = append(trusts, d.trust[i])
		}
	}
	slices.SortFunc(trusts, func(x, y int32) int { return CmpKeys([]string{d.trusts.levels[x]}, []string{d.trusts.levels[y]}) })
	k := 4 + max(len(trusts)-1, 0)
	f.cols = make([][]float64, k)
	for j := range f.cols {
		f.cols[j] = make([]float64, 0, len(keep))
	}
	f.cluster, f.qaly, f.cost = make([]int, 0, len(keep)), make([]float64, 0, len(keep)), make([]float64, 0, len(keep))
	clusterOf := map[int32]int{}
	armTeams := [2]map[int32]bool{{}, {}}
	for _, i := range keep {
		arm := 0.0
		if int(d.arm[i]) == armI {
			arm = 1
			armTeams[0][d.team[i]] = true
		} else {
			armTeams[1][d.team[i]] = true
		}
		f.cols[0] = append(f.cols[0], 1)
		f.cols[1] = append(f.cols[1], arm)
		f.cols[2] = append(f.cols[2], d.vals[oq][0].At(i))
		f.cols[3] = append(f.cols[3], d.vals[oc][0].At(i))
		for j, t := range trusts[min(1, len(trusts)):] {
			x := 0.0
			if d.trust[i] == t {
				x = 1
			}
			f.cols[4+j] = append(f.cols[4+j], x)
		}
		c, ok := clusterOf[d.team[i]]
		if !ok {
			c = len(clusterOf)
			clusterOf[d.team[i]] = c
		}
		f.cluster = append(f.cluster, c)
		f.qaly = append(f.qaly, d.vals[oq][w].At(i))
		f.cost = append(f.cost, d.vals[oc][w].At(i))
	}
	f.nClusters = len(clusterOf)
	f.armTeams = [2]int{len(armTeams[0]), len(armTeams[1])}
	if f.armTeams[0] < 2 || f.armTeams[1] < 2 {
		f.note = fmt.Sprintf("too few clusters: %d intervention and %d control teams with complete costs and QALYs (at least 2 each)", f.armTeams[0], f.armTeams[1])
	}
	return f
}

// ceFit is the CR2 test of the arm coefficient of one response.
func ceFit(f *ceFrame, y []float64, level float64) (stats.CoefTest, error) {
	sums, err := stats.NewClusterSums(len(f.cols), false)
	if err != nil {
		return stats.CoefTest{}, err
	}
	if err := sums.AddColumns(f.cluster, f.cols, y, nil); err != nil {
		return stats.CoefTest{}, err
	}
	fit, err := stats.SuffOLS(sums)
	if err != nil {
		return stats.CoefTest{}, err
	}
	if slices.Contains(fit.Aliased, 1) {
		return stats.CoefTest{}, fmt.Errorf("the arm is collinear with the other columns")
	}
	cr2, err := fit.CR2()
	if err != nil {
		return stats.CoefTest{}, err
	}
	return cr2.Test(1, level), nil
}

// ceFitCR2 fits cost, QALYs and the net benefit at every λ. The
// regressions are linear in the response, so NB(λ)'s arm coefficient is
// λ·inc_qaly − inc_cost, its CR2 variance the quadratic λ²·V_qq − 2λ·V_qc
// + V_cc (the CR2 sandwich is a quadratic form in the residuals, which are
// linear in the response), and its Satterthwaite df depends on the design
// alone, so is the same at every λ. Three fits give them all: cost (V_cc,
// df), QALYs (V_qq) and NB at the grid's largest λ_0 (V_0 = λ_0²·V_qq −
// 2λ_0·V_qc + V_cc, whence V_qc): one pass over the data each, not one per
// λ.
func ceFitCR2(f *ceFrame, grid []float64, level float64) ([]ceRow, error) {
	tc, err := ceFit(f, f.cost, level)
	if err != nil {
		return nil, err
	}
	tq, err := ceFit(f, f.qaly, level)
	if err != nil {
		return nil, err
	}
	vcc, vqq, vqc := tc.StdError*tc.StdError, tq.StdError*tq.StdError, 0.0
	if l0 := slices.Max(grid); l0 > 0 {
		nb := make([]float64, len(f.cost))
		for i := range nb {
			nb[i] = l0*f.qaly[i] - f.cost[i]
		}
		t0, err := ceFit(f, nb, level)
		if err != nil {
			return nil, err
		}
		vqc = (l0*l0*vqq + vcc - t0.StdError*t0.StdError) / (2 * l0)
	}
	icer := tc.Estimate / tq.Estimate
	var rows []ceRow
	for _, l := range grid {
		t := stats.TTest(l*tq.Estimate-tc.Estimate, math.Sqrt(max(l*l*vqq-2*l*vqc+vcc, 0)), tc.DF, level)
		rows = append(rows, ceRow{method: "cr2", lambda: l, incCost: tc.Estimate, incQALY: tq.Estimate, icer: icer,
			inb: t.Estimate, inbSE: t.StdError, inbDF: t.DF, inbLow: t.CILow, inbHigh: t.CIHigh, pCE: stats.TCDF(t.T, t.DF),
			evpi: stats.EVPIT(t.Estimate, t.StdError, t.DF), nObs: len(f.cost), nClusters: f.nClusters})
	}
	return rows, nil
}

// ceWrite writes the table cost_effectiveness, rows by method then λ.
func ceWrite(env warehouse.Env, tx *warehouse.Tx, analysis, wave, primary string, rows []ceRow) error {
	slices.SortStableFunc(rows, func(a, b ceRow) int {
		if c := cmp.Compare(a.method, b.method); c != 0 {
			return c
		}
		return cmp.Compare(a.lambda, b.lambda)
	})
	for i := range rows {
		rows[i].analysis, rows[i].wave, rows[i].primary = analysis, wave, rows[i].method == primary
	}
	return warehouse.WriteRecords(env, tx, "cost_effectiveness", rows)
}

// Method two_stage_bootstrap (Davison & Hinkley 1997 §3.8; Ng, Grieve &
// Carpenter 2013; Gomes et al. 2012): within each arm, the follow-up cost
// and QALYs are first shrunk, ỹ_ij = m + c·(ȳ_j − m) + √(n_j/(n_j−1))·(y_ij −
// ȳ_j), m the mean of the arm's team means, c² = max(0, 1 − W/S²_B), S²_B
// the variance of the team means and W the mean over teams of s²_j/n_j (the
// correction generalised to unequal team sizes: the resampled team means
// then vary as the estimated between-team variance, the residuals as the
// within-team one). Each replicate draws, within each arm, as many teams
// as the arm has with replacement, then, within each team drawn, as many
// participants as it has with replacement: the replicate is a vector of
// frequency weights (no copy of the data). It fits the cr2 model (arm,
// u_baseline, cost_baseline, trust; weighted least squares with those
// weights) to ỹ for cost and QALYs; INB_b(λ) = λ·q_b − c_b. The fit needs
// only each drawn team's resampled sums (stats.TwoStage): a team of at
// most exactMax participants (ceExactTeam in the stage, 1,000) is
// resampled member by member, a larger one has its resampled sums drawn
// from their multinomial mean and covariance (the normal route, said in
// the note), so a replicate costs O(teams), not O(participants), at
// national scale. The estimable replicates are returned for ce_bootstrap.
// evpi is the replicates' mean of max(INB, 0) less max of their mean. A replicate in
// which the arm effect cannot be estimated (no trust with both arms drawn)
// is left out and counted in the note. inc_cost, inc_qaly and icer are the
// point estimates of the original data (as cr2: point); inb_se is the SD of the
// replicates' INB, the interval their 2.5% and 97.5% percentiles (R's
// quantile type 7) and prob_cost_effective the share with INB > 0.
func ceBootstrap(ctx context.Context, f *ceFrame, grid []float64, point func() []ceRow, replicates int, seed uint64, level float64, exactMax int) ([]ceRow, []ceReplicate, error) {
	n := len(f.cost)
	// The responses and covariates centred (the arm coefficient is
	// unchanged; the sums are better conditioned).
	centre := func(y []float64) []float64 {
		var m float64
		for _, v := range y {
			m += v
		}
		m /= float64(len(y))
		out := make([]float64, len(y))
		for i, v := range y {
			out[i] = v - m
		}
		return out
	}
	arm := make([]int, n)
	stratum := make([]int, n)
	for i := range n {
		arm[i] = int(f.cols[1][i])
		for j := 4; j < len(f.cols); j++ {
			if f.cols[j][i] != 0 {
				stratum[i] = j - 3
			}
		}
	}
	ts, err := stats.NewTwoStage(f.cluster, arm, stratum,
		[][]float64{centre(f.cols[2]), centre(f.cols[3])},
		[][]float64{centre(ceShrink(f, f.cost)), centre(ceShrink(f, f.qaly))}, exactMax)
	if err != nil {
		return nil, nil, fmt.Errorf("cost_effectiveness: %w", err)
	}
	rng := rand.New(rand.NewPCG(seed, 0x7e57a6e))
	var cs, qs []float64
	var reps []ceReplicate
	coef := make([]float64, 2)
	failed := 0
	for b := range replicates {
		if b%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
		}
		if !ts.Replicate(rng, coef) {
			failed++
			continue
		}
		cs, qs = append(cs, coef[0]), append(qs, coef[1])
		reps = append(reps, ceReplicate{replicate: b + 1, incCost: coef[0], incQALY: coef[1]})
	}
	note := fmt.Sprintf("%d replicates, seed %d", replicates, seed)
	if failed > 0 {
		note += fmt.Sprintf("; %d in which the arm effect could not be estimated (no trust with both arms drawn) left out", failed)
	}
	if k := ts.NormalClusters(); k > 0 {
		note += fmt.Sprintf("; participants of %d teams over %d resampled by the normal approximation to their sums", k, exactMax)
	}
	rows, pt := make([]ceRow, len(grid)), point() // the point estimates, once fitted
	inb := make([]float64, len(cs))
	alpha := (1 - level) / 2
	for k, l := range grid {
		r := ceRow{method: "two_stage_bootstrap", lambda: l, incCost: pt[k].incCost, incQALY: pt[k].incQALY, icer: pt[k].icer,
			inb: pt[k].inb, inbDF: math.NaN(), nObs: n, nClusters: f.nClusters, note: note}
		pos := 0
		for b := range cs {
			inb[b] = l*qs[b] - cs[b]
			if inb[b] > 0 {
				pos++
			}
		}
		if len(inb) >= 2 {
			r.inbSE = stats.SampleSD(inb)
			r.evpi = stats.EVPISample(inb)
			sorted := slices.Clone(inb)
			slices.Sort(sorted)
			r.inbLow, r.inbHigh = stats.Quantile7(sorted, alpha), stats.Quantile7(sorted, 1-alpha)
			r.pCE = float64(pos) / float64(len(inb))
		} else {
			r.inbSE, r.inbLow, r.inbHigh, r.pCE, r.evpi = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
		}
		rows[k] = r
	}
	return rows, reps, nil
}

// ceShrink is y with the shrinkage correction applied within each arm.
func ceShrink(f *ceFrame, y []float64) []float64 {
	n := len(y)
	sum := make([]float64, f.nClusters)
	cnt := make([]float64, f.nClusters)
	armOf := make([]int, f.nClusters)
	for i := 0; i < n; i++ {
		sum[f.cluster[i]] += y[i]
		cnt[f.cluster[i]]++
		armOf[f.cluster[i]] = int(f.cols[1][i])
	}
	mean := make([]float64, f.nClusters)
	for g := range mean {
		mean[g] = sum[g] / cnt[g]
	}
	ss := make([]float64, f.nClusters)
	for i := 0; i < n; i++ {
		d := y[i] - mean[f.cluster[i]]
		ss[f.cluster[i]] += d * d
	}
	var m, c [2]float64
	for a := range 2 {
		var means []float64
		var w float64
		for g := range mean {
			if armOf[g] != a {
				continue
			}
			means = append(means, mean[g])
			if cnt[g] > 1 {
				w += ss[g] / (cnt[g] - 1) / cnt[g]
			}
		}
		if len(means) == 0 {
			continue
		}
		for _, x := range means {
			m[a] += x
		}
		m[a] /= float64(len(means))
		w /= float64(len(means))
		var sb float64
		for _, x := range means {
			sb += (x - m[a]) * (x - m[a])
		}
		if len(means) > 1 {
			sb /= float64(len(means) - 1)
		}
		if sb > 0 {
			c[a] = math.Sqrt(max(0, 1-w/sb))
		}
	}
	out := make([]float64, n)
	for i := 0; i < n; i++ {
		g := f.cluster[i]
		a := armOf[g]
		infl := 0.0
		if cnt[g] > 1 {
			infl = math.Sqrt(cnt[g] / (cnt[g] - 1))
		}
		out[i] = m[a] + c[a]*(mean[g]-m[a]) + infl*(y[i]-mean[g])
	}
	return out
}
