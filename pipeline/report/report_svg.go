package report

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// Hand-drawn SVG charts of the study report's results sections: the
// cost-effectiveness plane, the acceptability curve and the forest plot
// across outcomes. Each is a viewBox 360 units wide, shown at most 30rem
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

// ceacSVG draws the acceptability curves: probability cost-effective
// against λ, one line per method (cr2 solid, others dashed), with the λ
// marks dotted.
func ceacSVG(methods []string, curves map[string][][2]float64, marks []float64) template.HTML {
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
		b.text(left-4, y(p)+4, "end", fmtNum(p, 2), "")
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

// planeSVG draws the cost-effectiveness plane: each replicate's
// incremental QALYs (x) and cost (y), the estimate as a cross, and the
// lines cost = λ × QALYs for each λ.
func planeSVG(pts []planePoint, est *planePoint, lambdas []float64) template.HTML {
	const h, left, right, top, bottom = 280.0, 52.0, 12.0, 12.0, 40.0
	qlo, qhi, clo, chi := 0.0, 0.0, 0.0, 0.0
	for _, p := range pts {
		qlo, qhi, clo, chi = math.Min(qlo, p.q), math.Max(qhi, p.q), math.Min(clo, p.c), math.Max(chi, p.c)
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
		b.f(`<circle cx="%.1f" cy="%.1f" r="1.6"/>`, x(p.q), y(p.c))
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
		b.text(x(q1)-2, y(l*q1)+14+14*float64(i), "end", "λ "+fmtTick(l), "")
	}
	if est != nil {
		cx, cy := x(est.q), y(est.c)
		b.f(`<path d="M%.1f %.1fh12M%.1f %.1fv12" stroke="%s" stroke-width="2.5"/>`, cx-6, cy, cx, cy-6, svgInk)
	}
	return b.close()
}
