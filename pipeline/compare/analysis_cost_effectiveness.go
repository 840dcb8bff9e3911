package compare

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

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

func (costEffectivenessAnalysis) Name() string      { return "cost_effectiveness" }
func (costEffectivenessAnalysis) Methods() []string { return []string{"cr2"} }
func (costEffectivenessAnalysis) Term() string      { return TermArm }
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
func (costEffectivenessAnalysis) Tables() []string { return []string{"cost_effectiveness"} }

// ceRow is one row of cost_effectiveness; NaN stands for null.
type ceRow struct {
	method                                  string
	lambda                                  float64
	incCost, incQALY, icer                  float64
	inb, inbSE, inbDF, inbLow, inbHigh, pCE float64
	nObs, nClusters                         int
	note                                    string
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
	if f.note == "" {
		var err error
		rows, err = ceFitCR2(f, grid, s.Analysis.CILevel)
		if err != nil {
			f.note = "the net-benefit regression could not be fitted: " + err.Error()
		}
	}
	if f.note != "" {
		rows = rows[:0]
		for _, l := range grid {
			n := math.NaN()
			rows = append(rows, ceRow{method: "cr2", lambda: l, incCost: n, incQALY: n, icer: n, inb: n, inbSE: n, inbDF: n, inbLow: n, inbHigh: n, pCE: n,
				nObs: len(f.cost), nClusters: f.nClusters, note: f.note})
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return ceWrite(env, tx, a.Name(), rows)
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
	var keep []int
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

// ceFitCR2 fits cost, QALYs and the net benefit at every λ.
func ceFitCR2(f *ceFrame, grid []float64, level float64) ([]ceRow, error) {
	tc, err := ceFit(f, f.cost, level)
	if err != nil {
		return nil, err
	}
	tq, err := ceFit(f, f.qaly, level)
	if err != nil {
		return nil, err
	}
	icer := tc.Estimate / tq.Estimate
	nb := make([]float64, len(f.cost))
	var rows []ceRow
	for _, l := range grid {
		for i := range nb {
			nb[i] = l*f.qaly[i] - f.cost[i]
		}
		t, err := ceFit(f, nb, level)
		if err != nil {
			return nil, err
		}
		rows = append(rows, ceRow{method: "cr2", lambda: l, incCost: tc.Estimate, incQALY: tq.Estimate, icer: icer,
			inb: t.Estimate, inbSE: t.StdError, inbDF: t.DF, inbLow: t.CILow, inbHigh: t.CIHigh, pCE: ceTCDF(t.T, t.DF),
			nObs: len(f.cost), nClusters: f.nClusters})
	}
	return rows, nil
}

// ceTCDF is P(T_df ≤ x), R's pt(x, df).
func ceTCDF(x, df float64) float64 {
	p := stats.TTwoSided(x, df) / 2
	if x >= 0 {
		return 1 - p
	}
	return p
}

// ceWrite writes the table cost_effectiveness, rows by method then λ.
func ceWrite(env warehouse.Env, tx *warehouse.Tx, analysis string, rows []ceRow) error {
	slices.SortStableFunc(rows, func(a, b ceRow) int {
		if c := cmp.Compare(a.method, b.method); c != 0 {
			return c
		}
		return cmp.Compare(a.lambda, b.lambda)
	})
	tb := env.Study.Tables.Table("cost_effectiveness")
	col := func(name string) int { return warehouse.ColIndex(tb, name) }
	return WriteTable(env, tx, "cost_effectiveness", func(rw *warehouse.RowWriter) error {
		for _, r := range rows {
			rw.Str(col("analysis"), analysis)
			rw.Str(col("method"), r.method)
			rw.Float64(col("lambda"), r.lambda, true)
			optFloat(rw, col("inc_cost"), r.incCost)
			optFloat(rw, col("inc_qaly"), r.incQALY)
			optFloat(rw, col("icer"), r.icer)
			optFloat(rw, col("inb"), r.inb)
			optFloat(rw, col("inb_se"), r.inbSE)
			optFloat(rw, col("inb_df"), r.inbDF)
			optFloat(rw, col("inb_ci_low"), r.inbLow)
			optFloat(rw, col("inb_ci_high"), r.inbHigh)
			optFloat(rw, col("prob_cost_effective"), r.pCE)
			rw.Int32(col("n_obs"), int32(r.nObs), true)
			rw.Int32(col("n_clusters"), int32(r.nClusters), true)
			rw.NullStr(col("note"), r.note)
			if err := rw.RowDone(); err != nil {
				return err
			}
		}
		return nil
	})
}
