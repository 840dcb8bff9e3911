package study

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/connectingpeople/cpi/pipeline/report"
	"github.com/connectingpeople/cpi/schemas"
)

// analysisPrimary is the analysis whose CR2 estimate is the forest plot's
// pooled diamond (DESIGN §9 names it).
const analysisPrimary = "primary"

// forestPoint is a row of the forest plot: a trust's estimate, or the
// pooled one.
type forestPoint struct {
	label       string
	est, lo, hi float64
	ok, pooled  bool
	note        string
}

// layoutForest lays out the forest plot of the primary outcome at the
// primary wave: the trusts' points (trusts, in order) and the pooled
// primary CR2 estimate from the effects rows.
func (pg *studyPage) layoutForest(s *schemas.Study, trusts []forestPoint, effects []EffectsLine) error {
	o := s.Analysis.PrimaryOutcome
	pts := make([]forestPoint, 0, len(trusts)+1)
	for _, p := range trusts {
		pts = append(pts, p)
		fl := forestLine{Trust: p.label, Note: p.note, Estimate: "—", CI: "—"}
		if p.ok {
			fl.Estimate, fl.CI = fmtNum(p.est, 2), fmtNum(p.lo, 2)+" to "+fmtNum(p.hi, 2)
		}
		pg.ForestRows = append(pg.ForestRows, fl)
	}
	pooled := forestPoint{label: "Pooled (CR2)", pooled: true}
	for i := range effects {
		e := &effects[i]
		if e.Analysis == analysisPrimary && e.Outcome == o && e.Wave == s.PrimaryWave() && e.Method == "cr2" && !math.IsNaN(e.Estimate) && !math.IsNaN(e.Lo) {
			pooled.est, pooled.lo, pooled.hi, pooled.ok = e.Estimate, e.Lo, e.Hi, true
		}
	}
	fl := forestLine{Trust: pooled.label, Estimate: "—", CI: "—"}
	if pooled.ok {
		fl.Estimate, fl.CI = fmtNum(pooled.est, 2), fmtNum(pooled.lo, 2)+" to "+fmtNum(pooled.hi, 2)
	} else {
		fl.Note = "not estimated (see the outcomes table)"
	}
	pg.ForestRows = append(pg.ForestRows, fl)
	pts = append(pts, pooled)

	// Draw: one row per trust from the top, the pooled diamond at the bottom.
	p := plot.New()
	report.FontStyle(p, vg.Points(13))
	p.X.Label.Text = "Adjusted difference in " + o + ", " + s.Arms[0] + " − " + s.Arms[1] + " (95% CI)"
	p.X.Label.TextStyle.Font.Size = vg.Points(12)
	var ticks []plot.Tick
	var xy plotter.XYs
	var errs plotter.XErrors
	minX, maxX := 0.0, 0.0
	for i, pt := range pts {
		yv := float64(len(pts) - 1 - i)
		label := pt.label
		if !pt.ok {
			label += " (n/e)"
		}
		ticks = append(ticks, plot.Tick{Value: yv, Label: label})
		if !pt.ok {
			continue
		}
		minX, maxX = math.Min(minX, pt.lo), math.Max(maxX, pt.hi)
		if pt.pooled {
			poly, err := plotter.NewPolygon(plotter.XYs{{X: pt.lo, Y: yv}, {X: pt.est, Y: yv + 0.3}, {X: pt.hi, Y: yv}, {X: pt.est, Y: yv - 0.3}})
			if err != nil {
				return fmt.Errorf("forest plot: %w", err)
			}
			poly.Color = forestBlue
			poly.LineStyle.Color = forestBlue
			p.Add(poly)
			continue
		}
		xy = append(xy, plotter.XY{X: pt.est, Y: yv})
		errs = append(errs, struct{ Low, High float64 }{pt.est - pt.lo, pt.hi - pt.est})
	}
	zero, err := plotter.NewLine(plotter.XYs{{X: 0, Y: -0.6}, {X: 0, Y: float64(len(pts)) - 0.4}})
	if err != nil {
		return fmt.Errorf("forest plot: %w", err)
	}
	zero.LineStyle.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	zero.LineStyle.Color = forestGrey
	p.Add(zero)
	if len(xy) > 0 {
		bars, err := plotter.NewXErrorBars(forestPoints{xy, errs})
		if err != nil {
			return fmt.Errorf("forest plot: %w", err)
		}
		bars.LineStyle.Width = vg.Points(1.5)
		sc, err := plotter.NewScatter(xy)
		if err != nil {
			return fmt.Errorf("forest plot: %w", err)
		}
		sc.GlyphStyle.Shape = draw.BoxGlyph{}
		sc.GlyphStyle.Radius = vg.Points(4)
		sc.GlyphStyle.Color = forestBlue
		p.Add(bars, sc)
	}
	pad := 0.08 * math.Max(maxX-minX, 1)
	p.X.Min, p.X.Max = minX-pad, maxX+pad
	p.Y.Min, p.Y.Max = -0.6, float64(len(pts))-0.4
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Tick.Length = 0
	p.Y.LineStyle.Width = 0
	svg, err := report.PlotSVG(p, vg.Points(360), vg.Points(float64(60+28*len(pts))), "Forest plot of the primary outcome by trust and pooled")
	if err != nil {
		return err
	}
	pg.Forest = svg
	return nil
}

// forestPoints pairs the trusts' estimates with their interval half-widths.
type forestPoints struct {
	plotter.XYs
	plotter.XErrors
}

var (
	forestBlue = color.RGBA{R: 0x1f, G: 0x5f, B: 0xa8, A: 0xff}
	forestGrey = color.RGBA{R: 0x80, G: 0x80, B: 0x80, A: 0xff}
)
