package schemas

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// redcap.missing_codes: codes that are no field's answer are taken; a code
// that is a valid answer (a code of a coded field, an integer in an item's
// range, a date) or outside the alphabet is refused with file:line: field.
func TestRedcapMissingCodes(t *testing.T) {
	with := func(codes string) []string {
		return []string{"disclosure:", "redcap:\n  missing_codes: " + codes + "\ndisclosure:"}
	}
	dir, err := loadWith(t, with(`[UNK, NASK, "-999", ASKU]`), map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(filepath.Join(dir, "study.yaml"))
	if err != nil || !slices.Equal(s.Redcap.MissingCodes, []string{"UNK", "NASK", "-999", "ASKU"}) {
		t.Fatalf("missing codes %v, %v", s, err)
	}
	cases := []struct{ name, codes, want string }{
		{"a gender code", `[UNK, female]`, `redcap.missing_codes[1]: missing-data code "female" is a valid answer of gender`},
		{"an item's answer", `["3"]`, `redcap.missing_codes[0]: missing-data code "3" is a valid answer of`},
		{"a date", `["2019-01-01"]`, `missing-data code "2019-01-01" is a valid answer of interview_date`},
		{"a space", `["N A"]`, `redcap.missing_codes[0]: missing-data code "N A" is not`},
		{"twice", `[UNK, UNK]`, `missing-data code "UNK" listed twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, err := loadWith(t, with(c.codes), map[string]string{})
			assertDefinitionError(t, err, filepath.Join(dir, "study.yaml"), c.want)
		})
	}
}

// A site mapping with format redcap: named files, a date in the name, no
// dialect keys.
func TestRedcapSiteMapping(t *testing.T) {
	good := "trust: TEWV\nformat: redcap\nfiles:\n  - {pattern: '^tewv_redcap_(?P<date>\\d{8})\\.csv$', date_layout: \"20060102\", template: \"tewv_redcap_{date}.csv\"}\n"
	dir, err := loadWith(t, nil, map[string]string{"sites/tewv.yaml": good})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(filepath.Join(dir, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if site := s.Sites["TEWV"]; site.Format != FormatRedcap || site.DateLayout != "2006-01-02" {
		t.Fatalf("site %+v", site)
	}
	// A canonical name of the trust is read as canonical.
	if site, _, canonical, ok := s.IdentifyFile("TEWV_fidelity_20190301.csv"); !ok || !canonical || site.Format != "csv" {
		t.Fatalf("canonical name: %+v %v %v", site, canonical, ok)
	}
	cases := []struct{ name, content, want string }{
		{"delimiter", good + "delimiter: \";\"\n", `delimiter: delimiter is for csv and xlsx sites`},
		{"values", good + "values: {gender: {F: female}}\n", `values: values is for csv and xlsx sites`},
		{"no date", strings.Replace(good, `_(?P<date>\d{8})`, `_\d{8}`, 1), `files[0].pattern: a REDCap export's name must give its date`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, err := loadWith(t, nil, map[string]string{"sites/tewv.yaml": c.content})
			assertDefinitionError(t, err, filepath.Join(dir, "sites", "tewv.yaml"), c.want)
		})
	}
}
