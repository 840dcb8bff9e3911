package schemas

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// statesYAML is a per-state table of all 3,125 profiles, indented by
// indent, with utility u(profile); keys quoted when quoted is set.
func statesYAML(indent string, quoted bool, u func(p string) float64) string {
	var b strings.Builder
	for i := 0; i < StateCount; i++ {
		p := make([]byte, StateDigits)
		for k, r := StateDigits-1, i; k >= 0; k, r = k-1, r/5 {
			p[k] = byte('1' + r%5)
		}
		key := string(p)
		if quoted {
			key = strconv.Quote(key)
		}
		fmt.Fprintf(&b, "%s%s: %s\n", indent, key, strconv.FormatFloat(u(string(p)), 'g', -1, 64))
	}
	return b.String()
}

// illustrativeUtility is a made-up, non-additive utility of a profile for
// tests (not NICE DSU's mapping): 1 − 0.03 Σ(level − 1) − 0.1·[any level 5].
func illustrativeUtility(p string) float64 {
	u, worst := 1.0, false
	for _, c := range p {
		u -= 0.03 * float64(c-'1')
		worst = worst || c == '5'
	}
	if worst {
		u -= 0.1
	}
	return u
}

const statesHead = `name: eq5d5l_states_ILLUSTRATIVE
title: Per-state test value set
version: "0"
source: "ILLUSTRATIVE: made-up numbers for a test; not NICE DSU's mapping"
`

// loadWithValueSet loads the default study choosing the value set body
// (economics.valueset) from a directory of its own.
func loadWithValueSet(t *testing.T, body string) (*Study, error) {
	t.Helper()
	dir := t.TempDir()
	def, err := os.ReadFile("study.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(def), "\neconomics:\n", "\neconomics:\n  valueset: eq5d5l_states_ILLUSTRATIVE\n", 1)
	if text == string(def) {
		t.Fatal("no economics section in the default study")
	}
	if err := os.MkdirAll(filepath.Join(dir, "valuesets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "study.yaml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "valuesets", "eq5d5l_states_ILLUSTRATIVE.yaml"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(filepath.Join(dir, "study.yaml"))
}

// StateIndex reads five digits 1–5 as base 5 and refuses anything else.
func TestStateIndex(t *testing.T) {
	for p, want := range map[string]int{"11111": 0, "11112": 1, "11121": 5, "21111": 625, "55555": 3124, "12345": 0*625 + 1*125 + 2*25 + 3*5 + 4} {
		if got, ok := StateIndex(p); !ok || got != want {
			t.Errorf("StateIndex(%q) = %d, %v; want %d", p, got, ok, want)
		}
	}
	for _, p := range []string{"", "1111", "111111", "01111", "11116", "1111a", "1 111", "+1111", "١١١١١"} {
		if _, ok := StateIndex(p); ok {
			t.Errorf("StateIndex(%q) accepted", p)
		}
	}
}

// A per-state value set loads, with keys quoted or not; its scale range is
// its utilities' range; the metadata says "per health state".
func TestValueSetStatesLoad(t *testing.T) {
	for _, quoted := range []bool{false, true} {
		s, err := loadWithValueSet(t, statesHead+"states:\n"+statesYAML("  ", quoted, illustrativeUtility))
		if err != nil {
			t.Fatalf("quoted %v: %v", quoted, err)
		}
		vs := s.ValueSets["eq5d5l_states_ILLUSTRATIVE"]
		if vs == nil || len(vs.States) != StateCount || vs.States["11111"] != 1 || vs.States["12345"] != illustrativeUtility("12345") || vs.States["55555"] != illustrativeUtility("55555") {
			t.Fatalf("quoted %v: states %d, 11111 %v, 55555 %v", quoted, len(vs.States), vs.States["11111"], vs.States["55555"])
		}
		if d := vs.Describe(); d != "Per-state test value set version 0; per health state; source: ILLUSTRATIVE: made-up numbers for a test; not NICE DSU's mapping" {
			t.Errorf("Describe: %s", d)
		}
		if lo, hi, ok := s.ScaleRange("eq5d5l.index"); !ok || lo != illustrativeUtility("55555") || hi != 1 {
			t.Errorf("scale range %v..%v, %v", lo, hi, ok)
		}
	}
}

// Mistakes in a per-state value set are refused at their file, line and
// field.
func TestValueSetStatesRefused(t *testing.T) {
	good := statesYAML("  ", false, illustrativeUtility)
	goodLines := strings.Split(good, "\n")
	// The line of profile 12345 in the file (the head has four lines,
	// "states:" is the fifth).
	line12345 := 0
	for i, l := range goodLines {
		if strings.HasPrefix(l, "  12345:") {
			line12345 = i + 6
		}
	}
	replace := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("no %q in the table", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	stratum := func(states string) string {
		return "strata:\n  - age_band: \"18-24\"\n    gender: female\n    states:\n" + strings.ReplaceAll("    "+strings.TrimSuffix(states, "\n"), "\n", "\n    ") + "\n"
	}
	for _, tc := range []struct {
		name, body, field, msg string
		line                   int
	}{
		{"missing profile", "states:\n" + replace("  12345: "+strconv.FormatFloat(illustrativeUtility("12345"), 'g', -1, 64)+"\n", ""), "states", "health state 12345 is missing", 5},
		{"bad key digit", "states:\n" + replace("  12345:", "  12346:"), "states", `health state "12346" is not five digits 1–5`, line12345},
		{"short key", "states:\n" + replace("  12345:", "  1234:"), "states", `health state "1234" is not five digits 1–5`, line12345},
		{"above 1", "states:\n" + replace("  12345: "+strconv.FormatFloat(illustrativeUtility("12345"), 'g', -1, 64), "  12345: 1.5"), "states.12345", "between −1 and 1", line12345},
		{"below -1", "states:\n" + replace("  12345: "+strconv.FormatFloat(illustrativeUtility("12345"), 'g', -1, 64), "  12345: -1.01"), "states.12345", "between −1 and 1", line12345},
		{"not a number", "states:\n" + replace("  12345: "+strconv.FormatFloat(illustrativeUtility("12345"), 'g', -1, 64), "  12345: .nan"), "states.12345", "finite", line12345},
		{"long key", "states:\n" + replace("  12345:", "  \"12345"+strings.Repeat("9", 200)+"\\u0007\":"), "states", `is not five digits 1–5`, line12345},
		{"duplicate", "states:\n" + good + "  12345: 0.5\n", "", "already defined", 0},
		{"dimensions and states", "dimensions: {eq5d_mo: [0, 0, 0, 0, 0]}\nstates:\n" + good, "states", "dimensions or states, not both", 6},
		{"strata and states", "states:\n" + good + stratum(good), "states", "states or strata, not both", 5},
		{"stratum with both", stratum("  11111: 1\n") + "    dimensions: {eq5d_mo: [0, 0, 0, 0, 0]}\n", "strata[0].states", "dimensions or states, not both", 0},
		{"stratum missing profile", stratum("  11111: 1\n"), "strata[0].states", "health state 11112 is missing", 0},
		{"neither", "", "", "needs dimensions, states or strata", 0},
	} {
		_, err := loadWithValueSet(t, statesHead+tc.body)
		var se *Error
		if !errors.As(err, &se) {
			t.Errorf("%s: accepted or not a definition error: %v", tc.name, err)
			continue
		}
		if len(se.Error()) > 400 || strings.ContainsRune(se.Error(), 7) {
			t.Errorf("%s: the error repeats the untrusted key: %q", tc.name, se.Error())
		}
		if !strings.Contains(se.Msg, tc.msg) || se.Field != tc.field || (tc.line != 0 && se.Line != tc.line) || !strings.HasSuffix(se.File, "eq5d5l_states_ILLUSTRATIVE.yaml") {
			t.Errorf("%s: %s:%d: %s: %s; want line %d field %q, %q", tc.name, se.File, se.Line, se.Field, se.Msg, tc.line, tc.field, tc.msg)
		}
	}
}

// A per-state set for every age band × female/male of the bundled study,
// utilities to three decimals as README shows, fits the 1 MiB definition
// limit and loads.
func TestValueSetStatesFullStrataFit(t *testing.T) {
	var b strings.Builder
	b.WriteString(statesHead + "strata:\n")
	d, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, band := range d.Demographics["age_band"] {
		for _, g := range []string{"female", "male"} {
			fmt.Fprintf(&b, "  - age_band: %q\n    gender: %s\n    states:\n", band, g)
			b.WriteString(statesYAML("      ", true, func(p string) float64 {
				u, _ := strconv.ParseFloat(strconv.FormatFloat(illustrativeUtility(p), 'f', 3, 64), 64)
				return u
			}))
			n++
		}
	}
	if n != 12 || b.Len() > maxDefinitionBytes {
		t.Fatalf("%d strata in %d bytes (limit %d)", n, b.Len(), maxDefinitionBytes)
	}
	s, err := loadWithValueSet(t, b.String())
	if err != nil {
		t.Fatal(err)
	}
	if vs := s.ValueSets["eq5d5l_states_ILLUSTRATIVE"]; len(vs.Strata) != 12 || vs.Strata[11].States["55555"] != 0.3 {
		t.Errorf("strata %d", len(vs.Strata))
	}
	t.Logf("12 strata in %d bytes", b.Len())
}
