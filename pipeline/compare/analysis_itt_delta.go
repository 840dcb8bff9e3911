package compare

import (
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/stats"
)

// AnalysisITTDelta is the δ-adjusted sensitivity analysis of itt_mi
// (DESIGN §13): the same population, imputations (same seed and stream, so
// δ = 0 is itt_mi exactly) and pooled CR2 analysis, with the intervention
// arm's imputed values at the wave shifted by δ (stats.DeltaAdjust; observed
// values never move) for every δ of analysis.delta_grid, given in standard
// deviations of the outcome's observed values at the wave (δ in outcome
// units = grid value × SD; default −1 to 1 SD in 11 steps).
//
// Table tipping_point has one row per δ. The tipping δ is the δ of the
// grid with the smallest |δ| whose interval includes 0 (the first in grid
// order on a tie): the effects row of itt_delta (method cr2_mi) is the
// pooled result at that δ, and its note says "tipping delta = D (S SD)".
// When the interval excludes 0 at every δ of the grid, the row's estimate
// is null and the note says so: the conclusion holds over the whole grid.
// When the interval includes 0 already at δ = 0 the tipping δ is 0.
const AnalysisITTDelta = "itt_delta"

type ittDeltaAnalysis struct{}

func (ittDeltaAnalysis) Name() string           { return AnalysisITTDelta }
func (ittDeltaAnalysis) Methods() []string      { return []string{MethodCR2MI} }
func (ittDeltaAnalysis) Term() string           { return TermArm }
func (ittDeltaAnalysis) Needs() []string        { return []string{"y", "y_baseline", "arm", "trust", "team"} }
func (ittDeltaAnalysis) Population() Population { return ittPopulation }

func (ittDeltaAnalysis) Model(m *Model) string {
	m.Frame()
	return ""
}

func (ittDeltaAnalysis) FitSuff(*fitRows, *stats.ClusterSums, colDesign) ([]effectRow, bool) {
	return nil, false
}

func (a ittDeltaAnalysis) FitDense(fr *fitRows, _ *mat.Dense, _ []int, _, _ []float64) []effectRow {
	return fr.c.nullRows(a, fr.base.nObs, fr.base.nClusters, "itt_delta fits itself (Fit)")
}

// tippingRow is one row of tipping_point.
type tippingRow struct {
	outcome  string  `col:"outcome"`
	wave     string  `col:"wave"`
	delta    float64 `col:"delta"`
	deltaSD  float64 `col:"delta_sd"`
	estimate float64 `col:"estimate"`
	stdError float64 `col:"std_error"`
	df       float64 `col:"df"`
	ciLow    float64 `col:"ci_low"`
	ciHigh   float64 `col:"ci_high"`
	pVal     float64 `col:"p_value"`
	fmi      float64 `col:"fmi"`
}

func (a ittDeltaAnalysis) Fit(m *Model) []effectRow {
	c, f := m.C, m.Frame()
	grid := c.s.Analysis.DeltaGrid
	sd, err := observedSD(f)
	if err != nil {
		return c.nullRows(a, len(f.rows), len(f.teams), "not estimable: "+err.Error(), f.dropNote())
	}
	deltas := make([]float64, len(grid))
	for i, g := range grid {
		deltas[i] = g * sd
	}
	res, info, err := c.miPool(f, deltas)
	if err != nil {
		return c.nullRows(a, len(f.rows), len(f.teams), err.Error(), f.dropNote())
	}
	tip := -1
	for i, r := range res {
		c.tipping = append(c.tipping, tippingRow{outcome: c.outcome, wave: c.waveName, delta: r.delta, deltaSD: grid[i],
			estimate: r.test.Estimate, stdError: r.test.StdError, df: r.test.DF, ciLow: r.test.CILow, ciHigh: r.test.CIHigh,
			pVal: r.test.PValue, fmi: r.pooled.FMI})
		if r.test.CILow <= 0 && r.test.CIHigh >= 0 && (tip < 0 || math.Abs(grid[i]) < math.Abs(grid[tip])) {
			tip = i
		}
	}
	if tip < 0 {
		lo, hi := grid[0], grid[0]
		for _, g := range grid {
			lo, hi = min(lo, g), max(hi, g)
		}
		row := c.nullRows(a, len(f.rows), len(f.teams), fmt.Sprintf("no tipping delta: the interval excludes 0 at every delta of the grid (%.4g to %.4g SD)", lo, hi), f.dropNote())
		row[0].m = info.m
		row[0].fmi = math.NaN()
		return row
	}
	note := fmt.Sprintf("tipping delta = %.6g (%.4g SD): the smallest |delta| of the grid whose interval includes 0", res[tip].delta, grid[tip])
	return []effectRow{c.miRow(a, f, res[tip], info, note)}
}

// observedSD is the SD of the frame's observed values at the wave.
func observedSD(f *colFrame) (float64, error) {
	sd, err := stats.SampleSDObserved(f.yFU)
	if err == nil && !(sd > 0) {
		return sd, fmt.Errorf("the outcome does not vary at the wave")
	}
	return sd, err
}

// writeTippingPoint writes tipping_point sorted by its key.
func writeTippingPoint(env warehouse.Env, tx *warehouse.Tx, rows []tippingRow) error {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if c := CmpKeys([]string{a.outcome, a.wave}, []string{b.outcome, b.wave}); c != 0 {
			return c < 0
		}
		return a.delta < b.delta
	})
	return warehouse.WriteRecords(env, tx, "tipping_point", rows)
}
