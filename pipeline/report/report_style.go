package report

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The shared look of cpi's HTML reports: one self-contained page (inline CSS
// and SVG, no script, no network, no web fonts), readable on a phone and
// printable on A4. A report parses pageLayout with reportFuncs, then defines
// the templates "title" and "content":
//
//	t := template.Must(template.New("page").Funcs(reportFuncs()).Parse(pageLayout))
//	template.Must(t.Parse(`{{define "title"}}…{{end}}{{define "content"}}…{{end}}`))

// pageLayout is the page skeleton around a report's "title" and "content".
const pageLayout = `<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{template "title" .}}</title>
<style>{{pageCSS}}</style>
</head>
<body>
<main class="page">
{{template "content" .}}
</main>
</body>
</html>
`

// reportFuncs are the template functions pageLayout needs.
func reportFuncs() template.FuncMap {
	return template.FuncMap{"pageCSS": pageCSS}
}

// pageCSS is the reports' stylesheet. Band colours: .band-high, .band-moderate,
// .band-low (and .band-0 … .band-5 for studies with other band names).
func pageCSS() template.CSS {
	return template.CSS(reportCSS)
}

const reportCSS = `
:root { --ink: #1b1b1b; --muted: #555; --rule: #d0d7de; --accent: #1f5fa8; --soft: #f4f6f8;
  --high: #2e7d4f; --high-bg: #cfe8d8; --moderate: #8a6100; --moderate-bg: #fbe7b5; --low: #a33a2c; --low-bg: #f6d2cc; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 16px/1.5 "Liberation Sans", Arial, Helvetica, sans-serif; }
.page { max-width: 60rem; margin: 0 auto; padding: 1.25rem 1rem 3rem; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 0 0 .25rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .5rem; padding-top: .75rem; border-top: 2px solid var(--rule); }
h3 { font-size: 1.05rem; margin: 1.25rem 0 .4rem; }
p { margin: .4rem 0 .8rem; }
.muted, .note { color: var(--muted); }
.note { font-size: .9rem; }
header.report { border-bottom: 3px solid var(--accent); padding-bottom: .75rem; margin-bottom: 1rem; }
header.report .kicker { text-transform: uppercase; letter-spacing: .06em; font-size: .8rem; color: var(--accent); margin: 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .5rem 0 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; font-weight: 600; }
.headline { background: var(--soft); border-left: 4px solid var(--accent); padding: .75rem 1rem; margin: 1rem 0; }
.headline strong { font-size: 1.15rem; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: .5rem 0 1rem; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--rule); vertical-align: top; }
thead th { border-bottom: 2px solid var(--ink); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
thead th.num { white-space: normal; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: .75rem; font-size: .85rem; font-weight: 600;
  border: 1px solid currentColor; white-space: nowrap; }
.band-high { color: var(--high); background: var(--high-bg); }
.band-moderate { color: var(--moderate); background: var(--moderate-bg); }
.band-low { color: var(--low); background: var(--low-bg); }
.band-none { color: var(--muted); background: #fff; }
.band-0 { color: var(--low); background: var(--low-bg); }
.band-1 { color: var(--moderate); background: var(--moderate-bg); }
.band-2 { color: var(--high); background: var(--high-bg); }
.band-3 { color: #3d3d8f; background: #dcdcf5; }
.band-4 { color: #5b3d8f; background: #e6dcf5; }
.band-5 { color: #1f5f6f; background: #d2ecf1; }
.code { font-weight: 600; font-variant-numeric: tabular-nums; margin-right: .35rem; }
.up { color: var(--high); } .down { color: var(--low); } .same { color: var(--muted); }
/* A horizontal scale from 0 to 100% with the bands shaded, thresholds marked
   and a marker at the team's value. */
.bandbar { margin: .4rem 0 1.6rem; }
.bandbar .track { position: relative; display: flex; height: 1.5rem; border: 1px solid #888; border-radius: 3px; }
.bandbar .seg { height: 100%; display: flex; align-items: center; justify-content: center; overflow: hidden;
  font-size: .75rem; font-weight: 600; border: 0; border-radius: 0; white-space: nowrap; }
.bandbar .seg + .seg { border-left: 2px solid #555; }
.bandbar .marker { position: absolute; top: -.35rem; bottom: -.35rem; width: 0; border-left: 3px solid var(--ink); }
.bandbar .ticks { position: relative; height: 1.2rem; font-size: .75rem; color: var(--muted); }
.bandbar .ticks span { position: absolute; transform: translateX(-50%); top: .15rem; }
.bandbar .ticks span.first { transform: none; }
.bandbar .ticks span.last { transform: translateX(-100%); }
figure.chart { margin: .5rem 0 1rem; }
figure.chart svg { display: block; width: 100%; max-width: 30rem; height: auto; }
figure.chart svg text { font-family: "Liberation Sans", Arial, Helvetica, sans-serif !important; }
figcaption { font-size: .9rem; color: var(--muted); margin-top: .25rem; }
.legend { display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; font-size: .9rem; margin: .25rem 0; }
.legend .swatch { display: inline-block; width: .9rem; height: .9rem; margin-right: .35rem; vertical-align: -.1rem;
  border: 1px solid #666; }
ol.focus { padding-left: 1.25rem; }
ol.focus li { margin-bottom: 1rem; }
ol.focus .practice { margin: .2rem 0; }
ol.focus .suggestion { margin: .2rem 0; padding: .4rem .6rem; background: var(--soft); border-left: 3px solid var(--accent); }
footer.report { margin-top: 2.5rem; padding-top: .5rem; border-top: 1px solid var(--rule); font-size: .8rem; color: var(--muted); }
.bandbar, .badge, .legend .swatch, .headline, ol.focus .suggestion { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@media (max-width: 30rem) {
  body { font-size: 15px; }
  .page { padding: .75rem .6rem 2rem; }
  h1 { font-size: 1.35rem; }
  th, td { padding: .3rem .35rem; }
  table { font-size: .88rem; }
  td .code { display: block; }
}
@page { size: A4; margin: 15mm 14mm; }
@media print {
  body { font-size: 10.5pt; }
  .page { max-width: none; padding: 0; }
  h2 { break-after: avoid; page-break-after: avoid; }
  section, figure, tr, .bandbar, ol.focus li { break-inside: avoid; page-break-inside: avoid; }
  .scroll { overflow: visible; }
  figure.chart svg { max-width: 13cm; }
  a { color: inherit; text-decoration: none; }
}
`

// reportFontStyle sets every text style of a plot to Liberation Sans at the
// given size (gonum/plot's default is a serif face); the page's CSS names
// metric-compatible fallbacks for browsers without it.
func reportFontStyle(p *plot.Plot, size vg.Length) {
	for _, st := range []*draw.TextStyle{&p.Title.TextStyle, &p.X.Label.TextStyle, &p.Y.Label.TextStyle, &p.X.Tick.Label, &p.Y.Tick.Label, &p.Legend.TextStyle} {
		st.Font.Typeface = "Liberation"
		st.Font.Variant = "Sans"
		st.Font.Size = size
	}
}

// plotSVG draws a plot on a w × h canvas and returns its SVG element for
// embedding in a page: without the XML prologue, scaled by the page's CSS
// through its viewBox. The markup is made by gonum/plot from numbers and
// study codes, and vgsvg escapes every string it writes, so it is safe to
// embed as template.HTML.
func plotSVG(p *plot.Plot, w, h vg.Length, label string) (template.HTML, error) {
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("draw chart: %w", err)
	}
	svg := buf.String()
	i := strings.Index(svg, "<svg")
	if i < 0 {
		return "", fmt.Errorf("draw chart: no svg element")
	}
	svg = svg[i:]
	svg = "<svg role=\"img\" aria-label=\"" + template.HTMLEscapeString(label) + "\"" + svg[len("<svg"):]
	return template.HTML(svg), nil
}
