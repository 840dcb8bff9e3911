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

// FontStyle sets every text style of a plot to Liberation Sans at the
// given size (gonum/plot's default is a serif face); the page's CSS names
// metric-compatible fallbacks for browsers without it.
func FontStyle(p *plot.Plot, size vg.Length) {
	for _, st := range []*draw.TextStyle{&p.Title.TextStyle, &p.X.Label.TextStyle, &p.Y.Label.TextStyle, &p.X.Tick.Label, &p.Y.Tick.Label, &p.Legend.TextStyle} {
		st.Font.Typeface = "Liberation"
		st.Font.Variant = "Sans"
		st.Font.Size = size
	}
}

// PlotSVG draws a plot on a w × h canvas and returns its SVG element for
// embedding in a page: without the XML prologue, scaled by the page's CSS
// through its viewBox. The markup is made by gonum/plot from numbers and
// study codes, and vgsvg escapes every string it writes, so it is safe to
// embed as template.HTML.
func PlotSVG(p *plot.Plot, w, h vg.Length, label string) (template.HTML, error) {
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

// CardCSS labels the cells of a table shown as cards at phone width
// (report.css: table.cards) whose cells carry no data-label: one rule per
// column, by position, giving its heading. The labels come from the
// study definition and the page; they are quoted as CSS strings (a
// quote, a backslash, a line break or "<" escaped), so the result is safe
// inside a <style> element.
func CardCSS(class string, labels []string) template.CSS {
	var b strings.Builder
	b.WriteString("@media (max-width: 30rem) {")
	for i, l := range labels {
		fmt.Fprintf(&b, " table.%s tr:not(.total) > td:nth-child(%d)::before { content: \"%s\"; }", class, i+1, cssString(l))
	}
	b.WriteString(" }")
	return template.CSS(b.String())
}

// cssString escapes s for a double-quoted CSS string.
func cssString(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteRune('\\')
			b.WriteRune(r)
		case r == '<' || r == '>' || r == '&' || r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\%x ", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
