package pipeline

import (
	"context"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/ingest/privacy"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// A disguise is an identifier written the way a careless export or a
// careful adversary might write it: the cell, the rule that must catch it,
// and its bare form (digits, or a postcode without its space) that no
// message may repeat.
type disguise struct {
	cell string
	rule privacy.PrivacyRule
	bare string
}

// caughtBy reports whether rule is the right catch: a phone number's ten
// national digits that pass the NHS check may be taken for an NHS number,
// which guards them as well.
func (d disguise) caughtBy(rule privacy.PrivacyRule) bool {
	return rule == d.rule || (d.rule == privacy.RulePhone && rule == privacy.RuleNHSNumber && privacy.ValidNHSNumber(d.bare))
}

// Separators the guard promises to see through, by what they may stand
// between: the groups of an NHS number, the halves of a postcode, the
// groups of a phone number, the parts of a date.
var (
	unicodeSpaces = []string{"\u00a0", "\u2007", "\u2009", "\u202f", "\u3000", "\u2002", "\t"}
	unicodeDashes = []string{"\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212", "\ufe63", "\uff0d"}
	nhsSeps       = append(append([]string{" ", "-", ".", "/", "  ", " .", "- "}, unicodeSpaces...), unicodeDashes...)
	postcodeSeps  = append([]string{"", " ", "  ", "-", "."}, unicodeSpaces...)
	phoneSeps     = append(append([]string{" ", "-", ".", "  ", " -"}, unicodeSpaces...), unicodeDashes...)
	invisibles    = []string{"\u200b", "\u00ad", "\u2060", "\u200c"}
	wraps         = []string{"%s", "%s", "ref: %s", "(%s)", "%s.", "seen %s today", "[%s]"}
)

// digitForms writes ASCII digits in another script: ASCII, full-width,
// Arabic-Indic, Devanagari, mathematical bold.
var digitForms = []rune{'0', '\uff10', '\u0660', '\u0966', '\U0001d7ce'}

func reDigits(s string, zero rune) string {
	if zero == '0' {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return zero + (r - '0')
		}
		return r
	}, s)
}

// fullWidth writes printable ASCII in its full-width forms.
func fullWidth(s string) string {
	return strings.Map(func(r rune) rune {
		if r > ' ' && r < 0x7f {
			return r + 0xfee0
		}
		return r
	}, s)
}

// sprinkle puts an invisible character after some of s's characters.
func sprinkle(rng *rand.Rand, s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
		if rng.IntN(4) == 0 {
			b.WriteString(invisibles[rng.IntN(len(invisibles))])
		}
	}
	return b.String()
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// makeDisguise builds one disguised identifier of the kind (NHS number,
// postcode, phone number, date of birth) from a seeded source.
func makeDisguise(seed uint64, kind uint8) disguise {
	rng := rand.New(rand.NewPCG(seed, uint64(kind)))
	var d disguise
	switch kind % 4 {
	case 0:
		d = nhsDisguise(rng)
	case 1:
		d = postcodeDisguise(rng)
	case 2:
		d = phoneDisguise(rng)
	default:
		d = dobDisguise(rng)
	}
	if rng.IntN(5) == 0 {
		d.cell = sprinkle(rng, d.cell)
	}
	d.cell = fmt.Sprintf(pick(rng, wraps), d.cell)
	return d
}

// nhsDisguise is a valid NHS number (modulus 11, computed by
// refNHSCheckDigit), together, in 3-3-4 groups or in Excel's notation.
func nhsDisguise(rng *rand.Rand) disguise {
	var n string
	for {
		nine := fmt.Sprintf("%09d", rng.IntN(1_000_000_000))
		if c := refNHSCheckDigit(nine); c >= 0 && strings.Count(nine, nine[:1]) != 9 {
			n = nine + strconv.Itoa(c)
			break
		}
	}
	var cell string
	switch rng.IntN(5) {
	case 0:
		cell = n
	case 1: // Excel's scientific notation, its trailing zeros dropped
		frac := strings.TrimRight(n[1:], "0")
		exp := pick(rng, []string{"E+09", "E+9", "e9", "E09", "e+09"})
		if frac == "" {
			cell = n[:1] + exp
		} else {
			cell = n[:1] + "." + frac + exp
		}
		return disguise{cell, privacy.RuleNHSNumber, n}
	case 2: // a number Excel wrote as a float
		cell = n + ".0"
	default:
		cell = n[:3] + pick(rng, nhsSeps) + n[3:6] + pick(rng, nhsSeps) + n[6:]
	}
	return disguise{reDigits(cell, pick(rng, digitForms)), privacy.RuleNHSNumber, n}
}

var testPostcodeAreas = []string{"B", "E", "G", "L", "M", "N", "S", "W", "AB", "BS", "CR", "DN", "EC", "LS", "NW", "SE", "SW", "TS", "WC", "YO"}

const inwardLetters = "ABDEFGHJLNPQRSTUWXYZ"

// postcodeDisguise is a full postcode of a real area, any layout of
// outward code, in either case or full-width, its halves apart or not.
func postcodeDisguise(rng *rand.Rand) disguise {
	out := pick(rng, testPostcodeAreas) + strconv.Itoa(1+rng.IntN(9))
	switch rng.IntN(3) {
	case 1:
		out += strconv.Itoa(rng.IntN(10))
	case 2:
		out += string(inwardLetters[rng.IntN(len(inwardLetters))])
	}
	in := strconv.Itoa(rng.IntN(10)) + string(inwardLetters[rng.IntN(len(inwardLetters))]) + string(inwardLetters[rng.IntN(len(inwardLetters))])
	cell := out + pick(rng, postcodeSeps) + in
	switch rng.IntN(4) {
	case 1:
		cell = strings.ToLower(cell)
	case 2:
		cell = fullWidth(cell)
	}
	return disguise{cell, privacy.RulePostcode, out + in}
}

// phoneDisguise is a UK mobile, London or geographic number, nationally or
// with +44, +44 (0), 0044, (+44) or a bare 44, grouped any common way.
func phoneDisguise(rng *rand.Rand) disguise {
	var national string // without the leading 0: 10 digits
	switch rng.IntN(3) {
	case 0:
		national = "7" + strconv.Itoa(1+rng.IntN(9)) + fmt.Sprintf("%08d", rng.IntN(100_000_000))
	case 1:
		national = "20" + fmt.Sprintf("%08d", rng.IntN(100_000_000))
	default:
		national = "1" + strconv.Itoa(1+rng.IntN(9)) + fmt.Sprintf("%08d", rng.IntN(100_000_000))
	}
	sep := func() string { return pick(rng, phoneSeps) }
	group := func(n string) string { // n is the 10 national digits
		switch rng.IntN(4) {
		case 0:
			return n
		case 1:
			return n[:4] + sep() + n[4:]
		case 2:
			return n[:3] + sep() + n[3:6] + sep() + n[6:]
		default:
			return n[:2] + sep() + n[2:6] + sep() + n[6:]
		}
	}
	var cell string
	switch rng.IntN(7) {
	case 0, 1:
		cell = "0" + group(national)
	case 2:
		cell = "+44" + pick(rng, []string{"", " ", "-", "\u00a0"}) + group(national)
	case 3:
		cell = "+44 (0)" + pick(rng, []string{"", " "}) + group(national)
	case 4:
		cell = "0044 " + group(national)
	case 5:
		cell = "(+44)" + pick(rng, []string{"", " "}) + group(national)
	default:
		if rng.IntN(3) == 0 { // what Excel shows of the number 447700900123
			cell = "4." + strings.TrimRight("44"[1:]+national, "0") + "E+11"
		} else {
			cell = "44" + pick(rng, []string{"", " ", "\u00a0"}) + group(national)
		}
	}
	return disguise{reDigits(cell, pick(rng, digitForms)), privacy.RulePhone, national}
}

// dobDisguise is a full date of birth in a layout the guard knows.
func dobDisguise(rng *rand.Rand) disguise {
	y, m, dd := 1920+rng.IntN(90), 1+rng.IntN(12), 1+rng.IntN(28)
	months := []string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
	sp := func() string { return pick(rng, append([]string{" "}, unicodeSpaces...)) }
	dash := func() string { return pick(rng, append([]string{"-"}, unicodeDashes...)) }
	var cell string
	switch rng.IntN(8) {
	case 0:
		cell = fmt.Sprintf("%04d%02d%02d", y, m, dd)
	case 1:
		cell = fmt.Sprintf("%02d%02d%04d", dd, m, y)
	case 2:
		cell = fmt.Sprintf("%02d.%02d.%04d", dd, m, y)
	case 3:
		cell = fmt.Sprintf("%02d/%02d/%04d", dd, m, y)
	case 4:
		s := dash()
		cell = fmt.Sprintf("%04d%s%02d%s%02d", y, s, m, s, dd)
	case 5:
		s := sp()
		cell = fmt.Sprintf("%02d%s%02d%s%04d", dd, s, m, s, y)
	case 6:
		cell = fmt.Sprintf("%d%s%s%s%d", dd, sp(), months[m-1], sp(), y)
	default:
		cell = fmt.Sprintf("%d%s%s%s%d", dd, dash(), months[m-1][:3], dash(), y)
	}
	return disguise{reDigits(cell, pick(rng, digitForms)), privacy.RuleDateOfBirth, fmt.Sprintf("%04d%02d%02d", y, m, dd)}
}

// squeeze keeps the letters and digits of s, upper-cased, digits of every
// script as ASCII: the form in which an echo is looked for.
func squeeze(s string) string {
	var b strings.Builder
	for _, r := range privacy.NormaliseCell(s) {
		switch {
		case r >= '0' && r <= '9', r >= 'A' && r <= 'Z':
			b.WriteRune(r)
		case r >= 'a' && r <= 'z':
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

// FuzzPrivacyDisguises feeds the guard identifiers in random disguises
// built from valid NHS numbers, postcodes, phone numbers and dates of
// birth, placed in a column the study does not know, in a code column or
// in a header cell of a CSV export: every one must quarantine the file
// under its rule, and no problem may repeat it. `go test` runs the seeds;
//
//	go test ./pipeline -run XXX -fuzz FuzzPrivacyDisguises -fuzztime 10m
//
// explores further.
func FuzzPrivacyDisguises(f *testing.F) {
	for i := range 48 {
		f.Add(uint64(i*7919+1), uint8(i%4), uint8(i%3))
	}
	s, err := schemas.Default()
	if err != nil {
		f.Fatal(err)
	}
	env := warehouse.Env{Study: s, Version: "test"}
	names := ingest.FieldNames(env.Study.ExportFields(schemas.KindParticipants))
	good := ingestTestRow("P00001", "TEWV-01", "baseline", "2018-03-01", nil)
	f.Fuzz(func(t *testing.T, seed uint64, kind, place uint8) {
		d := makeDisguise(seed, kind)
		if rule, ok := privacy.CheckCell(d.cell, false); !ok || !d.caughtBy(rule) {
			t.Fatalf("CheckCell(%q) = %q, %v; want %q", d.cell, rule, ok, d.rule)
		}
		header := append(append([]string(nil), names...), "notes")
		row := make([]string, len(names), len(names)+1)
		for i, n := range names {
			row[i] = good[n]
		}
		row = append(row, "fine")
		switch place % 3 {
		case 0:
			row[len(row)-1] = d.cell
		case 1:
			row[slices.Index(names, "ethnicity")] = d.cell // a code column
		default:
			header[len(header)-1] = d.cell
		}
		var b strings.Builder
		w := csv.NewWriter(&b)
		w.Write(header)
		w.Write(row)
		w.Flush()
		p := filepath.Join(t.TempDir(), "TEWV_participants_20190329.csv")
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		checks, err := ingest.Validate(context.Background(), env, []string{p})
		if err != nil {
			t.Fatal(err)
		}
		got := checks[0]
		if rule, ok := strings.CutPrefix(got.Quarantine, warehouse.QuarantinePrivacy); !ok || !d.caughtBy(privacy.PrivacyRule(rule)) {
			t.Fatalf("cell %q (place %d): quarantine %q, want %s%s", d.cell, place%3, got.Quarantine, warehouse.QuarantinePrivacy, d.rule)
		}
		bare := squeeze(d.bare)
		for _, pr := range got.Problems {
			text := pr.Message + " " + pr.Column
			if strings.Contains(text, d.cell) || strings.Contains(squeeze(text), bare) {
				t.Fatalf("cell %q echoed: %+v", d.cell, pr)
			}
		}
	})
}
