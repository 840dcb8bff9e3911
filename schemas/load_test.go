package schemas

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultStudy(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(s.Teams); got != 10 {
		t.Errorf("teams = %d, want 10", got)
	}
	if got := len(s.Sites); got != 5 {
		t.Errorf("sites = %d, want 5", got)
	}
	// 10 id/demographic columns + 27 + 7 + 15 + 3 + 6 (EQ-5D) + 6 (GAS).
	if got := len(s.ExportFields(KindParticipants)); got != 74 {
		t.Errorf("participant fields = %d, want 74", got)
	}
	if got := len(s.ExportFields(KindFidelity)); got != 17 {
		t.Errorf("fidelity fields = %d, want 17", got)
	}
	if len(s.Hash) != 64 {
		t.Errorf("hash %q", s.Hash)
	}
	site, d, canon, ok := s.IdentifyFile("BDCT_participants_20260301.csv")
	if !ok || !canon || site.Trust != "BDCT" || d.Format("2006-01-02") != "2026-03-01" {
		t.Errorf("canonical name: %v %v %v %v", site, d, canon, ok)
	}
	site, d, canon, ok = s.IdentifyFile("bdct_cpi_fidelity_02-03-2026.csv")
	if !ok || canon || site.Trust != "BDCT" || d.Format("2006-01-02") != "2026-03-02" {
		t.Errorf("site name: %v %v %v %v", site, d, canon, ok)
	}
	if _, _, _, ok := s.IdentifyFile("XYZ_participants_20260301.csv"); ok {
		t.Error("unknown trust identified")
	}
	if m := s.Sites["AWP"].ValueMap("rg07"); m["Y"] != "1" {
		t.Errorf("glob value map: %v", m)
	}
	for pct, want := range map[float64]string{75: "high", 74.99: "moderate", 50: "moderate", 49.9: "low", 0: "low"} {
		if got := s.Band(pct); got != want {
			t.Errorf("Band(%v) = %s, want %s", pct, got, want)
		}
	}
}

func TestStudyMistakeNamesFileLineField(t *testing.T) {
	b, err := embedded.ReadFile("study.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, old, new, want string
	}{
		{"bad arm", "{code: AWP-02, trust: AWP, arm: control}", "{code: AWP-02, trust: AWP, arm: contol}", `:26: teams[7].arm: unknown arm "contol"`},
		{"unknown field", "periods: [month3, month6]", "periods: [month3, month6]\nperiodz: 1", `:33: field periodz not found`},
		{"bad outcome", "outcomes: [rguk.total,", "outcomes: [rguk.totl,", `analysis.outcomes[0]: "rguk.totl" is not`},
		{"unknown trust", "{code: HPFT-01, trust: HPFT,", "{code: HPFT-01, trust: HPT,", `teams[8].trust: unknown trust "HPT"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "study.yaml")
			if !strings.Contains(string(b), c.old) {
				t.Fatalf("fixture text %q not in study.yaml", c.old)
			}
			if err := os.WriteFile(file, []byte(strings.Replace(string(b), c.old, c.new, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(file)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), file) {
				t.Errorf("err = %q, want it to start with the file and contain %q", err, c.want)
			}
		})
	}
}

func TestStudyFileOverridesInstrumentBesideIt(t *testing.T) {
	dir := t.TempDir()
	b, _ := embedded.ReadFile("study.yaml")
	os.WriteFile(filepath.Join(dir, "study.yaml"), b, 0o600)
	os.MkdirAll(filepath.Join(dir, "instruments"), 0o750)
	os.WriteFile(filepath.Join(dir, "instruments", "ucla3.yaml"), []byte("name: ucla3\nmin: 1\nmax: 3\nitem_pattern: {format: \"ucla%d\", count: 3}\nscales:\n  - {name: total, method: sum, missing_allowed: 1}\n"), 0o600)
	s, err := Load(filepath.Join(dir, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	in, _ := s.Instrument("ucla3")
	if in.Scales[0].MissingAllowed != 1 {
		t.Errorf("override not used")
	}
	def, _ := Default()
	if def.Hash == s.Hash {
		t.Error("hash did not change with the instrument file")
	}
}

// TestBadExportDate: a name that follows a trust's export names with an
// impossible date is found (ingest quarantines it), in the canonical form
// and in a site's own.
func TestBadExportDate(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"TEWV_participants_20190230.csv":       "TEWV 20190230",
		"BDCT_fidelity_20191301.csv":           "BDCT 20191301",
		"bdct_cpi_participants_30-02-2019.csv": "BDCT 30-02-2019",
		"TEWV_participants_20190228.csv":       "",
		"XYZ_participants_20190230.csv":        "",
		"notes.txt":                            "",
	} {
		site, text := s.BadExportDate(name)
		got := ""
		if site != nil {
			got = site.Trust + " " + text
		}
		if got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if s.Ingest.SettleSeconds != DefaultSettleSeconds || s.Ingest.FutureExportDays != DefaultFutureExportDays {
		t.Errorf("ingest defaults: %+v", s.Ingest)
	}
}
