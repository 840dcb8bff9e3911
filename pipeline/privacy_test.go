package pipeline

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/ingest/privacy"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// refNHSCheckDigit computes an NHS number's check digit independently of
// nhsCheck: the digits are weighted from the right (position 2 … 10) as
// NHS Digital describes; -1 means no valid number has these nine digits.
func refNHSCheckDigit(nine string) int {
	total := 0
	for pos := 2; pos <= 10; pos++ {
		total += pos * int(nine[10-pos]-'0')
	}
	r := total % 11
	switch r {
	case 0:
		return 0
	case 1:
		return -1
	}
	return 11 - r
}

// genNHSNumbers returns n valid, non-placeholder NHS numbers from a seeded
// source.
func genNHSNumbers(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 1))
	var out []string
	for len(out) < n {
		nine := strconv.Itoa(400000000 + rng.IntN(399999999))
		c := refNHSCheckDigit(nine)
		if c < 0 {
			continue
		}
		out = append(out, nine+strconv.Itoa(c))
	}
	return out
}

func TestValidNHSNumber(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"9434765919", true}, // NHS Digital's example
		{"9434765870", true},
		{"4010232137", true},
		{"9434765918", false}, // check digit off by one
		{"1234567890", false}, // check digit would be 10
		{"943476591", false},
		{"94347659190", false},
		{"943476591a", false},
		{"943 476 5919", false}, // ValidNHSNumber takes digits only
		{"", false},
	} {
		if got := privacy.ValidNHSNumber(tc.in); got != tc.want {
			t.Errorf("ValidNHSNumber(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	for _, n := range genNHSNumbers(500, 1) {
		if !privacy.ValidNHSNumber(n) {
			t.Errorf("ValidNHSNumber(%q) = false; the reference check digit says valid", n)
		}
		// Every other last digit is wrong.
		for d := byte('0'); d <= '9'; d++ {
			if d == n[9] {
				continue
			}
			if m := n[:9] + string(d); privacy.ValidNHSNumber(m) {
				t.Errorf("ValidNHSNumber(%q) = true; the check digit is %c", m, n[9])
			}
		}
	}
}

type cellCase struct {
	in   string
	date bool // dateColumn
	want privacy.PrivacyRule
}

func runCellCases(t *testing.T, cases []cellCase) {
	t.Helper()
	for _, tc := range cases {
		got, ok := privacy.CheckCell(tc.in, tc.date)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("CheckCell(%q, %v) = %q, %v; want %q", tc.in, tc.date, got, ok, tc.want)
		}
	}
}

func TestCheckCellNHSNumber(t *testing.T) {
	cases := []cellCase{
		{"9434765919", false, privacy.RuleNHSNumber},
		{"943 476 5870", false, privacy.RuleNHSNumber},
		{"401 023 2137", true, privacy.RuleNHSNumber},
		{"401-023-2137", false, privacy.RuleNHSNumber},
		{"NHS no: 9434765919.", false, privacy.RuleNHSNumber},
		{"(9434765919)", false, privacy.RuleNHSNumber},
		{"9434765919.0", false, privacy.RuleNHSNumber}, // Excel made it a number
		{"id 943 476 5919 seen", false, privacy.RuleNHSNumber},
		{"943  476 5919", false, privacy.RuleNHSNumber}, // two spaces: still a grouping
		// Not caught: the check fails, or the digits are not bounded.
		{"9434765918", false, ""},
		{"1234567890", false, ""},
		{"943 476 5918", false, ""},
		{"19434765919", false, ""},
		{"94347659190", false, ""},
		{"9434 765 919", false, ""},
		{"0000000000", false, ""}, // placeholders pass mod 11
		{"9999999999", false, ""},
	}
	for _, n := range genNHSNumbers(200, 2) {
		cases = append(cases,
			cellCase{n, false, privacy.RuleNHSNumber},
			cellCase{n[:3] + " " + n[3:6] + " " + n[6:], false, privacy.RuleNHSNumber},
			cellCase{"x" + n + "y", true, privacy.RuleNHSNumber},
		)
	}
	runCellCases(t, cases)
}

func TestCheckCellPostcode(t *testing.T) {
	runCellCases(t, []cellCase{
		{"SW1A 1AA", false, privacy.RulePostcode},
		{"M1 1AE", false, privacy.RulePostcode},
		{"B33 8TH", false, privacy.RulePostcode},
		{"CR2 6XH", false, privacy.RulePostcode},
		{"DN55 1PT", false, privacy.RulePostcode},
		{"dn551pt", false, privacy.RulePostcode},
		{"sw1a1aa", true, privacy.RulePostcode},
		{"EC1A 1BB", false, privacy.RulePostcode},
		{"W1A 0AX", false, privacy.RulePostcode},
		{"GIR 0AA", false, privacy.RulePostcode},
		{"12 High St, Leeds LS1 4AP", false, privacy.RulePostcode},
		{"lives near (LS1 4AP)", false, privacy.RulePostcode},
		// Not postcodes.
		{"LS1", false, ""},
		{"LS1 4", false, ""},
		{"TEWV-01", false, ""},
		{"P00123", false, ""},
		{"R07", false, ""},
		{"ab_12-x", false, ""},
		{"AB12CD", false, ""},    // C is no inward letter
		{"XY12AB", false, ""},    // XY is no postcode area
		{"SW1A 1AAB", false, ""}, // not a whole word
		{"XSW1A1AA", false, ""},
		{"gas1_level", false, ""},
		{"swemwbs7", false, ""},
	})
}

func TestCheckCellEmail(t *testing.T) {
	runCellCases(t, []cellCase{
		{"jo.bloggs@example.nhs.uk", false, privacy.RuleEmail},
		{"a@b.co", true, privacy.RuleEmail},
		{"contact: x_y+z@mail.example.com.", false, privacy.RuleEmail},
		{"O'Brien@example.org", false, privacy.RuleEmail},
		{"@handle", false, ""},
		{"user@localhost", false, ""},
		{"a@b", false, ""},
		{"x@y.1", false, ""},
		{"team@", false, ""},
		{"50@60%", false, ""},
	})
}

func TestCheckCellPhone(t *testing.T) {
	runCellCases(t, []cellCase{
		{"01632 960001", false, privacy.RulePhone},
		{"(01632) 960 001", false, privacy.RulePhone},
		{"07700 900123", false, privacy.RulePhone},
		{"07700-900-123", false, privacy.RulePhone},
		{"07700900123", true, privacy.RulePhone},
		{"020 7946 0958", false, privacy.RulePhone},
		{"+44 7700 900123", false, privacy.RulePhone},
		{"+447700900123", false, privacy.RulePhone},
		{"+44 (0)20 7946 0958", false, privacy.RulePhone},
		{"0044 20 7946 0958", false, privacy.RulePhone},
		{"ring 0113 496 0000 after 5", false, privacy.RulePhone},
		// Not phones.
		{"0123456780", false, ""}, // a bare 10-digit run (failing the NHS check)
		{"9434765918", false, ""}, // 10 digits failing the NHS check
		{"1234567890", false, ""},
		{"00123456789", false, ""},
		{"012345678901", false, ""},
		{"123456789012", false, ""},
		{"+44 20 7946 095", false, ""},
		{"01/02/2018 10:30", true, ""},
	})
}

func TestCheckCellDateOfBirth(t *testing.T) {
	dates := []string{
		"14/03/1987", "1/3/87", "1987-03-14", "14-03-1987", "14.03.1987",
		"03/14/1987", "14 March 1987", "14 Mar 1987", "14-Mar-87", "14 mar 1987",
		"March 14, 1987", "14th March 1987", "born 14/03/1987 in Leeds",
		"2018-03-14T10:00:00", "1 Sept 1960",
	}
	var cases []cellCase
	for _, d := range dates {
		cases = append(cases, cellCase{d, false, privacy.RuleDateOfBirth}, cellCase{d, true, ""})
	}
	for _, s := range []string{
		"18-24", "65+", "2018", "1987", "6 months", "Month 3", "month6", "March 2018",
		"14 March", "1.5", "3.14159", "32/13/2018", "2018-13-01", "2018-03", "14/03",
		"non_binary", "not_stated", "12-2018", "1-2-345",
	} {
		cases = append(cases, cellCase{s, false, ""})
	}
	runCellCases(t, cases)
}

func TestCheckCellCleanValues(t *testing.T) {
	// Values of a canonical export: none may be flagged.
	for _, s := range []string{
		"", "0", "1", "5", "42", "100", "-2", "+2", "18-24", "65+", "female", "non_binary",
		"not_stated", "TEWV-01", "BDCT-02", "P00123", "R07", "ab_12-x", "baseline", "followup",
		"month3", "researcher", "practitioner", "psychosis", "6 months", "Month 3", "Y", "N",
		"Not stated – declined", "Rater 12", "2018", "P000123456", "HPFT-P-0001234",
	} {
		if rule, ok := privacy.CheckCell(s, false); ok {
			t.Errorf("CheckCell(%q) = %q; want no rule", s, rule)
		}
	}
}

func TestCheckCellDoesNotAllocate(t *testing.T) {
	cells := []string{"3", "TEWV-01", "943 476 5919", "SW1A 1AA", "jo@example.org", "07700 900123", "14 March 1987", "P00123"}
	allocs := testing.AllocsPerRun(100, func() {
		for _, c := range cells {
			privacy.CheckCell(c, false)
		}
	})
	if allocs != 0 {
		t.Errorf("CheckCell allocates %v times per run; want 0", allocs)
	}
}

func TestCheckHeader(t *testing.T) {
	for _, h := range []string{
		"Name", "name", "First name", "forename", "Forenames", "Surname", "LastName", "FULL_NAME",
		"full name", "Patient Name", "Team name", "TeamName", "Address", "Address line 1", "address1",
		"DOB", "D.O.B.", "dob", "PatientDOB", "Date of birth", "dateOfBirth", "Birth date", "NHS",
		"NHS Number", "NHSNumber", "nhs_no", "NHS No.", "Email", "E-mail", "Postcode", "Mobile phone",
		"Tel", "telephone", "Initials",
	} {
		if rule, ok := privacy.CheckHeader(h); !ok || rule != privacy.RuleIdentifyingHeader {
			t.Errorf("CheckHeader(%q) = %q, %v; want %q", h, rule, ok, privacy.RuleIdentifyingHeader)
		}
	}
	for _, h := range []string{
		"participant_id", "team_code", "Team", "Wave", "Timepoint", "Interview date", "Age band",
		"Gender", "Ethnic group", "Diagnosis", "Unnamed: 0", "gas1_level", "Rater role", "Rater ID",
		"eq5d_vas", "Comments", "Lives alone", "Withdrawn", "Hotel", "Date rated", "",
	} {
		if rule, ok := privacy.CheckHeader(h); ok {
			t.Errorf("CheckHeader(%q) = %q; want no rule", h, rule)
		}
	}
}

// nhsRef finds a valid, non-placeholder NHS number in s with regular
// expressions: the reference FuzzCheckCell compares CheckCell against.
var nhsRef = regexp.MustCompile(`^(\d{10}|\d{3}[ ./-]{1,2}\d{3}[ ./-]{1,2}\d{4})(?:\D|$)`)

func refHasNHSNumber(s string) bool {
	s = privacy.NormaliseCell(s)
	for i := 0; i < len(s); i++ {
		if i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
			continue
		}
		m := nhsRef.FindStringSubmatch(s[i:])
		if m == nil {
			continue
		}
		d := strings.NewReplacer(" ", "", "-", "", ".", "", "/", "").Replace(m[1])
		if c := refNHSCheckDigit(d[:9]); c >= 0 && int(d[9]-'0') == c && strings.Count(d, d[:1]) != 10 {
			return true
		}
	}
	return false
}

func FuzzCheckCell(f *testing.F) {
	for _, s := range []string{"3", "943 476 5919", "SW1A 1AA", "jo@example.org", "07700 900123", "14 March 1987", "P00123", "18-24"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, date bool) {
		r1, ok1 := privacy.CheckCell(s, date)
		r2, ok2 := privacy.CheckCell(s, date)
		if r1 != r2 || ok1 != ok2 {
			t.Fatalf("CheckCell(%q) not deterministic: %q/%v then %q/%v", s, r1, ok1, r2, ok2)
		}
		if ok1 != (r1 != "") {
			t.Fatalf("CheckCell(%q) = %q, %v: a rule exactly when flagged", s, r1, ok1)
		}
		switch r1 {
		case "", privacy.RuleNHSNumber, privacy.RulePostcode, privacy.RuleEmail, privacy.RulePhone, privacy.RuleDateOfBirth:
		default:
			t.Fatalf("CheckCell(%q) = unknown rule %q", s, r1)
		}
		if date && r1 == privacy.RuleDateOfBirth {
			t.Fatalf("CheckCell(%q, true) = date_of_birth in a date column", s)
		}
		if rf, okf := privacy.CheckCell(s, false); date && ok1 && (!okf || (r1 != rf && rf != privacy.RuleDateOfBirth)) {
			t.Fatalf("CheckCell(%q): %q in a date column but %q outside", s, r1, rf)
		}
		if want := refHasNHSNumber(s); want != (r1 == privacy.RuleNHSNumber) {
			t.Fatalf("CheckCell(%q) = %q; the reference says NHS number %v", s, r1, want)
		}
	})
}

// benchCells is a realistic row mix: mostly small integers and codes.
func benchCells() []string {
	row := []string{"P000123", "TEWV-01", "baseline", "2018-03-14", "25-34", "female", "white", "1", "psychosis", "0"}
	for i := 0; i < 75; i++ {
		row = append(row, strconv.Itoa(i%5))
	}
	row[60], row[70] = "", "100"
	return row
}

func BenchmarkPrivacyCheckCell(b *testing.B) {
	row := benchCells()
	b.ReportAllocs()
	for b.Loop() {
		for i, c := range row {
			privacy.CheckCell(c, i == 3)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(row)), "ns/cell")
}

func BenchmarkPrivacyCheckCellText(b *testing.B) {
	row := []string{
		"Seen at home with her sister; next visit in 6 months, call back 2 weeks",
		"Referred 2018 by GP practice B82005, team TEWV-01, reviewed 3 times",
		"Goal: join the walking group on Tuesdays at 10.30 (Month 3 review)",
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range row {
			privacy.CheckCell(c, false)
		}
	}
}

// Issue 12: identifiers in disguise. Each of these was accepted before the
// guard normalised text (Unicode spaces and dashes, dots, Excel's notation,
// country codes, compact dates).
func TestCheckCellDisguises(t *testing.T) {
	runCellCases(t, []cellCase{
		// Unicode spaces, dashes, invisible characters and wide forms.
		{"943\u00a0476\u00a05919", false, privacy.RuleNHSNumber},
		{"943\u202f476\u20095919", true, privacy.RuleNHSNumber},
		{"943\u2010476\u20135919", false, privacy.RuleNHSNumber},
		{"943\u2212476\u20145919", false, privacy.RuleNHSNumber},
		{"943\u200b476\u200b5919", false, privacy.RuleNHSNumber},
		{"９４３４７６５９１９", false, privacy.RuleNHSNumber},
		{"\u0669\u0664\u0663\u0664\u0667\u0666\u0665\u0669\u0661\u0669", false, privacy.RuleNHSNumber}, // Arabic-Indic digits
		{"943\t476\t5919", false, privacy.RuleNHSNumber},
		{"SW1A\u00a01AA", false, privacy.RulePostcode},
		{"ＳＷ１Ａ １ＡＡ", false, privacy.RulePostcode},
		{"LS1\u30004AP", false, privacy.RulePostcode},
		{"jo.bloggs＠example.org", false, privacy.RuleEmail},
		{"jo.bloggs\ufe6bexample.org", false, privacy.RuleEmail},
		{"07700\u00a0900123", false, privacy.RulePhone},
		{"+44\u00a07700\u00a0900123", false, privacy.RulePhone},
		{"14\u00a0March\u00a01987", false, privacy.RuleDateOfBirth},
		{"1987\u201003\u201014", false, privacy.RuleDateOfBirth},
		// Dots, slashes and doubled separators between the groups.
		{"943.476.5919", false, privacy.RuleNHSNumber},
		{"943/476/5919", true, privacy.RuleNHSNumber},
		{"943  476  5919", false, privacy.RuleNHSNumber},
		{"943 - 476 - 5919", false, ""}, // three characters between groups: not a grouping
		{"SW1A-1AA", false, privacy.RulePostcode},
		// Excel's scientific notation of a 10-digit number.
		{"9.434765919E+09", false, privacy.RuleNHSNumber},
		{"9.434765919e9", false, privacy.RuleNHSNumber},
		{"9.434765919E+9", true, privacy.RuleNHSNumber},
		{"94.34765919E+08", false, privacy.RuleNHSNumber},
		{"4.47700900123E+11", false, privacy.RulePhone},
		{"9.434765918E+09", false, ""}, // fails the check
		{"9.434765919E+05", false, ""}, // not an integer
		{"1.5E+03", false, ""},
		// Country codes.
		{"447700900123", false, privacy.RulePhone},
		{"44 7700 900123", false, privacy.RulePhone},
		{"(+44)7700 900123", false, privacy.RulePhone},
		{"+44 0 7700 900123", false, privacy.RulePhone},
		{"0044 (0)7700 900123", false, privacy.RulePhone},
		{"442079460958", false, privacy.RulePhone},
		{"44000000000", false, ""},
		{"447700900123456", false, ""},
		// Compact and spaced dates in undeclared columns.
		{"19870314", false, privacy.RuleDateOfBirth},
		{"14031987", false, privacy.RuleDateOfBirth},
		{"dob:19870314", false, privacy.RuleDateOfBirth},
		{"19870314.0", false, privacy.RuleDateOfBirth},
		{"14 03 1987", false, privacy.RuleDateOfBirth},
		{"14.03.1987", false, privacy.RuleDateOfBirth},
		{"19870314", true, ""}, // a declared date column with a compact layout
		{"20190131", true, ""},
		{"14 03 1987", true, ""},
		{"P19870314", false, ""},     // part of an identifier
		{"HPFT-19870314", false, ""}, // part of an identifier
		{"19871314", false, ""},      // month 13
		{"12345678", false, ""},
		{"3 4 12", false, ""}, // spaced small numbers are no date
	})
}

func TestCheckCellCleanValuesUnicode(t *testing.T) {
	for _, s := range []string{
		"Not stated – declined", "café – ok", "non\u00a0binary", "rater\u00a012", "2018\u00a0–\u00a02019",
		"Month\u00a03", "P000123456", "HPFT-P-0001234", "P20190131", "20190131-x", "1E10", "version 1.2E3b",
	} {
		if rule, ok := privacy.CheckCell(s, false); ok {
			t.Errorf("CheckCell(%q) = %q; want no rule", s, rule)
		}
	}
}

// A header cell is data too: an identifier in one quarantines the file
// under its own rule, the message naming the column, never the value.
func TestMapHeaderGuardsHeaderCells(t *testing.T) {
	env := ingestTestEnv(t)
	canon := ingest.FieldNames(env.Study.ExportFields(schemas.KindParticipants))
	for _, tc := range []struct {
		cell string
		want privacy.PrivacyRule
	}{
		{"jo.bloggs@example.org", privacy.RuleEmail},
		{"notes (jo.bloggs@example.org)", privacy.RuleEmail},
		{"943\u00a0476\u00a05919", privacy.RuleNHSNumber},
		{"SW1A 1AA", privacy.RulePostcode},
		{"07700 900123", privacy.RulePhone},
		{"19870314", privacy.RuleDateOfBirth},
	} {
		cells := append(slices.Clone(canon), tc.cell)
		for _, canonical := range []bool{true, false} {
			_, probs, q := ingest.MapHeader(env.Study, env.Study.Sites["TEWV"], canonical, cells)
			if want := warehouse.QuarantinePrivacy + string(tc.want); q != want {
				t.Errorf("header %q (canonical %v): quarantine %q, want %q", tc.cell, canonical, q, want)
				continue
			}
			last := probs[len(probs)-1]
			if last.Column != fmt.Sprintf("column %d", len(cells)) {
				t.Errorf("header %q: column %q", tc.cell, last.Column)
			}
			if strings.Contains(last.Message, tc.cell) || strings.Contains(last.Column, tc.cell) {
				t.Errorf("header %q echoed: %q", tc.cell, last.Message)
			}
		}
	}
	// The headers of every site's dialect and the canonical ones pass.
	for code, site := range env.Study.Sites {
		for alias := range site.Headers {
			if rule, ok := privacy.CheckCell(alias, false); ok {
				t.Errorf("site %s header %q: %s", code, alias, rule)
			}
		}
	}
	if _, _, q := ingest.MapHeader(env.Study, nil, true, canon); q != "" {
		t.Errorf("canonical header quarantined: %s", q)
	}
}

// A numeric pseudonym that reads as a compact date is a pseudonym; the same
// digits in a column the study does not know are a likely date of birth.
func TestRowPrivacyCompactDates(t *testing.T) {
	env := ingestTestEnv(t)
	names := append(ingest.FieldNames(env.Study.ExportFields(schemas.KindParticipants)), "notes")
	h, _, q := ingest.MapHeader(env.Study, nil, false, names)
	if q != "" {
		t.Fatal(q)
	}
	rc := ingest.NewRowChecker(env.Study, nil, false, "TEWV", time.Time{}, h)
	row := func(set map[string]string) []string {
		r := ingestTestRow("P00001", "TEWV-01", "baseline", "2018-03-01", set)
		cells := make([]string, len(names))
		for i, n := range names {
			cells[i] = r[n]
		}
		return cells
	}
	for _, tc := range []struct {
		set  map[string]string
		col  string
		want privacy.PrivacyRule
	}{
		{map[string]string{"participant_id": "20000131"}, "", ""},
		{map[string]string{"participant_id": "19870314", "interview_date": "20180301"}, "", ""},
		{map[string]string{"notes": "19870314"}, "notes", privacy.RuleDateOfBirth},
		{map[string]string{"gender": "19870314"}, "gender", privacy.RuleDateOfBirth},
		{map[string]string{"participant_id": "14/03/1987"}, "participant_id", privacy.RuleDateOfBirth},
		{map[string]string{"participant_id": "9434765919"}, "participant_id", privacy.RuleNHSNumber},
	} {
		col, rule, bad := rc.Privacy(row(tc.set), 2, nil)
		if bad != (tc.want != "") || rule != tc.want || (bad && names[col] != tc.col) {
			t.Errorf("%v: column %d rule %q %v; want %s in %s", tc.set, col, rule, bad, tc.want, tc.col)
		}
	}
}
