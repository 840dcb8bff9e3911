package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
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
	// 10 id/demographic columns + 27 + 7 + 15 + 3 + 6 (EQ-5D) + 6 (GAS) + 9 (CSRI).
	if got := len(s.ExportFields(KindParticipants)); got != 83 {
		t.Errorf("participant fields = %d, want 83", got)
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
		{"unknown field", "periods: [month3, month6]", "periods: [month3, month6]\nperiodz: 1", `:33: periodz: unknown key`},
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

// The study files of testdata/bad/study are refused, each at the line and
// field expected.json gives.
func TestBadStudyFiles(t *testing.T) {
	const dir = "../testdata/bad/study"
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]struct {
		Line    int    `json:"line"`
		Field   string `json:"field"`
		Message string `json:"message"`
		Why     string `json:"why"`
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(files) != len(want) {
		t.Errorf("%d study files, %d expected outcomes", len(files), len(want))
	}
	for _, file := range files {
		w, ok := want[filepath.Base(file)]
		if !ok {
			t.Errorf("%s: no expected outcome", file)
			continue
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := Load(file)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("%s: err = %v, want *Error", w.Why, err)
			}
			prefix := fmt.Sprintf("%s:%d: %s: ", file, w.Line, w.Field)
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), w.Message) {
				t.Errorf("%s:\nerr  %q\nwant %q…%q", w.Why, err, prefix, w.Message)
			}
		})
	}
}

// loadWith loads the bundled study with edits: old → new replacements in
// study.yaml, and files written beside it (path → content).
func loadWith(t *testing.T, edits []string, files map[string]string) (string, error) {
	t.Helper()
	b, err := embedded.ReadFile("study.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(text, edits[i]) {
			t.Fatalf("fixture text %q not in study.yaml", edits[i])
		}
		text = strings.Replace(text, edits[i], edits[i+1], 1)
	}
	dir := t.TempDir()
	files["study.yaml"] = text
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Load(filepath.Join(dir, "study.yaml"))
	return dir, err
}

// A study definition is untrusted: codes that could become file names keep
// to their alphabets, numbers to their bounds, and a setting cpi would not
// read is refused, each with file:line: field: message.
func TestStudyUntrusted(t *testing.T) {
	const eq = "ucla3"
	cases := []struct {
		name  string
		edits []string
		want  string
	}{
		{"trust code with a slash", []string{"{code: AWP, name", "{code: A/WP, name"}, `:12: trusts[3].code: trust code "A/WP" is not`},
		{"trust code lower case", []string{"{code: AWP, name", "{code: awp, name"}, `:12: trusts[3].code: trust code "awp"`},
		{"team code dot dot", []string{"{code: AWP-02, trust: AWP", "{code: .., trust: AWP"}, `:26: teams[7].code: team code ".." is not 1 to 32`},
		{"team code too long", []string{"{code: AWP-02, trust: AWP", "{code: " + strings.Repeat("A", 33) + ", trust: AWP"}, `teams[7].code: team code "AAAA`},
		{"long value quoted short", []string{"{code: AWP-02, trust: AWP", "{code: " + strings.Repeat("A/", 100) + ", trust: AWP"}, `"A/A/A/A/A/A/A/A/A/A/A/A/A/A/A/A/A/A/A/A/"… is not`},
		{"wave with a slash", []string{"waves: [baseline, followup]", "waves: [baseline, follow/up]"}, `waves[1]: wave "follow/up" is not`},
		{"wave twice", []string{"waves: [baseline, followup]", "waves: [baseline, baseline]"}, `waves[1]: wave "baseline" listed twice`},
		{"period with a space", []string{"periods: [month3, month6]", "periods: [month3, month 6]"}, `periods[1]: rating period "month 6" is not`},
		{"arm twice", []string{"arms: [intervention, control]", "arms: [control, control]"}, `arms[1]: arm "control" listed twice`},
		{"site escapes", []string{"site: awp}", "site: ../awp}"}, `:12: trusts[3].site: site "../awp" is not`},
		{"instrument escapes", []string{"instruments: [rguk,", "instruments: [../rguk,"}, `instruments[0]: instrument "../rguk" is not`},
		{"demographic code with a slash", []string{`"65+"]`, `"65+", "a/b"]`}, `demographics.age_band[6]: code "a/b" is not`},
		{"demographic neither codes nor yes_no", []string{"  gender: [", "  sex: maybe\n  gender: ["}, `demographics: "sex" must be a list of codes or yes_no`},
		{"demographic a fixed column", []string{"  gender: [", "  wave: yes_no\n  gender: ["}, `demographics.wave: demographic "wave" is already a column of the participants export`},
		{"demographic a code list", []string{"  gender: [", "  trusts: [a, b]\n  gender: ["}, `demographics.trusts: demographic "trusts" is the name of another code list`},
		{"demographic with a dash", []string{"  gender: [", "  lives-alone: yes_no\n  gender: ["}, `demographics.lives-alone: demographic "lives-alone" is not`},
		{"stratum", []string{"  ci_level: 0.95", "  stratum: trust\n  ci_level: 0.95"}, fmt.Sprintf(":%d: analysis.stratum: unknown key", studyLine(t, "  ci_level: 0.95"))},
		{"unknown top-level key", []string{"disclosure:", "cluster: team\ndisclosure:"}, `: cluster: unknown key`},
		{"fidelity min negative", []string{"  min: 0\n  max: 4", "  min: -1\n  max: 4"}, fmt.Sprintf(":%d: fidelity.min: must be from 0 to 99", studyLine(t, "  min: 0"))},
		{"fidelity max huge", []string{"  min: 0\n  max: 4", "  min: 0\n  max: 1000000000"}, fmt.Sprintf(":%d: fidelity.max: must be from 1 to 100", studyLine(t, "  max: 4"))},
		{"missing allowed too many", []string{"missing_allowed: 1\n  rater_roles", "missing_allowed: 12\n  rater_roles"}, `fidelity.missing_allowed: must be from 0 to 11`},
		{"lowest too many", []string{"lowest: 3", "lowest: 13"}, `fidelity.lowest: must be from 0 to 12`},
		{"band threshold NaN", []string{"min_pct: 50}", "min_pct: .nan}"}, `fidelity.bands[1].min_pct: min_pct must be from 0 to 100`},
		{"band name", []string{"{name: moderate,", "{name: <b>moderate</b>,"}, `fidelity.bands[1]: band "<b>moderate</b>" is not`},
		{"component code a fixed column", []string{"- code: cpf02", "- code: period"}, `fidelity.components[1].code: component code "period" is already a column`},
		{"component code with a dash", []string{"- code: cpf02", "- code: cpf-02"}, `fidelity.components[1].code: component code "cpf-02" is not 1 to 32 of A-Z a-z 0-9 _`},
		{"component name control character", []string{"name: Person-centred goals", `name: "Person\u0007centred"`}, `fidelity.components[0].name: holds a control character`},
		{"suggestion bidi override", []string{"suggestion: Start each", "suggestion: \"\u202eStart each\"\n    # "}, `fidelity.components[0].suggestion: holds a bidirectional override`},
		{"min_count above the bound", []string{"min_count: 5", "min_count: 1000"}, `disclosure.min_count: must be from 1 to 100`},
		{"silence days negative", []string{"silence_days: 14", "silence_days: -1"}, `ingest.silence_days: must be from 1 to 366`},
		{"ci level NaN", []string{"ci_level: 0.95", "ci_level: .nan"}, `analysis.ci_level: ci_level must be between 0 and 1`},
		{"draws negative", []string{"draws: 9999", "draws: -5"}, `analysis.bootstrap.draws: must be from 99 to 99999`},
		{"draws too many", []string{"draws: 9999", "draws: 100000000"}, `analysis.bootstrap.draws: must be from 99 to 99999`},
		{"outcome twice", []string{"outcomes: [rguk.total,", "outcomes: [rguk.total, rguk.total,"}, `analysis.outcomes[1]: outcome "rguk.total" listed twice`},
		{"analysis twice", []string{"analyses: [primary,", "analyses: [primary, primary,"}, `analysis.analyses[1]: analysis "primary" listed twice`},
		{"second document", []string{"disclosure:", "---\ndisclosure:"}, `a second YAML document`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, err := loadWith(t, c.edits, map[string]string{})
			assertDefinitionError(t, err, filepath.Join(dir, "study.yaml"), c.want)
		})
	}
	t.Run("oversized file", func(t *testing.T) {
		dir, err := loadWith(t, []string{"# The study definition", "#" + strings.Repeat("x", maxDefinitionBytes) + "\n# The study definition"}, map[string]string{})
		assertDefinitionError(t, err, filepath.Join(dir, "study.yaml"), "larger than")
	})
	t.Run("no draws: the default", func(t *testing.T) {
		b, _ := embedded.ReadFile("study.yaml")
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "study.yaml"), []byte(strings.Replace(string(b), "    draws: 9999\n", "", 1)), 0o600)
		s, err := Load(filepath.Join(dir, "study.yaml"))
		if err != nil || s.Analysis.Bootstrap.Draws != 9999 {
			t.Fatalf("draws %v, %v; want 9999", s, err)
		}
	})
}

// Instruments and value sets beside a study file are untrusted too.
func TestInstrumentUntrusted(t *testing.T) {
	const head = "name: ucla3\nmin: 1\nmax: 3\n"
	const bare = "name: ucla3\n"
	const scales = "scales:\n  - {name: total, method: sum}\n"
	cases := []struct {
		name, file, content, want string
	}{
		{"a billion items", "instruments/ucla3.yaml", head + "item_pattern: {format: \"ucla%d\", count: 1000000000}\n" + scales, `:4: item_pattern.count: must be from 1 to 500`},
		{"item name escapes", "instruments/ucla3.yaml", head + "item_pattern: {format: \"../u%d\", count: 3}\n" + scales, `:4: item_pattern.format: item name "../u1" is not`},
		{"item named as a fixed column", "instruments/ucla3.yaml", bare + "items:\n  - {name: wave, min: 1, max: 3}\n" + scales, `:3: items[0]: item name "wave" is already a column`},
		{"item range huge", "instruments/ucla3.yaml", bare + "items:\n  - {name: u1, min: 0, max: 2000000000}\n" + scales, `items[0]: min and max must be from -1000000 to 1000000`},
		{"blank outside the range", "instruments/ucla3.yaml", bare + "items:\n  - {name: u1, min: 1, max: 3, blank: 9}\n" + scales, `items[0]: blank must be from min to max`},
		{"scale name escapes", "instruments/ucla3.yaml", head + "item_pattern: {format: \"ucla%d\", count: 3}\nscales:\n  - {name: ../total, method: sum}\n", `scales[0].name: scale name "../total" is not`},
		{"missing allowed all", "instruments/ucla3.yaml", head + "item_pattern: {format: \"ucla%d\", count: 3}\nscales:\n  - {name: total, method: sum, missing_allowed: 3}\n", `scales[0].missing_allowed: must be from 0 to 2`},
		{"better neither way", "instruments/ucla3.yaml", head + "item_pattern: {format: \"ucla%d\", count: 3}\nscales:\n  - {name: total, method: sum, better: up}\n", `scales[0].better: better must be higher or lower, not "up"`},
		{"unknown key", "instruments/ucla3.yaml", head + "item_pattern: {format: \"ucla%d\", count: 3}\nscales:\n  - {name: total, method: sum, weight: 2}\n", `:6: scales[0].weight: unknown key`},
		{"lookup table short", "instruments/ucla3.yaml", head + "item_pattern: {format: \"ucla%d\", count: 3}\nscales:\n  - {name: total, method: sum}\n  - {name: m, method: lookup, from: total, table: [1, 2]}\n", `scales[1].table: 2 entries for raw scores 3..9`},
		{"lookup table NaN", "instruments/ucla3.yaml", head + "item_pattern: {format: \"ucla%d\", count: 1}\nscales:\n  - {name: total, method: sum}\n  - {name: m, method: lookup, from: total, table: [1, .nan, 3]}\n", `scales[1].table: entries must be finite`},
		{"range without a pattern", "instruments/ucla3.yaml", head + "items:\n  - {name: u1, min: 1, max: 3}\n" + scales, `:2: min: min is the range of item_pattern's items`},
		{"another method's setting", "instruments/ucla3.yaml", head + "item_pattern: {format: \"ucla%d\", count: 3}\nscales:\n  - {name: total, method: sum, rho: 0.3}\n", `scales[0].rho: rho is not a setting of method "sum"`},
		{"value set with missing allowed", "instruments/eq5d5l.yaml", strings.Replace(mustEmbedded(t, "instruments/eq5d5l.yaml"), "    missing_allowed: 0\n", "    missing_allowed: 1\n", 1), `scales[0].missing_allowed: a value set index cannot allow missing`},
		{"gas rho NaN", "instruments/gas.yaml", strings.Replace(mustEmbedded(t, "instruments/gas.yaml"), "rho: 0.3", "rho: .nan", 1), `scales[0].rho: rho must be in [0, 1)`},
		{"value set escapes", "instruments/eq5d5l.yaml", strings.Replace(mustEmbedded(t, "instruments/eq5d5l.yaml"), "valueset: eq5d5l_england", "valueset: ../eq5d5l_england", 1), `scales[0].valueset: value set "../eq5d5l_england" is not`},
		{"value set decrement infinite", "valuesets/eq5d5l_england.yaml", strings.Replace(mustEmbedded(t, "valuesets/eq5d5l_england.yaml"), "0.058", ".inf", 1), `dimensions.eq5d_mo: decrements must be finite`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, err := loadWith(t, nil, map[string]string{c.file: c.content})
			assertDefinitionError(t, err, filepath.Join(dir, filepath.FromSlash(c.file)), c.want)
		})
	}
}

// Site mappings beside a study file are untrusted too: synth writes files
// by their templates, ingest compiles their patterns and layouts.
func TestSiteMappingUntrusted(t *testing.T) {
	tewv := mustEmbedded(t, "sites/tewv.yaml")
	awp := mustEmbedded(t, "sites/awp.yaml")
	hpft := mustEmbedded(t, "sites/hpft.yaml")
	cases := []struct {
		name, file, content, want string
	}{
		{"template escapes", "sites/tewv.yaml", strings.Replace(tewv, `template: "TEWV_{kind}_{date}.csv"`, `template: "../../TEWV_{kind}_{date}.csv"`, 1), `:8: files[0].template: writes "../../TEWV_participants_20190329.csv": not a plain file name`},
		{"template the pattern does not read", "sites/tewv.yaml", strings.Replace(tewv, `template: "TEWV_{kind}_{date}.csv"`, `template: "tewv_{kind}_{date}.csv"`, 1), `files[0].template: writes "tewv_participants_20190329.csv", which the site's patterns do not read back`},
		{"date layout garbage", "sites/tewv.yaml", strings.Replace(tewv, `date_layout: "2006-01-02"`, `date_layout: "yyyy-mm-dd"`, 1), `:6: date_layout: date_layout "yyyy-mm-dd" does not write`},
		{"pattern date layout garbage", "sites/tewv.yaml", strings.Replace(tewv, `date_layout: "20060102"`, `date_layout: "01"`, 1), `files[0].date_layout: date_layout "01"`},
		{"pattern too long", "sites/tewv.yaml", strings.Replace(tewv, `pattern: '^TEWV_`, `pattern: '^`+strings.Repeat("(a|b)", 60)+`TEWV_`, 1), `files[0].pattern: longer than 256 characters`},
		{"date layout without a date group", "sites/tewv.yaml", strings.Replace(tewv, `_(?P<date>\d{8})`, `_(\d{8})`, 1), `files[0].date_layout: the pattern has no (?P<date>…) group`},
		{"delimiter a quote", "sites/tewv.yaml", strings.Replace(tewv, `delimiter: ","`, `delimiter: '"'`, 1), `:5: delimiter: delimiter must be one character`},
		{"unknown key", "sites/tewv.yaml", tewv + "sheets: [a]\n", `:9: sheets: unknown key`},
		{"encoding for xlsx", "sites/hpft.yaml", hpft + "encoding: utf-8\n", `encoding: encoding is for csv sites`},
		{"header alias control character", "sites/awp.yaml", strings.Replace(awp, `"Team": team_code`, `"Te\u0000am": team_code`, 1), "holds a control character"},
		{"value map to no code", "sites/awp.yaml", strings.Replace(awp, `"6 months": followup`, `"6 months": folowup`, 1), `values.wave.6 months: maps to "folowup", not a value of wave`},
		{"value map out of range", "sites/awp.yaml", strings.Replace(awp, `"rg*": {"Y": "1"`, `"rg*": {"Y": "7"`, 1), `maps to "7", not a value of rg01`},
		{"value map for no column", "sites/awp.yaml", strings.Replace(awp, `"rg*":`, `"rq*":`, 1), `values.rq*: "rq*" names no canonical column`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, err := loadWith(t, nil, map[string]string{c.file: c.content})
			assertDefinitionError(t, err, filepath.Join(dir, filepath.FromSlash(c.file)), c.want)
		})
	}
}

func mustEmbedded(t *testing.T, name string) string {
	t.Helper()
	b, err := embedded.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertDefinitionError checks err is an *Error starting with file and
// holding want.
func assertDefinitionError(t *testing.T, err error, file, want string) {
	t.Helper()
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if !strings.HasPrefix(err.Error(), file+":") || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q, want it to start with %s and contain %q", err, file, want)
	}
}

// studyLine is the line of the bundled study.yaml that holds text.
func studyLine(t *testing.T, text string) int {
	t.Helper()
	b, err := embedded.ReadFile("study.yaml")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), text)
	if i < 0 {
		t.Fatalf("%q not in study.yaml", text)
	}
	return strings.Count(string(b)[:i], "\n") + 1
}
