package compare

import (
	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/stats"
)

// mixed: the primary model's fixed effects with a random intercept per
// team by REML (lme4's estimate and SE), method reml; the t reference has
// nlme's between-within df; the note gives the ICC and says when the fit
// is on the boundary.
type mixedAnalysis struct{}

func (mixedAnalysis) Name() string           { return "mixed" }
func (mixedAnalysis) Methods() []string      { return []string{"reml"} }
func (mixedAnalysis) Term() string           { return TermArm }
func (mixedAnalysis) Needs() []string        { return []string{"y", "y_baseline", "arm", "trust", "team"} }
func (mixedAnalysis) Population() Population { return completeCases }

func (mixedAnalysis) Model(m *Model) string {
	m.Frame()
	m.Shared = true
	return ""
}

func (mixedAnalysis) FitSuff(fr *fitRows, sums *stats.ClusterSums, des colDesign) ([]effectRow, bool) {
	if suffAliased(sums) {
		return nil, false // the dense route drops and names the column
	}
	fit, err := stats.SuffMixedREML(sums)
	if err != nil {
		return nil, false
	}
	return fr.mixed(fit, des.betweenColumns(fr.c.teamGroups(fr.base.term, des.f, fr.x))), true
}

func (mixedAnalysis) FitDense(fr *fitRows, x *mat.Dense, cluster []int, y, _ []float64) []effectRow {
	x, aliased := dropAliased(x)
	if len(aliased) > 0 {
		fr.dropped = joinNotes(fr.aliasedNote(aliased), fr.dropped)
	}
	fit, err := stats.MixedREML(x, y, cluster)
	if err != nil {
		return fr.failed(err, fr.dropped)
	}
	return fr.mixed(fit, betweenColumns(x, cluster))
}
