package report

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"path"
	"strings"
)

// The shared look of cpi's HTML reports: one self-contained page (inline CSS
// and SVG, no script, no network, no web fonts), readable on a phone and
// printable on A4. The page skeleton is templates/page.tmpl, around the
// templates "title" and "content" that each report's file defines
// (study/templates/study.tmpl, fidelity/templates/fidelity.tmpl); its
// stylesheet is templates/report.css (band colours: .band-high,
// .band-moderate, .band-low, and .band-0 … .band-5 for studies with other
// band names).
//
// The files are embedded in the program and parsed on every call: no
// parsed template is kept between calls.

//go:embed templates/*.tmpl templates/*.css
var pageFS embed.FS

// Parse parses the page skeleton with the stylesheet, then a report's
// template file name from its own files (fsys, holding templates/name),
// then the parts of it in files of their own (templates/study_*.tmpl for
// study.tmpl), in name order.
func Parse(fsys fs.FS, name string) (*template.Template, error) {
	read := func(fsys fs.FS, file string) (string, error) {
		b, err := fs.ReadFile(fsys, "templates/"+file)
		if err != nil {
			return "", fmt.Errorf("report template %s: %w", file, err)
		}
		return string(b), nil
	}
	css, err := read(pageFS, "report.css")
	if err != nil {
		return nil, err
	}
	layout, err := read(pageFS, "page.tmpl")
	if err != nil {
		return nil, err
	}
	body, err := read(fsys, name)
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
	parts, err := fs.Glob(fsys, "templates/"+strings.TrimSuffix(name, ".tmpl")+"_*.tmpl")
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		part, err := read(fsys, path.Base(p))
		if err != nil {
			return nil, err
		}
		if t, err = t.Parse(part); err != nil {
			return nil, fmt.Errorf("report template %s: %w", path.Base(p), err)
		}
	}
	return t, nil
}

// Execute parses a report's template (Parse) and executes it with data.
func Execute(out io.Writer, fsys fs.FS, name string, data any) error {
	t, err := Parse(fsys, name)
	if err != nil {
		return err
	}
	return t.Execute(out, data)
}
