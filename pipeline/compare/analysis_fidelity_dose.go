package compare

import (
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/stats"
)

// fidelity_dose: y_w ~ high_fidelity + y_baseline + trust, cr2, where
// high_fidelity = 1 for a team whose band in the last rating period is
// the first (highest) band, at every wave; participants of teams without
// a band in that period are left out.
type fidelityDoseAnalysis struct{}

const termHighFidelity = "high_fidelity"

func (fidelityDoseAnalysis) Name() string      { return "fidelity_dose" }
func (fidelityDoseAnalysis) Methods() []string { return []string{"cr2"} }
func (fidelityDoseAnalysis) Term() string      { return termHighFidelity }
func (fidelityDoseAnalysis) Needs() []string {
	return []string{"y", "y_baseline", "arm", "trust", "team", "fidelity_band"}
}

func (fidelityDoseAnalysis) Population() Population {
	return Population{Key: "fidelity_dose", CompleteLane: true, Exclude: func(c *outcomeComparison) func(i int) int {
		d := c.d
		if !slices.Contains(d.hasBand, false) {
			return nil
		}
		return func(i int) int {
			if !d.hasBand[d.team[i]] {
				return dropNoBand
			}
			return -1
		}
	}}
}

func (fidelityDoseAnalysis) Model(m *Model) string {
	f := m.Frame()
	d := m.C.d
	m.X = make([]float64, len(f.rows))
	high := make([]float64, len(d.band)) // 1 for a team in the first band
	for t, b := range d.band {
		if d.hasBand[t] && b == m.C.s.Fidelity.Bands[0].Name {
			high[t] = 1
		}
	}
	for i, r := range f.rows {
		m.X[i] = high[d.team[r]]
	}
	return ""
}

func (fidelityDoseAnalysis) FitSuff(fr *fitRows, sums *stats.ClusterSums, _ colDesign) ([]effectRow, bool) {
	return fr.olsSuff(sums, false)
}

func (fidelityDoseAnalysis) FitDense(fr *fitRows, x *mat.Dense, cluster []int, y, w []float64) []effectRow {
	return fr.olsDense(x, cluster, y, w, false)
}
