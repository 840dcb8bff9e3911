package schemas

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// A study definition, and every instrument, value set and site mapping it
// names, is untrusted input: cpi builds file names from its codes and loops
// over its ranges. These are the bounds Load enforces; each is generous for
// a real study and small enough that no definition can make cpi write
// outside the warehouse, run without end or exhaust memory.
const (
	maxDefinitionBytes = 1 << 20 // one definition file

	maxCodeLen = 32 // codes and names: see validCode

	maxTrusts       = 100
	maxTeams        = 1000
	maxWaves        = 20
	maxPeriods      = 50
	maxListCodes    = 100 // demographic codes, rater roles
	maxInstruments  = 50
	maxItems        = 500 // per instrument, listed or from item_pattern
	maxScales       = 50  // per instrument
	maxOutcomes     = 100
	maxDemographics = 50
	maxItemValue    = 1_000_000 // |min| and |max| of an item
	maxTableLen     = 100_001   // a lookup table's or value set dimension's entries

	maxComponents  = 100
	maxFidelityMax = 100 // fidelity ratings run from min ≥ 0 to max ≤ 100
	maxBands       = 10
	maxMinCount    = 100 // disclosure.min_count
	minDraws       = 99  // analysis.bootstrap.draws
	maxDraws       = 99_999
	maxSilenceDays = 366
	defaultDraws   = 9999
	// analysis.imputations (itt_mi, itt_delta) and analysis.delta_grid.
	defaultImputations = 50
	minImputations     = 2
	maxImputations     = 1000
	maxDeltas          = 101
	defaultSilence     = 14
	maxStudyVersion    = 1_000_000

	maxNameLen  = 200  // names and titles shown in reports
	maxProseLen = 2000 // a component's practice and suggestion

	maxSiteFiles   = 20
	maxPatternLen  = 256 // a file name pattern
	maxTemplateLen = 128
	maxLayoutLen   = 32
	maxHeaderLen   = 128 // a site's header alias, a value it maps
	maxSiteEntries = 2000
)

// validCode reports whether s is a code or name that may become part of a
// file name: 1 to 32 of A-Z a-z 0-9 _ -, starting with a letter or digit.
// Trust, team, arm, wave, period, rater role, band, instrument, scale,
// value set and site names are codes.
func validCode(s string) bool {
	if len(s) == 0 || len(s) > maxCodeLen || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

const codeRule = "1 to 32 of A-Z a-z 0-9 _ -, starting with a letter or digit"

// validTrustCode: 1 to 32 of A-Z 0-9, as in the canonical file name
// <TRUST>_<kind>_<YYYYMMDD>.csv and the partitions trust=<TRUST>.
func validTrustCode(s string) bool {
	if len(s) == 0 || len(s) > maxCodeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

const trustCodeRule = "1 to 32 of A-Z 0-9"

// validColumn reports whether s may name a column of the canonical export
// and of the warehouse (item names, fidelity component codes): 1 to 32 of
// A-Z a-z 0-9 _, starting with a letter.
func validColumn(s string) bool {
	if len(s) == 0 || len(s) > maxCodeLen || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' {
			return false
		}
	}
	return true
}

const columnRule = "1 to 32 of A-Z a-z 0-9 _, starting with a letter"

// validValueCode reports whether s may be a code of a canonical column
// (demographic codes such as 18-24 or 65+): 1 to 32 of A-Z a-z 0-9 _ - + .,
// starting with a letter or digit.
func validValueCode(s string) bool {
	if len(s) == 0 || len(s) > maxCodeLen || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("_-+.", rune(c)) {
			return false
		}
	}
	return true
}

const valueCodeRule = "1 to 32 of A-Z a-z 0-9 _ - + ., starting with a letter or digit"

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool  { return isLetter(c) || '0' <= c && c <= '9' }

// textProblem says what is wrong with free text (a name, a title, a header
// alias), or "" when it is fine: at most max characters, no control
// characters other than newline and tab (when multiline), no bidirectional
// overrides that would make a report read otherwise than it is written.
func textProblem(s string, max int, multiline bool) string {
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Sprintf("longer than %d characters", max)
	}
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			return "not valid UTF-8"
		case multiline && (r == '\n' || r == '\t'):
		case unicode.IsControl(r):
			return "holds a control character"
		case 0x202A <= r && r <= 0x202E, 0x2066 <= r && r <= 0x2069:
			return "holds a bidirectional override"
		}
	}
	return ""
}

// quote is %q of a definition value, cut to 40 bytes: a message names what
// was wrong without repeating a whole file's worth of it.
func quote(s string) string {
	const max = 40
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q…", s[:cut])
}

// finite reports whether every x is a finite number.
func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// checker reports the first mistake in one definition file as an *Error
// naming the file, the line and the field.
type checker struct {
	file string
	root *yaml.Node
}

func (c checker) fail(msg string, path ...any) error {
	return &Error{File: c.file, Line: lineOf(c.root, path...), Field: fieldName(path), Msg: msg}
}

// has reports whether the definition sets the field at path.
func (c checker) has(path ...any) bool { return nodeAt(c.root, path...) != nil }

// count checks a list's length.
func (c checker) count(n, min, max int, what string, path ...any) error {
	switch {
	case n < min && min == 1:
		return c.fail(fmt.Sprintf("at least one %s is required", what), path...)
	case n < min:
		return c.fail(fmt.Sprintf("at least %d %ss are required", min, what), path...)
	case n > max:
		return c.fail(fmt.Sprintf("%d listed: at most %d are allowed", n, max), path...)
	}
	return nil
}

// codes checks a list of codes: its length, each code's alphabet, no code
// twice.
func (c checker) codes(list []string, what string, valid func(string) bool, rule string, min, max int, path ...any) error {
	if err := c.count(len(list), min, max, what, path...); err != nil {
		return err
	}
	seen := make(map[string]bool, len(list))
	for i, v := range list {
		at := append(slices.Clip(path), i)
		if !valid(v) {
			return c.fail(fmt.Sprintf("%s %s is not %s", what, quote(v), rule), at...)
		}
		if seen[v] {
			return c.fail(fmt.Sprintf("%s %s listed twice", what, quote(v)), at...)
		}
		seen[v] = true
	}
	return nil
}

// code checks one code.
func (c checker) code(v, what string, valid func(string) bool, rule string, path ...any) error {
	if !valid(v) {
		return c.fail(fmt.Sprintf("%s %s is not %s", what, quote(v), rule), path...)
	}
	return nil
}

// text checks free text shown in reports.
func (c checker) text(v string, max int, multiline bool, path ...any) error {
	if p := textProblem(v, max, multiline); p != "" {
		return c.fail(p, path...)
	}
	return nil
}

// between checks lo ≤ v ≤ hi.
func (c checker) between(v, lo, hi int, path ...any) error {
	if v < lo || v > hi {
		return c.fail(fmt.Sprintf("must be from %d to %d", lo, hi), path...)
	}
	return nil
}
