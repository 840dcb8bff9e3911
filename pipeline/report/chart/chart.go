// Package chart draws the hand-drawn SVG charts of cpi's study report: the
// forest plot across outcomes, the cost-effectiveness plane and the
// acceptability curve. It knows nothing of tables: the report gives it
// numbers and labels, and it escapes every string it draws.
package chart

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Each chart is a viewBox 360 units wide, shown at most 30rem
// wide (report.css), so its text of 12 units is about 12 px at a 390 px
// phone width; every string drawn is escaped.

const (
	svgW     = 360.0
	svgFont  = 12
	svgBlue  = "#1f5f6f"
	svgOrng  = "#b35900"
	svgGrey  = "#808080"
	svgInk   = "#222"
	svgLight = "#ddd"
)

type svgBuf struct{ strings.Builder }

func (b *svgBuf) f(format string, a ...any) { fmt.Fprintf(&b.Builder, format, a...) }

func (b *svgBuf) text(x, y float64, anchor, s string, extra string) {
	b.f(`<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" fill="%s"%s>%s</text>`, x, y, svgFont, anchor, svgInk, extra, template.HTMLEscapeString(s))
}

func svgOpen(h float64, label string) *svgBuf {
	b := &svgBuf{}
	b.f(`<svg role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f">`, template.HTMLEscapeString(label), svgW, h, svgW, h)
	return b
}

func (b *svgBuf) close() template.HTML {
	b.WriteString("</svg>")
	return template.HTML(b.String())
}

// niceTicks are about n round values from lo to hi.
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	return out
}

// fmtTick is a tick label: thousands as "20k", else the shortest form.
func fmtTick(v float64) string {
	if v == 0 {
		return "0"
	}
	if math.Abs(v) >= 1000 && math.Mod(v, 1000) == 0 {
		return strings.Replace(fmt.Sprintf("%gk", v/1000), "-", "−", 1)
	}
	return strings.Replace(fmt.Sprintf("%g", v), "-", "−", 1)
}

// CEAC draws the acceptability curves: probability cost-effective
// against λ, one line per method (cr2 solid, others dashed), with the λ
// marks dotted.
func CEAC(methods []string, curves map[string][][2]float64, marks []float64) template.HTML {
	const h, left, right, top, bottom = 250.0, 44.0, 12.0, 30.0, 40.0
	maxL := 0.0
	for _, c := range curves {
		for _, p := range c {
			maxL = math.Max(maxL, p[0])
		}
	}
	if maxL <= 0 {
		maxL = 1
	}
	x := func(l float64) float64 { return left + l/maxL*(svgW-left-right) }
	y := func(p float64) float64 { return top + (1-p)*(h-top-bottom) }
	b := svgOpen(h, "Cost-effectiveness acceptability curve by method")
	for _, p := range []float64{0, 0.25, 0.5, 0.75, 1} {
		b.f(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>`, left, svgW-right, y(p), y(p), svgLight)
		b.text(left-4, y(p)+4, "end", strconv.FormatFloat(p, 'f', 2, 64), "")
	}
	for _, t := range niceTicks(0, maxL, 5) {
		b.text(x(t), h-bottom+15, "middle", fmtTick(t), "")
	}
	b.text((left+svgW-right)/2, h-6, "middle", "Willingness to pay λ (£ per QALY)", "")
	for _, m := range marks {
		if m <= maxL {
			b.f(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="2 3"/>`, x(m), x(m), y(1), y(0), svgGrey)
		}
	}
	colours := []string{svgBlue, svgOrng, svgGrey}
	lx := left
	for i, m := range methods {
		c := curves[m]
		if len(c) == 0 {
			continue
		}
		col := colours[min(i, len(colours)-1)]
		dash := ""
		if i > 0 {
			dash = ` stroke-dasharray="6 3"`
		}
		var pts []string
		for _, p := range c {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
		}
		b.f(`<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`, col, dash, strings.Join(pts, " "))
		b.f(`<line x1="%.1f" x2="%.1f" y1="12" y2="12" stroke="%s" stroke-width="2"%s/>`, lx, lx+18, col, dash)
		b.text(lx+22, 16, "start", m, "")
		lx += 30 + 7*float64(len(m))
	}
	b.text(12, top+(h-top-bottom)/2, "middle", "P(cost-effective)", fmt.Sprintf(` transform="rotate(-90 12 %.1f)"`, top+(h-top-bottom)/2))
	return b.close()
}

// Plane draws the cost-effectiveness plane: each replicate's
// incremental QALYs (x) and cost (y), the estimate as a cross, and the
// lines cost = λ × QALYs for each λ.
func Plane(pts []Point, est *Point, lambdas []float64) template.HTML {
	const h, left, right, top, bottom = 280.0, 52.0, 12.0, 12.0, 40.0
	qlo, qhi, clo, chi := 0.0, 0.0, 0.0, 0.0
	for _, p := range pts {
		qlo, qhi, clo, chi = math.Min(qlo, p.Q), math.Max(qhi, p.Q), math.Min(clo, p.C), math.Max(chi, p.C)
	}
	if qhi == qlo {
		qlo, qhi = qlo-1, qhi+1
	}
	if chi == clo {
		clo, chi = clo-1, chi+1
	}
	x := func(q float64) float64 { return left + (q-qlo)/(qhi-qlo)*(svgW-left-right) }
	y := func(c float64) float64 { return top + (chi-c)/(chi-clo)*(h-top-bottom) }
	b := svgOpen(h, "Cost-effectiveness plane: bootstrap replicates")
	b.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="%s"/>`, left, top, svgW-left-right, h-top-bottom, svgLight)
	b.f(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>`, x(0), x(0), y(chi), y(clo), svgGrey)
	b.f(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>`, x(qlo), x(qhi), y(0), y(0), svgGrey)
	for _, t := range niceTicks(clo, chi, 4) {
		b.text(left-4, y(t)+4, "end", fmtTick(t), "")
	}
	for _, t := range niceTicks(qlo, qhi, 4) {
		b.text(x(t), h-bottom+15, "middle", fmtTick(t), "")
	}
	b.text((left+svgW-right)/2, h-6, "middle", "Incremental QALYs", "")
	b.text(12, top+(h-top-bottom)/2, "middle", "Incremental cost (£)", fmt.Sprintf(` transform="rotate(-90 12 %.1f)"`, top+(h-top-bottom)/2))
	b.f(`<g fill="%s" fill-opacity="0.35">`, svgBlue)
	for _, p := range pts {
		b.f(`<circle cx="%.1f" cy="%.1f" r="1.6"/>`, x(p.Q), y(p.C))
	}
	b.WriteString("</g>")
	for i, l := range lambdas {
		// The line c = l q, clipped to the box.
		q0, q1 := math.Max(qlo, clo/l), math.Min(qhi, chi/l)
		if q0 >= q1 {
			continue
		}
		dash := []string{"6 3", "2 3"}[min(i, 1)]
		b.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="%s"/>`, x(q0), y(l*q0), x(q1), y(l*q1), svgOrng, dash)
		b.text(x(q1)-2, y(l*q1)-5, "end", "λ "+fmtTick(l), ` stroke="#fff" stroke-width="3" paint-order="stroke"`)
	}
	if est != nil {
		cx, cy := x(est.Q), y(est.C)
		b.f(`<path d="M%.1f %.1fh12M%.1f %.1fv12" stroke="%s" stroke-width="2.5"/>`, cx-6, cy, cx, cy-6, svgInk)
	}
	return b.close()
}

// Point is a bootstrap replicate on the cost-effectiveness plane:
// incremental QALYs and cost.
type Point struct{ Q, C float64 }

// ForestRow is an outcome of the forest plot across outcomes, on the
// standardised scale and oriented so that a positive value favours the
// intervention.
type ForestRow struct {
	Label               string
	Est, Lo, Hi, SE     float64
	OK, Reversed, Known bool
}

// OutcomeForest draws the forest plot across outcomes: a square (area
// proportional to the weight 1/SE²) and 95% interval per row, † on a
// reversed (lower is better) row, ? on one whose direction is not stated,
// and "favours" labels under the axis.
func OutcomeForest(pts []ForestRow, arms []string) template.HTML {
	const left, right, top, rowH = 118.0, 10.0, 8.0, 24.0
	h := top + rowH*float64(len(pts)) + 62
	lo, hi := -0.5, 0.5
	wmax := 0.0
	for _, p := range pts {
		if p.OK {
			lo, hi = math.Min(lo, p.Lo), math.Max(hi, p.Hi)
			if p.SE > 0 {
				wmax = math.Max(wmax, 1/(p.SE*p.SE))
			}
		}
	}
	pad := 0.05 * (hi - lo)
	lo, hi = lo-pad, hi+pad
	x := func(v float64) float64 { return left + (v-lo)/(hi-lo)*(svgW-left-right) }
	b := svgOpen(h, "Forest plot across outcomes: standardised adjusted differences, primary analysis")
	bottom := top + rowH*float64(len(pts))
	b.f(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="3 3"/>`, x(0), x(0), top, bottom, svgGrey)
	b.f(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>`, left, svgW-right, bottom, bottom, svgInk)
	for _, t := range niceTicks(lo, hi, 4) {
		b.f(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>`, x(t), x(t), bottom, bottom+4, svgInk)
		b.text(x(t), bottom+16, "middle", fmtTick(t), "")
	}
	for i, p := range pts {
		cy := top + rowH*(float64(i)+0.5)
		label := p.Label
		if p.Reversed {
			label += " †"
		}
		if !p.Known {
			label += " ?"
		}
		b.text(left-6, cy+4, "end", label, "")
		if !p.OK {
			b.text(x(0)+4, cy+4, "start", "n/e", "")
			continue
		}
		b.f(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5"/>`, x(p.Lo), x(p.Hi), cy, cy, svgBlue)
		side := 4.0
		if p.SE > 0 && wmax > 0 {
			side = 4 + 10*math.Sqrt(1/(p.SE*p.SE)/wmax)
		}
		b.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x(p.Est)-side/2, cy-side/2, side, side, svgBlue)
	}
	armI, armC := "intervention", "control"
	if len(arms) >= 2 {
		armI, armC = arms[0], arms[1]
	}
	b.text(x(0)-4, bottom+32, "end", "← favours "+armC, "")
	b.text(x(0)+4, bottom+32, "start", "favours "+armI+" →", "")
	b.text((left+svgW-right)/2, bottom+52, "middle", "Adjusted difference ÷ SD († sign reversed)", "")
	return b.close()
}
