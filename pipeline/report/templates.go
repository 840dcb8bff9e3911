package report

import (
	"embed"
	"fmt"
	"html/template"
	"io"
)

// The shared look of cpi's HTML reports: one self-contained page (inline CSS
// and SVG, no script, no network, no web fonts), readable on a phone and
// printable on A4. The page skeleton is templates/page.tmpl, around the
// templates "title" and "content" that each report's file defines
// (templates/study.tmpl, templates/fidelity.tmpl); its stylesheet is
// templates/report.css (band colours: .band-high, .band-moderate, .band-low,
// and .band-0 … .band-5 for studies with other band names).
//
// The files are embedded in the program and parsed on every call: no
// parsed template is kept between calls.

//go:embed templates/*.tmpl templates/*.css
var templateFS embed.FS

// Report templates: the file names under templates/ of each report.
const (
	studyTemplateFile    = "study.tmpl"
	fidelityTemplateFile = "fidelity.tmpl"
	studySectionsFile    = "study_sections.tmpl"
)

// parseReport parses the page skeleton with the stylesheet and the report
// template file name (one of the *TemplateFile names).
func parseReport(name string) (*template.Template, error) {
	read := func(file string) (string, error) {
		b, err := templateFS.ReadFile("templates/" + file)
		if err != nil {
			return "", fmt.Errorf("report template %s: %w", file, err)
		}
		return string(b), nil
	}
	css, err := read("report.css")
	if err != nil {
		return nil, err
	}
	layout, err := read("page.tmpl")
	if err != nil {
		return nil, err
	}
	body, err := read(name)
	if err != nil {
		return nil, err
	}
	funcs := template.FuncMap{"pageCSS": func() template.CSS { return template.CSS(css) }}
	t, err := template.New("page").Funcs(funcs).Parse(layout)
	if err != nil {
		return nil, fmt.Errorf("report template page.tmpl: %w", err)
	}
	if t, err = t.Parse(body); err != nil {
		return nil, fmt.Errorf("report template %s: %w", name, err)
	}
	if name == studyTemplateFile {
		// The study report's results sections, each a {{define}} block.
		more, err := read(studySectionsFile)
		if err != nil {
			return nil, err
		}
		if t, err = t.Parse(more); err != nil {
			return nil, fmt.Errorf("report template %s: %w", studySectionsFile, err)
		}
	}
	return t, nil
}

// execReport parses the report template name and executes it with data.
func execReport(name string, out io.Writer, data any) error {
	t, err := parseReport(name)
	if err != nil {
		return err
	}
	return t.Execute(out, data)
}

// RenderStudyPage writes a laid-out study page (LoadStudyReport, or
// NewStudyPage with LayoutCounts and LayoutOutcomes) as HTML.
func RenderStudyPage(out io.Writer, pg *studyPage) error {
	return execReport(studyTemplateFile, out, pg)
}
