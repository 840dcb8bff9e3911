package compare

import (
	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/stats"
)

// change: (y_w − y_baseline) ~ arm + trust, cr2. An outcome without a
// baseline of its own (none, or another scale's: eq5d5l.qaly) gets a row
// with a null estimate and a note.
type changeAnalysis struct{}

func (changeAnalysis) Name() string           { return "change" }
func (changeAnalysis) Methods() []string      { return []string{"cr2"} }
func (changeAnalysis) Term() string           { return TermArm }
func (changeAnalysis) Needs() []string        { return []string{"y", "y_baseline", "arm", "trust", "team"} }
func (changeAnalysis) Population() Population { return completeCases }

func (changeAnalysis) Model(m *Model) string {
	if !m.C.hasBase {
		return m.C.outcome + " has no baseline, so no change from baseline"
	}
	if b := m.C.s.OutcomeBaseline(m.C.outcome); b != m.C.outcome {
		return m.C.outcome + " adjusts for " + b + " at baseline, another scale: no change from baseline"
	}
	f := m.Frame()
	m.Y = make([]float64, len(f.rows))
	for i := range m.Y {
		m.Y[i] = f.yFU[i] - f.yBase[i]
	}
	m.WithBase = false
	return ""
}

func (changeAnalysis) FitSuff(fr *fitRows, sums *stats.ClusterSums, _ colDesign) ([]effectRow, bool) {
	return fr.olsSuff(sums, false)
}

func (changeAnalysis) FitDense(fr *fitRows, x *mat.Dense, cluster []int, y, w []float64) []effectRow {
	return fr.olsDense(x, cluster, y, w, false)
}
