package compare

import (
	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/stats"
)

// wild_bootstrap: the primary model, method wild_webb: wild cluster
// restricted bootstrap-t with Webb weights, analysis.bootstrap.draws draws
// from a PCG source seeded with analysis.bootstrap.seed and the outcome
// (and wave); std_error is the CR1 standard error, df is null, the
// interval comes from test inversion.
type wildAnalysis struct{}

func (wildAnalysis) Name() string           { return "wild_bootstrap" }
func (wildAnalysis) Methods() []string      { return []string{"wild_webb"} }
func (wildAnalysis) Term() string           { return TermArm }
func (wildAnalysis) Needs() []string        { return []string{"y", "y_baseline", "arm", "trust", "team"} }
func (wildAnalysis) Population() Population { return completeCases }

func (wildAnalysis) Model(m *Model) string {
	m.Frame()
	m.Shared = true
	return ""
}

func (wildAnalysis) FitSuff(fr *fitRows, sums *stats.ClusterSums, _ colDesign) ([]effectRow, bool) {
	if suffAliased(sums) {
		return nil, false // the dense route drops and names the column
	}
	res, err := stats.SuffWildClusterBootstrap(sums, 1, fr.wildConfig(), fr.rng())
	if err != nil {
		return nil, false
	}
	return fr.wild(res), true
}

func (wildAnalysis) FitDense(fr *fitRows, x *mat.Dense, cluster []int, y, _ []float64) []effectRow {
	x, aliased := dropAliased(x)
	if len(aliased) > 0 {
		fr.dropped = joinNotes(fr.aliasedNote(aliased), fr.dropped)
	}
	res, err := stats.WildClusterBootstrap(x, y, nil, cluster, 1, fr.wildConfig(), fr.rng())
	if err != nil {
		return fr.failed(err, fr.dropped)
	}
	return fr.wild(res)
}
