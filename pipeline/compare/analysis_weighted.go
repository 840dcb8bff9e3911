package compare

import (
	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/stats"
)

// AnalysisWeighted: the primary model by WLS with stabilised ATE weights
// from a logistic propensity model of the intervention arm on
// analysis.propensity_covariates and y_baseline, cr2; it writes the
// balance rows. Participants missing a used covariate are left out.
const AnalysisWeighted = "weighted"

type weightedAnalysis struct{}

func (weightedAnalysis) Name() string      { return AnalysisWeighted }
func (weightedAnalysis) Methods() []string { return []string{"cr2"} }
func (weightedAnalysis) Term() string      { return TermArm }
func (weightedAnalysis) Needs() []string {
	return []string{"y", "y_baseline", "arm", "trust", "team", "analysis.propensity_covariates"}
}

func (weightedAnalysis) Population() Population {
	return Population{Key: AnalysisWeighted, Exclude: func(c *outcomeComparison) func(i int) int { return c.ps.keepCols(c.d) }}
}

func (weightedAnalysis) Model(m *Model) string {
	f := m.Frame()
	m.Weights, m.Balance, m.WeightNote = m.C.weights(f)
	m.NeedWeights = true
	return ""
}

func (weightedAnalysis) FitSuff(fr *fitRows, sums *stats.ClusterSums, _ colDesign) ([]effectRow, bool) {
	return fr.olsSuff(sums, false)
}

func (weightedAnalysis) FitDense(fr *fitRows, x *mat.Dense, cluster []int, y, w []float64) []effectRow {
	return fr.olsDense(x, cluster, y, w, false)
}
