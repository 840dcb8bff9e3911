package compare

import (
	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/stats"
)

// AnalysisPrimary is the primary analysis: y_w ~ arm + y_baseline + trust
// by OLS with CR2 standard errors and Satterthwaite df (method cr2), and
// CR1 with G − 1 df and the pilot study's partial η² (method cr1).
const AnalysisPrimary = "primary"

type primaryAnalysis struct{}

func (primaryAnalysis) Name() string           { return AnalysisPrimary }
func (primaryAnalysis) Methods() []string      { return []string{"cr2", "cr1"} }
func (primaryAnalysis) Term() string           { return TermArm }
func (primaryAnalysis) Needs() []string        { return []string{"y", "y_baseline", "arm", "trust", "team"} }
func (primaryAnalysis) Population() Population { return completeCases }

func (primaryAnalysis) Model(m *Model) string {
	m.Frame()
	m.Shared = true
	return ""
}

func (primaryAnalysis) FitSuff(fr *fitRows, sums *stats.ClusterSums, _ colDesign) ([]effectRow, bool) {
	return fr.olsSuff(sums, true)
}

func (primaryAnalysis) FitDense(fr *fitRows, x *mat.Dense, cluster []int, y, w []float64) []effectRow {
	return fr.olsDense(x, cluster, y, w, true)
}
