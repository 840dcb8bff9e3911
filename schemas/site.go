package schemas

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Site is a trust's export dialect: which files are its, how they are
// encoded, and how their headers and codes map onto the canonical format.
type Site struct {
	Trust string `yaml:"trust"`
	// Format is csv, xlsx or redcap (FormatRedcap: the files named by Files
	// are REDCap raw records exports of the study's project, split by data
	// access group like <STUDY>_redcap_<YYYYMMDD>.csv; the trust's other
	// exports come under canonical names).
	Format string `yaml:"format"`
	// Encoding is utf-8, utf-8-bom or windows-1252 (a BOM is tolerated in utf-8).
	Encoding  string `yaml:"encoding"`
	Delimiter string `yaml:"delimiter"`
	// DateLayout is the Go layout of text dates in the export.
	DateLayout string `yaml:"date_layout"`
	// Sheet is the XLSX sheet to read (any case). Empty: the workbook's only
	// sheet holding data; a workbook with several is quarantined as
	// xlsx_extra_sheets. The other sheets are checked for identifiers
	// either way.
	Sheet   string                       `yaml:"sheet"`
	Files   []FilePattern                `yaml:"files"`
	Headers map[string]string            `yaml:"headers"`
	Values  map[string]map[string]string `yaml:"values"`
}

// FormatRedcap is the format of a site whose files are REDCap exports.
const FormatRedcap = "redcap"

// FilePattern recognises a trust's file names. The pattern's named group
// "date" holds the export date, laid out as DateLayout.
type FilePattern struct {
	Pattern    string `yaml:"pattern"`
	DateLayout string `yaml:"date_layout"`
	// Template writes a name the pattern matches: {kind} and {date}.
	Template string `yaml:"template"`
	re       *regexp.Regexp
}

// FileName is the site's name for an export of kind made on date.
func (s *Site) FileName(kind string, date time.Time) string {
	f := s.Files[0]
	r := strings.NewReplacer("{kind}", kind, "{date}", date.Format(f.DateLayout))
	return r.Replace(f.Template)
}

// CanonicalFileName is the canonical template's name for an export.
func CanonicalFileName(trust, kind string, date time.Time) string {
	return trust + "_" + kind + "_" + date.Format("20060102") + ".csv"
}

// Canonical is the site of a file in the canonical template of DESIGN §5.
func Canonical(trust string) *Site {
	return &Site{Trust: trust, Format: "csv", Encoding: "utf-8", Delimiter: ",", DateLayout: "2006-01-02"}
}

var canonicalName = regexp.MustCompile(`^([A-Z0-9]+)_(participants|fidelity)_(\d{8})\.csv$`)

// MatchName reports whether name is one of the site's files, and its export
// date when the name carries one.
func (s *Site) MatchName(name string) (bool, time.Time) {
	for _, f := range s.Files {
		m := f.re.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if i := f.re.SubexpIndex("date"); i > 0 && f.DateLayout != "" {
			if d, err := time.Parse(f.DateLayout, m[i]); err == nil {
				return true, d
			}
		}
		return true, time.Time{}
	}
	return false, time.Time{}
}

// IdentifyFile finds the trust a file name belongs to: the canonical name
// <TRUST>_<kind>_<YYYYMMDD>.csv first, then each site's own patterns.
// It returns the site, the export date (zero when the name has none) and
// whether the name was the canonical one.
func (s *Study) IdentifyFile(name string) (site *Site, exportDate time.Time, canonical bool, ok bool) {
	if m := canonicalName.FindStringSubmatch(name); m != nil {
		if _, known := s.trustByCode[m[1]]; known {
			d, err := time.Parse("20060102", m[3])
			if err == nil {
				site := s.Sites[m[1]]
				if site != nil && site.Format == FormatRedcap {
					site = Canonical(m[1])
				}
				return site, d, true, true
			}
		}
	}
	for _, t := range s.Trusts {
		site := s.Sites[t.Code]
		if hit, d := site.MatchName(name); hit {
			return site, d, false, true
		}
	}
	return nil, time.Time{}, false, false
}

// BadExportDate finds a name that follows a trust's export names but whose
// date is no calendar date in the names' layout ("20190230"): it returns
// that trust's site and the date text, or nil when the name's date is fine,
// absent, or the name is no trust's. IdentifyFile treats such a name as
// having no date; ingest quarantines it (bad_export_date).
func (s *Study) BadExportDate(name string) (*Site, string) {
	if m := canonicalName.FindStringSubmatch(name); m != nil {
		if _, known := s.trustByCode[m[1]]; known {
			if _, err := time.Parse("20060102", m[3]); err != nil {
				return s.Sites[m[1]], m[3]
			}
			return nil, ""
		}
	}
	for _, t := range s.Trusts {
		site := s.Sites[t.Code]
		for _, f := range site.Files {
			m := f.re.FindStringSubmatch(name)
			if m == nil {
				continue
			}
			if i := f.re.SubexpIndex("date"); i > 0 && f.DateLayout != "" {
				if _, err := time.Parse(f.DateLayout, m[i]); err != nil {
					return site, m[i]
				}
			}
			return nil, ""
		}
	}
	return nil, ""
}

// ValueMap returns the value map for a canonical column: an exact key wins,
// then the first glob key (path.Match) in sorted order that matches.
func (s *Site) ValueMap(column string) map[string]string {
	if m, ok := s.Values[column]; ok {
		return m
	}
	for _, k := range sortedKeys(s.Values) {
		if ok, _ := path.Match(k, column); ok {
			return s.Values[k]
		}
	}
	return nil
}

// checkSite checks a site mapping, untrusted like the study: its file name
// patterns and the name its template writes (synth writes files by it), its
// date layouts, sheet, header aliases and value maps, each against the
// bounds in limits.go.
func (st *Study) checkSite(s *Site, c checker) error {
	switch s.Format {
	case "csv":
		if r := []rune(s.Delimiter); len(r) != 1 || !validDelimiter(r[0]) {
			return c.fail("delimiter must be one character, not a quote or a line end", "delimiter")
		}
		switch s.Encoding {
		case "utf-8", "utf-8-bom", "windows-1252":
		default:
			return c.fail(fmt.Sprintf("encoding %s: want utf-8, utf-8-bom or windows-1252", quote(s.Encoding)), "encoding")
		}
		if s.Sheet != "" {
			return c.fail("a sheet is for xlsx sites", "sheet")
		}
	case "xlsx":
		for _, k := range []string{"delimiter", "encoding"} {
			if c.has(k) {
				return c.fail(k+" is for csv sites: an xlsx site has none", k)
			}
		}
		if p := textProblem(s.Sheet, 31, false); p != "" || strings.ContainsAny(s.Sheet, `[]:*?/\`) {
			return c.fail("sheet must be an Excel sheet name: at most 31 characters, none of [ ] : * ? / \\", "sheet")
		}
	case FormatRedcap:
		// A REDCap raw records export is read as REDCap writes it: UTF-8,
		// commas, ISO dates, the project's own variable names and codes.
		for _, k := range []string{"delimiter", "encoding", "sheet", "headers", "values", "date_layout"} {
			if c.has(k) {
				return c.fail(k+" is for csv and xlsx sites: a REDCap export is read as REDCap writes it", k)
			}
		}
		s.Encoding, s.Delimiter, s.DateLayout = "utf-8", ",", "2006-01-02"
	default:
		return c.fail(fmt.Sprintf("format %s: want csv, xlsx or redcap", quote(s.Format)), "format")
	}
	if s.DateLayout == "" {
		return c.fail("date_layout is required", "date_layout")
	}
	if !validDateLayout(s.DateLayout) {
		return c.fail(fmt.Sprintf("date_layout %s does not write and read back a date", quote(s.DateLayout)), "date_layout")
	}
	if err := c.count(len(s.Files), 1, maxSiteFiles, "file name pattern", "files"); err != nil {
		return err
	}
	for i := range s.Files {
		f := &s.Files[i]
		if len(f.Pattern) > maxPatternLen {
			return c.fail(fmt.Sprintf("longer than %d characters", maxPatternLen), "files", i, "pattern")
		}
		re, err := regexp.Compile(f.Pattern)
		if err != nil {
			return c.fail(fmt.Sprintf("not a regular expression: %v", err), "files", i, "pattern")
		}
		f.re = re
		if re.SubexpIndex("date") > 0 && !validDateLayout(f.DateLayout) {
			return c.fail(fmt.Sprintf("date_layout %s does not write and read back the date the pattern captures", quote(f.DateLayout)), "files", i, "date_layout")
		}
		if s.Format == FormatRedcap && re.SubexpIndex("date") <= 0 {
			return c.fail("a REDCap export's name must give its date: the pattern needs a (?P<date>…) group", "files", i, "pattern")
		}
		if re.SubexpIndex("date") <= 0 && f.DateLayout != "" {
			return c.fail("the pattern has no (?P<date>…) group for date_layout to read", "files", i, "date_layout")
		}
		if i == 0 && f.Template == "" {
			return c.fail("template is required", "files", i, "template")
		}
		if i > 0 && f.Template != "" {
			return c.fail("only files[0].template is used to name files", "files", i, "template")
		}
		if len(f.Template) > maxTemplateLen {
			return c.fail(fmt.Sprintf("longer than %d characters", maxTemplateLen), "files", i, "template")
		}
	}
	// The template's names must be plain file names the patterns match.
	date := time.Date(2019, 3, 29, 0, 0, 0, 0, time.UTC)
	for _, kind := range []string{KindParticipants, KindFidelity} {
		name := s.FileName(kind, date)
		if !safeFileName(name) {
			return c.fail(fmt.Sprintf("writes %s: not a plain file name", quote(name)), "files", 0, "template")
		}
		if ok, d := s.MatchName(name); !ok || !d.IsZero() && !d.Equal(date) {
			return c.fail(fmt.Sprintf("writes %s, which the site's patterns do not read back", quote(name)), "files", 0, "template")
		}
	}
	if n := len(s.Headers); n > maxSiteEntries {
		return c.fail(fmt.Sprintf("%d headers: at most %d are allowed", n, maxSiteEntries), "headers")
	}
	for _, alias := range sortedKeys(s.Headers) {
		if p := textProblem(alias, maxHeaderLen, false); p != "" {
			return c.fail("header "+p, "headers", alias)
		}
		if canon := s.Headers[alias]; !st.isExportField(canon) {
			return c.fail(fmt.Sprintf("%s is not a canonical column", quote(canon)), "headers", alias)
		}
	}
	return st.checkValueMaps(s, c)
}

// checkValueMaps checks a site's value maps: each key an exact canonical
// column or a glob matching one, each value a value of that column.
func (st *Study) checkValueMaps(s *Site, c checker) error {
	var fields []Field
	for _, kind := range []string{KindParticipants, KindFidelity} {
		fields = append(fields, st.ExportFields(kind)...)
	}
	entries := 0
	for _, col := range sortedKeys(s.Values) {
		if len(col) > maxCodeLen*2 {
			return c.fail(fmt.Sprintf("column pattern longer than %d characters", maxCodeLen*2), "values", col)
		}
		if _, err := path.Match(col, ""); err != nil {
			return c.fail(fmt.Sprintf("bad column pattern %s", quote(col)), "values", col)
		}
		m := s.Values[col]
		if entries += len(m); entries > maxSiteEntries {
			return c.fail(fmt.Sprintf("more than %d values mapped", maxSiteEntries), "values", col)
		}
		matched := false
		for _, f := range fields {
			if ok, _ := path.Match(col, f.Name); !ok {
				continue
			}
			matched = true
			for _, from := range sortedKeys(m) {
				if p := textProblem(from, maxHeaderLen, false); p != "" {
					return c.fail("value "+p, "values", col, from)
				}
				if !f.accepts(m[from]) {
					return c.fail(fmt.Sprintf("maps to %s, not a value of %s", quote(m[from]), f.Name), "values", col, from)
				}
			}
		}
		if !matched {
			return c.fail(fmt.Sprintf("%s names no canonical column", quote(col)), "values", col)
		}
	}
	return nil
}

// accepts reports whether v is a canonical value of the field.
func (f Field) accepts(v string) bool {
	switch f.Type {
	case FieldCode:
		return slices.Contains(f.Codes, v)
	case FieldInt:
		n, err := strconv.Atoi(v)
		return err == nil && f.Min <= n && n <= f.Max
	}
	return textProblem(v, maxHeaderLen, false) == ""
}

// validDelimiter is encoding/csv's rule for a field delimiter.
func validDelimiter(r rune) bool {
	return r != 0 && r != '"' && r != '\r' && r != '\n' && utf8.ValidRune(r) && r != utf8.RuneError
}

// validDateLayout reports whether layout is a Go time layout that writes a
// date it reads back as the same day.
func validDateLayout(layout string) bool {
	if layout == "" || len(layout) > maxLayoutLen {
		return false
	}
	d := time.Date(2019, 3, 29, 0, 0, 0, 0, time.UTC)
	got, err := time.Parse(layout, d.Format(layout))
	return err == nil && got.Year() == d.Year() && got.YearDay() == d.YearDay()
}

// safeFileName reports whether name is a plain file name: not empty, not .
// or .., no separator, no control character, at most 255 bytes.
func safeFileName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 255 || strings.ContainsAny(name, `/\`) {
		return false
	}
	return textProblem(name, 255, false) == ""
}
