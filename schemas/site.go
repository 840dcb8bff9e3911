package schemas

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
)

// Site is a trust's export dialect: which files are its, how they are
// encoded, and how their headers and codes map onto the canonical format.
type Site struct {
	Trust string `yaml:"trust"`
	// Format is csv or xlsx.
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
				return s.Sites[m[1]], d, true, true
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

func (s *Site) check() error {
	switch s.Format {
	case "csv":
		if len([]rune(s.Delimiter)) != 1 {
			return fmt.Errorf("delimiter must be one character")
		}
		switch s.Encoding {
		case "utf-8", "utf-8-bom", "windows-1252":
		default:
			return fmt.Errorf("encoding %q: want utf-8, utf-8-bom or windows-1252", s.Encoding)
		}
	case "xlsx":
	default:
		return fmt.Errorf("format %q: want csv or xlsx", s.Format)
	}
	if s.DateLayout == "" {
		return fmt.Errorf("date_layout is required")
	}
	if len(s.Files) == 0 {
		return fmt.Errorf("files: at least one file name pattern is required")
	}
	for i := range s.Files {
		re, err := regexp.Compile(s.Files[i].Pattern)
		if err != nil {
			return fmt.Errorf("files[%d].pattern: %w", i, err)
		}
		s.Files[i].re = re
		if i == 0 && s.Files[i].Template == "" {
			return fmt.Errorf("files[0].template is required")
		}
	}
	for k := range s.Values {
		if _, err := path.Match(k, ""); err != nil {
			return fmt.Errorf("values: bad column pattern %q", k)
		}
	}
	return nil
}
