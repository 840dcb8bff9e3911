package privacy

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// PrivacyRule names a rule of the privacy guard (DESIGN §6). A file that
// breaks one is quarantined; the problem list names the column and the
// rule, never the value.
type PrivacyRule string

// The privacy guard's rules. The strings are stable: they appear in
// quarantine codes (privacy_<rule>) and problem lists.
const (
	RuleNHSNumber         PrivacyRule = "nhs_number"         // a 10-digit number passing the NHS modulus-11 check
	RulePostcode          PrivacyRule = "postcode"           // a full UK postcode
	RuleEmail             PrivacyRule = "email"              // an e-mail address
	RulePhone             PrivacyRule = "phone"              // a UK telephone number
	RuleDateOfBirth       PrivacyRule = "date_of_birth"      // a full date outside a declared date column
	RuleIdentifyingHeader PrivacyRule = "identifying_header" // a header naming a person or an identifier
)

// CheckHeader reports whether an export header names a person or an
// identifier. The header is split into lower-case words on anything not an
// ASCII letter or digit and at camelCase and letter–digit boundaries
// ("PatientDOB" → patient, dob); it is flagged when a word is or contains
// a name word (name, forename, surname, "first/last/full name", and any word
// ending in "name" such as teamname: the caller only asks about headers not
// mapped to a known column), an address, a birth (dob, birth, date of
// birth), nhs (nhs, nhs number, nhsno), postcode, e-mail, phone, tel,
// mobile or initials; or when it is spelt out in single letters (D.O.B.).
// The rule returned is always RuleIdentifyingHeader.
func CheckHeader(header string) (PrivacyRule, bool) {
	words := headerWords(header)
	initials := len(words) > 1
	var letters strings.Builder
	for _, w := range words {
		if identifyingWord(w) {
			return RuleIdentifyingHeader, true
		}
		if len(w) != 1 {
			initials = false
		} else {
			letters.WriteString(w)
		}
	}
	if initials && identifyingWord(letters.String()) {
		return RuleIdentifyingHeader, true
	}
	return "", false
}

func identifyingWord(w string) bool {
	switch w {
	case "dob", "addr", "nhs", "tel", "mail", "mobile", "initials", "forename", "forenames":
		return true
	}
	if strings.HasSuffix(w, "name") || strings.HasSuffix(w, "names") || strings.HasPrefix(w, "nhs") {
		return true
	}
	for _, part := range [...]string{"birth", "address", "postcode", "email", "phone"} {
		if strings.Contains(w, part) {
			return true
		}
	}
	return false
}

// headerWords splits a header into lower-case ASCII words (see CheckHeader).
func headerWords(h string) []string {
	var words []string
	start := -1
	kind := func(c byte) int { // 0 other, 1 lower, 2 upper, 3 digit
		switch {
		case c >= 'a' && c <= 'z':
			return 1
		case c >= 'A' && c <= 'Z':
			return 2
		case c >= '0' && c <= '9':
			return 3
		}
		return 0
	}
	flush := func(end int) {
		if start >= 0 && end > start {
			words = append(words, strings.ToLower(h[start:end]))
		}
		start = -1
	}
	for i := 0; i < len(h); i++ {
		k := kind(h[i])
		if k == 0 {
			flush(i)
			continue
		}
		if start < 0 {
			start = i
			continue
		}
		p := kind(h[i-1])
		switch {
		case p == 1 && k == 2, // fooBar
			(p == 3) != (k == 3), // foo2, 2foo
			p == 2 && k == 2 && i+1 < len(h) && kind(h[i+1]) == 1: // NHSNumber
			flush(i)
			start = i
		}
	}
	flush(len(h))
	return words
}

// CheckCell reports the first privacy rule a cell breaks, in the order
// nhs_number, postcode, email, phone, date_of_birth. dateColumn says the
// study declares the cell's column as a date: then full dates are allowed
// (the other rules still apply).
//
// Text is normalised before matching (see normaliseCell) when the cell holds
// anything but printable ASCII, or a number in Excel's scientific notation:
// Unicode spaces (a no-break space) and line breaks become spaces, Unicode
// dashes and minus signs hyphens, invisible format characters (a zero-width
// space, a soft hyphen) are dropped, full-width and other forms fold to
// ASCII (NFKC), digits of other scripts become ASCII digits, and an integer
// in scientific notation ("9.434765919E+09") is written out in full.
//
// What each rule catches:
//   - nhs_number: 10 digits passing ValidNHSNumber, written together or in
//     3-3-4 groups split by one or two spaces, hyphens, dots or slashes, as
//     the whole cell or bounded by non-digits inside text. Ten equal digits
//     (placeholders such as 0000000000, which pass the check) are not
//     caught, nor a 10-digit number that fails the check.
//   - postcode: a full UK postcode (outward code of a real postcode area,
//     inward code 9AA), with or without one or two spaces, hyphens or dots
//     between the halves, any case, as whole words. An outward code alone
//     ("LS1") is not caught.
//   - email: local@domain.tld.
//   - phone: 11 digits starting 0[1-9], or +44, 0044 or a bare 44 then 10
//     digits (an optional "(0)" or "0" between; a bare 44 must be followed
//     by 1, 2, 3 or 7: geographic, non-geographic and mobile numbers), with
//     spaces, hyphens, dots or brackets between digits; never a bare
//     10-digit run.
//   - date_of_birth: day, month and year — dd/mm/yyyy, d/m/yy, yyyy-mm-dd,
//     dd-mm-yyyy, dd.mm.yyyy (either day–month order), "14 03 1987" (spaces
//     only with a 4-digit year), compact yyyymmdd and ddmmyyyy (years
//     1900–2099, not touching a letter, digit, hyphen or underscore, so an
//     identifier such as P19870314 is not a date), "14 March 1987",
//     "14 Mar 1987", "14-Mar-87", "March 14, 1987".
//
// A short cell (under 5 bytes: every 1–3 digit integer, most codes) returns
// at once. A cell of printable ASCII without scientific notation is matched
// as it is, without allocating; only a cell that needs normalising is
// copied.
func CheckCell(value string, dateColumn bool) (PrivacyRule, bool) {
	return CheckCellColumn(value, dateColumn, false)
}

// checkCell is CheckCell; idColumn says the column is a declared pseudonym
// (participant_id, rater_id), where eight digits that read as a compact
// date (a numeric pseudonym such as 20000131) are not taken for a date of
// birth. Every other rule applies there.
func CheckCellColumn(value string, dateColumn, idColumn bool) (PrivacyRule, bool) {
	n := len(value)
	if n < 5 { // the shortest catch is 5 bytes: M11AE
		return "", false
	}
	// The counting loop of scanCell, kept here: it runs on every cell.
	var st cellStats
	for i := 0; i < n; i++ {
		c := value[i]
		switch {
		case c-'0' < 10:
			st.digits++
		case (c|0x20)-'a' < 26:
			st.letters++
			if c|0x20 == 'e' && i > 0 && isDigit(value[i-1]) && i+1 < n && (isDigit(value[i+1]) || value[i+1] == '+') {
				return checkNormalised(value, dateColumn, idColumn)
			}
		case c == '/' || c == '-' || c == '.':
			st.seps++
		case c == ' ':
			st.spaces++
		case c == '@':
			st.at = true
		case c < ' ' || c >= 0x7f:
			return checkNormalised(value, dateColumn, idColumn)
		}
	}
	return st.check(value, dateColumn, idColumn)
}

// checkNormalised is checkCell for a cell that needs normalising.
func checkNormalised(value string, dateColumn, idColumn bool) (PrivacyRule, bool) {
	value = NormaliseCell(value)
	if len(value) < 5 {
		return "", false
	}
	return scanCell(value).check(value, dateColumn, idColumn)
}

// cellStats counts a cell's character classes, so that a rule is only
// looked for when the cell could hold it.
type cellStats struct {
	digits, letters, seps, spaces int
	at                            bool
}

// scanCell counts the characters of s, as CheckCell does.
func scanCell(s string) (st cellStats) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c-'0' < 10:
			st.digits++
		case (c|0x20)-'a' < 26:
			st.letters++
		case c == '/' || c == '-' || c == '.':
			st.seps++
		case c == ' ':
			st.spaces++
		case c == '@':
			st.at = true
		}
	}
	return st
}

// check runs the rules over normalised text.
func (st cellStats) check(value string, dateColumn, idColumn bool) (PrivacyRule, bool) {
	if st.digits >= 10 && hasNHSNumber(value) {
		return RuleNHSNumber, true
	}
	if st.digits >= 1 && st.letters >= 3 && hasPostcode(value) {
		return RulePostcode, true
	}
	if st.at && hasEmail(value) {
		return RuleEmail, true
	}
	if st.digits >= 11 && hasPhone(value) {
		return RulePhone, true
	}
	if !dateColumn && st.digits >= 3 {
		if st.digits >= 4 && (st.seps >= 2 || (st.spaces >= 2 && st.digits >= 6)) && hasNumericDate(value) {
			return RuleDateOfBirth, true
		}
		if st.digits >= 8 && !idColumn && hasCompactDate(value) {
			return RuleDateOfBirth, true
		}
		if st.letters >= 3 && hasTextDate(value) {
			return RuleDateOfBirth, true
		}
	}
	return "", false
}

// NormaliseCell rewrites a cell for matching (see CheckCell): NFKC, then
// Unicode spaces and control characters to ' ', dashes to '-', format
// characters dropped, decimal digits of any script to ASCII, a few dot,
// slash and at-sign look-alikes to ASCII; then integers in scientific
// notation written out. It returns s itself when nothing changes.
func NormaliseCell(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] >= 0x7f {
			ascii = false
			break
		}
	}
	if !ascii {
		s = norm.NFKC.String(s)
		var b strings.Builder
		b.Grow(len(s))
		for _, r := range s {
			switch {
			case r < ' ' || r == 0x7f:
				b.WriteByte(' ')
			case r < 0x80:
				b.WriteRune(r)
			case unicode.Is(unicode.Zs, r):
				b.WriteByte(' ')
			case unicode.Is(unicode.Pd, r), r == '\u2212', r == '\u2043', r == '\u02d7':
				b.WriteByte('-')
			case unicode.Is(unicode.Cf, r):
			case unicode.Is(unicode.Nd, r):
				b.WriteByte('0' + byte(digitValue(r)))
			case r == '\u00b7', r == '\u2027', r == '\u2219', r == '\u3002':
				b.WriteByte('.')
			case r == '\u2044', r == '\u2215':
				b.WriteByte('/')
			case r == '\ufe6b':
				b.WriteByte('@')
			default:
				b.WriteRune(r)
			}
		}
		s = b.String()
	}
	return expandScientific(s)
}

// digitValue is the value of a decimal digit of any script: Unicode lays
// out every script's digits as runs of ten from zero.
func digitValue(r rune) int {
	for _, rg := range unicode.Nd.R16 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	return 0
}

// expandScientific writes out each integer in scientific notation, as
// Excel shows a long number ("9.434765919E+09" → "9434765919"): a mantissa
// of 1–15 digits with an optional fraction, E or e, an optional plus and
// a 1–2 digit exponent at least the fraction's length, with no letter,
// digit or dot touching it, and at most 20 digits written out. Anything
// else is left as it is.
func expandScientific(s string) string {
	var b []byte
	last := 0
	for k := 1; k+1 < len(s); k++ {
		if s[k]|0x20 != 'e' || !isDigit(s[k-1]) {
			continue
		}
		// Mantissa: digits [. digits] ending at k.
		f := k
		for f > 0 && isDigit(s[f-1]) {
			f--
		}
		frac := ""
		m := f
		if f > 1 && s[f-1] == '.' && isDigit(s[f-2]) {
			frac = s[f:k]
			m = f - 1
			for m > 0 && isDigit(s[m-1]) {
				m--
			}
		}
		intPart := s[m:k]
		if frac != "" {
			intPart = s[m : f-1]
		}
		if m > 0 && (isAlnum(s[m-1]) || s[m-1] == '.') {
			continue
		}
		// Exponent.
		e := k + 1
		if s[e] == '+' {
			e++
		}
		x := digitRun(s, e)
		if x == e || x-e > 2 || (x < len(s) && (isAlnum(s[x]) || (s[x] == '.' && x+1 < len(s) && isDigit(s[x+1])))) {
			continue
		}
		exp := atoi2(s[e:x])
		if len(intPart) > 15 || exp < len(frac) || len(intPart)+exp > 20 {
			continue
		}
		b = append(b, s[last:m]...)
		b = append(b, intPart...)
		b = append(b, frac...)
		for z := len(frac); z < exp; z++ {
			b = append(b, '0')
		}
		last = x
		k = x
	}
	if b == nil {
		return s
	}
	return string(append(b, s[last:]...))
}

// ValidNHSNumber reports whether digits is exactly ten ASCII digits whose
// last is the NHS modulus-11 check digit of the first nine: weights 10
// down to 2, check = 11 − (sum mod 11), where 11 means 0 and 10 means the
// number is invalid (NHS Digital, "NHS number" data dictionary). Scottish
// CHI numbers use the same check and pass too.
func ValidNHSNumber(digits string) bool {
	if len(digits) != 10 {
		return false
	}
	var d [10]byte
	for i := 0; i < 10; i++ {
		c := digits[i] - '0'
		if c > 9 {
			return false
		}
		d[i] = c
	}
	return nhsCheck(&d)
}

func nhsCheck(d *[10]byte) bool {
	sum := 0
	for i := 0; i < 9; i++ {
		sum += int(d[i]) * (10 - i)
	}
	check := 11 - sum%11
	if check == 11 {
		check = 0
	}
	return check != 10 && check == int(d[9])
}

func isDigit(c byte) bool { return c-'0' < 10 }

func isAlnum(c byte) bool { return c-'0' < 10 || (c|0x20)-'a' < 26 }

// digitRun returns the end of the run of digits starting at i.
func digitRun(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// hasNHSNumber looks for a valid NHS number bounded by non-digits.
func hasNHSNumber(s string) bool {
	var d [10]byte
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		e := digitRun(s, i)
		switch e - i {
		case 10:
			for k := 0; k < 10; k++ {
				d[k] = s[i+k] - '0'
			}
			if nhsCheck(&d) && !repDigits(&d) {
				return true
			}
		case 3:
			// 3-3-4, the groups split by one or two separators.
			g2 := nhsSep(s, e)
			if g2 < 0 || digitRun(s, g2) != g2+3 {
				break
			}
			g3 := nhsSep(s, g2+3)
			if g3 < 0 || digitRun(s, g3) != g3+4 {
				break
			}
			copy(d[:3], s[i:i+3])
			copy(d[3:6], s[g2:g2+3])
			copy(d[6:], s[g3:g3+4])
			for k := range d {
				d[k] -= '0'
			}
			if nhsCheck(&d) && !repDigits(&d) {
				return true
			}
		}
		i = e
	}
	return false
}

// nhsSep returns where the digits resume after one or two of space,
// hyphen, dot or slash at s[i:], or -1.
func nhsSep(s string, i int) int {
	j := i
	for j < len(s) && j-i < 2 && isGroupSep(s[j]) {
		j++
	}
	if j == i || j >= len(s) || !isDigit(s[j]) {
		return -1
	}
	return j
}

func isGroupSep(c byte) bool { return c == ' ' || c == '-' || c == '.' || c == '/' }

func repDigits(d *[10]byte) bool {
	for k := 1; k < 10; k++ {
		if d[k] != d[0] {
			return false
		}
	}
	return true
}

// hasPostcode looks for a full UK postcode as whole words.
func hasPostcode(s string) bool {
	for i := 0; i < len(s); {
		if !isAlnum(s[i]) {
			i++
			continue
		}
		e := i
		for e < len(s) && isAlnum(s[e]) {
			e++
		}
		w := s[i:e]
		if len(w) >= 5 && len(w) <= 7 && isOutward(w[:len(w)-3]) && isInward(w[len(w)-3:]) {
			return true
		}
		if len(w) >= 2 && len(w) <= 4 && isOutward(w) {
			// Then one or two spaces, hyphens or dots and a 3-character word.
			j := e
			for j < len(s) && j-e < 2 && (s[j] == ' ' || s[j] == '-' || s[j] == '.') {
				j++
			}
			if j > e && j+3 <= len(s) && (j+3 == len(s) || !isAlnum(s[j+3])) && isInward(s[j:j+3]) {
				return true
			}
		}
		i = e
	}
	return false
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 32
	}
	return c
}

func isLetter(c byte) bool { return (c|0x20)-'a' < 26 }

// isOutward reports whether w is an outward code: A9, A99, AA9, AA99, A9A,
// AA9A, whose letters before the first digit are a postcode area.
func isOutward(w string) bool {
	if len(w) < 2 || len(w) > 4 {
		return false
	}
	if len(w) == 3 && upper(w[0]) == 'G' && upper(w[1]) == 'I' && upper(w[2]) == 'R' {
		return true // GIR 0AA
	}
	a := 0
	for a < len(w) && isLetter(w[a]) {
		a++
	}
	if a == 0 || a > 2 || !postcodeArea(w[:a]) {
		return false
	}
	rest := w[a:]
	switch len(rest) {
	case 1:
		return isDigit(rest[0])
	case 2:
		return isDigit(rest[0]) && (isDigit(rest[1]) || isLetter(rest[1]))
	}
	return false
}

// isInward reports whether w is an inward code: a digit and two letters of
// those used (not C, I, K, M, O, V).
func isInward(w string) bool {
	if len(w) != 3 || !isDigit(w[0]) {
		return false
	}
	for _, c := range [2]byte{upper(w[1]), upper(w[2])} {
		switch c {
		case 'A', 'B', 'D', 'E', 'F', 'G', 'H', 'J', 'L', 'N', 'P', 'Q', 'R', 'S', 'T', 'U', 'W', 'X', 'Y', 'Z':
		default:
			return false
		}
	}
	return true
}

// postcodeArea reports whether a (1 or 2 letters, any case) is one of the
// UK's 121 postcode areas or GY, JE, IM, BF, BX.
func postcodeArea(a string) bool {
	if len(a) == 1 {
		switch upper(a[0]) {
		case 'B', 'E', 'G', 'L', 'M', 'N', 'S', 'W':
			return true
		}
		return false
	}
	k := uint16(upper(a[0]))<<8 | uint16(upper(a[1]))
	switch k {
	case pa("AB"), pa("AL"), pa("BA"), pa("BB"), pa("BD"), pa("BF"), pa("BH"), pa("BL"), pa("BN"), pa("BR"),
		pa("BS"), pa("BT"), pa("BX"), pa("CA"), pa("CB"), pa("CF"), pa("CH"), pa("CM"), pa("CO"), pa("CR"),
		pa("CT"), pa("CV"), pa("CW"), pa("DA"), pa("DD"), pa("DE"), pa("DG"), pa("DH"), pa("DL"), pa("DN"),
		pa("DT"), pa("DY"), pa("EC"), pa("EH"), pa("EN"), pa("EX"), pa("FK"), pa("FY"), pa("GL"), pa("GU"),
		pa("GY"), pa("HA"), pa("HD"), pa("HG"), pa("HP"), pa("HR"), pa("HS"), pa("HU"), pa("HX"), pa("IG"),
		pa("IM"), pa("IP"), pa("IV"), pa("JE"), pa("KA"), pa("KT"), pa("KW"), pa("KY"), pa("LA"), pa("LD"),
		pa("LE"), pa("LL"), pa("LN"), pa("LS"), pa("LU"), pa("ME"), pa("MK"), pa("ML"), pa("NE"), pa("NG"),
		pa("NN"), pa("NP"), pa("NR"), pa("NW"), pa("OL"), pa("OX"), pa("PA"), pa("PE"), pa("PH"), pa("PL"),
		pa("PO"), pa("PR"), pa("RG"), pa("RH"), pa("RM"), pa("SA"), pa("SE"), pa("SG"), pa("SK"), pa("SL"),
		pa("SM"), pa("SN"), pa("SO"), pa("SP"), pa("SR"), pa("SS"), pa("ST"), pa("SW"), pa("SY"), pa("TA"),
		pa("TD"), pa("TF"), pa("TN"), pa("TQ"), pa("TR"), pa("TS"), pa("TW"), pa("UB"), pa("WA"), pa("WC"),
		pa("WD"), pa("WF"), pa("WN"), pa("WR"), pa("WS"), pa("WV"), pa("YO"), pa("ZE"):
		return true
	}
	return false
}

func pa(s string) uint16 { return uint16(s[0])<<8 | uint16(s[1]) }

// hasEmail looks for local@domain.tld around each '@'.
func hasEmail(s string) bool {
	for k := strings.IndexByte(s, '@'); k >= 0; {
		if k > 0 && isEmailLocal(s[k-1]) && emailDomain(s[k+1:]) {
			return true
		}
		next := strings.IndexByte(s[k+1:], '@')
		if next < 0 {
			break
		}
		k += 1 + next
	}
	return false
}

func isEmailLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c == '\''
}

// emailDomain reports whether s starts with two or more dot-separated labels,
// the last at least two letters.
func emailDomain(s string) bool {
	labels, i := 0, 0
	lastAlpha, lastLen := false, 0
	for {
		j := i
		alpha := true
		for j < len(s) && (isAlnum(s[j]) || s[j] == '-') {
			if !isLetter(s[j]) {
				alpha = false
			}
			j++
		}
		if j == i {
			break
		}
		labels++
		lastAlpha, lastLen = alpha, j-i
		if j+1 < len(s) && s[j] == '.' && isAlnum(s[j+1]) {
			i = j + 1
			continue
		}
		break
	}
	return labels >= 2 && lastAlpha && lastLen >= 2
}

func isPhoneSep(c byte) bool { return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' }

// phoneDigits collects want digits from s[i:], allowing at most two
// separators in a row between them, and reports whether it got them with no
// digit straight after. first is the first digit collected.
func phoneDigits(s string, i, want int) (first byte, ok bool) {
	got, gap := 0, 0
	for i < len(s) && got < want {
		c := s[i]
		switch {
		case isDigit(c):
			if got == 0 {
				first = c
			}
			got++
			gap = 0
		case isPhoneSep(c) && got > 0 && gap < 2:
			gap++
		default:
			return 0, false
		}
		i++
	}
	if got < want || (i < len(s) && isDigit(s[i])) {
		return 0, false
	}
	return first, true
}

// hasPhone looks for a UK telephone number.
func hasPhone(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i > 0 && isDigit(s[i-1]) {
			continue
		}
		rest, bare := -1, false
		switch {
		case c == '+' && strings.HasPrefix(s[i+1:], "44"):
			rest = i + 3
		case c == '0' && strings.HasPrefix(s[i+1:], "044"):
			rest = i + 4
		case c == '4' && i+1 < len(s) && s[i+1] == '4':
			rest, bare = i+2, true
		case c == '0':
			if first, ok := phoneDigits(s, i, 11); ok && first == '0' {
				// The second digit must be 1-9: find it.
				j := i + 1
				for j < len(s) && !isDigit(s[j]) {
					j++
				}
				if j < len(s) && s[j] != '0' {
					return true
				}
			}
			continue
		default:
			continue
		}
		// After +44, 0044 or 44: separators, an optional (0) or 0, then 10
		// digits.
		j := skipPhoneSeps(s, rest, 2)
		switch {
		case strings.HasPrefix(s[j:], "(0)"):
			j = skipPhoneSeps(s, j+3, 2)
		case j+1 < len(s) && s[j] == '0' && s[j+1] != '0':
			j = skipPhoneSeps(s, j+1, 2)
		}
		if j >= len(s) || s[j] < '1' || s[j] > '9' {
			continue
		}
		if bare && s[j] != '1' && s[j] != '2' && s[j] != '3' && s[j] != '7' {
			continue
		}
		if _, ok := phoneDigits(s, j, 10); ok {
			return true
		}
	}
	return false
}

// skipPhoneSeps skips up to max spaces, hyphens, dots and closing brackets.
func skipPhoneSeps(s string, i, max int) int {
	j := i
	for j < len(s) && j-i < max && (s[j] == ' ' || s[j] == '-' || s[j] == '.' || s[j] == ')') {
		j++
	}
	return j
}

// hasNumericDate looks for d/m/y, m/d/y or y/m/d with one separator
// ('/', '-', '.', or a space when the year has four digits) used twice,
// bounded by non-digits.
func hasNumericDate(s string) bool {
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		e1 := digitRun(s, i)
		a := s[i:e1]
		if e1+1 < len(s) && (s[e1] == '/' || s[e1] == '-' || s[e1] == '.' || s[e1] == ' ') && isDigit(s[e1+1]) {
			sep := s[e1]
			e2 := digitRun(s, e1+1)
			b := s[e1+1 : e2]
			if e2+1 < len(s) && s[e2] == sep && isDigit(s[e2+1]) {
				e3 := digitRun(s, e2+1)
				c := s[e2+1 : e3]
				if isDMY(a, b, c) && (sep != ' ' || len(a) == 4 || len(c) == 4) {
					return true
				}
			}
		}
		i = e1
	}
	return false
}

// hasCompactDate looks for yyyymmdd or ddmmyyyy, years 1900–2099: eight
// digits touching no letter, digit, hyphen or underscore (which would make
// them part of an identifier).
func hasCompactDate(s string) bool {
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		e := digitRun(s, i)
		if e-i == 8 && (i == 0 || !idChar(s[i-1])) && (e == len(s) || !idChar(s[e])) {
			d := s[i:e]
			if isCompactYear(d[:4]) && isMonthDay(d[4:6], d[6:]) || isCompactYear(d[4:]) && isMonthDay(d[2:4], d[:2]) {
				return true
			}
		}
		i = e
	}
	return false
}

func idChar(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

func isCompactYear(s string) bool {
	y := atoi2(s)
	return y >= 1900 && y <= 2099
}

func isMonthDay(m, d string) bool {
	mm, dd := atoi2(m), atoi2(d)
	return mm >= 1 && mm <= 12 && dd >= 1 && dd <= 31
}

func atoi2(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func isYear4(s string) bool {
	y := atoi2(s)
	return len(s) == 4 && y >= 1800 && y <= 2199
}

func isDMY(a, b, c string) bool {
	if len(a) == 4 { // yyyy-mm-dd
		if !isYear4(a) || len(b) > 2 || len(c) > 2 {
			return false
		}
		m, d := atoi2(b), atoi2(c)
		return m >= 1 && m <= 12 && d >= 1 && d <= 31
	}
	if len(a) > 2 || len(b) > 2 || !(len(c) == 2 || isYear4(c)) {
		return false
	}
	x, y := atoi2(a), atoi2(b)
	return (x >= 1 && x <= 31 && y >= 1 && y <= 12) || (x >= 1 && x <= 12 && y >= 1 && y <= 31)
}

// monthName reports whether w (letters, any case) names a month in full or
// in three letters (or "Sept").
func monthName(w string) bool {
	if len(w) < 3 || len(w) > 9 {
		return false
	}
	var buf [9]byte
	for i := 0; i < len(w); i++ {
		buf[i] = w[i] | 0x20
	}
	switch string(buf[:len(w)]) { // converted for the comparison only: no allocation

	case "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
		"january", "february", "march", "april", "june", "july", "august", "september", "october",
		"november", "december":
		return true
	}
	return false
}

func isDateSep(c byte) bool { return c == ' ' || c == '-' || c == '/' || c == '.' || c == ',' }

// hasTextDate looks for "14 March 1987", "14th Mar 87", "14-Mar-1987" and
// "March 14, 1987".
func hasTextDate(s string) bool {
	for i := 0; i < len(s); {
		if !isLetter(s[i]) {
			i++
			continue
		}
		e := i
		for e < len(s) && isLetter(s[e]) {
			e++
		}
		if !monthName(s[i:e]) {
			i = e
			continue
		}
		// Day before: digits [ordinal] seps month.
		j := i
		for j > 0 && i-j < 2 && isDateSep(s[j-1]) {
			j--
		}
		if j < i {
			k := j
			if k >= 2 && isOrdinal(s[k-2:k]) {
				k -= 2
			}
			ds := k
			for ds > 0 && isDigit(s[ds-1]) {
				ds--
			}
			if isDay(s[ds:k]) && (ds == 0 || !isAlnum(s[ds-1])) && yearAfter(s, e) {
				return true
			}
		}
		// Day after: month seps digits [ordinal] [,] seps year.
		k := e
		for k < len(s) && k-e < 2 && isDateSep(s[k]) {
			k++
		}
		if k > e {
			de := digitRun(s, k)
			if isDay(s[k:de]) {
				if de+2 <= len(s) && isOrdinal(s[de:de+2]) {
					de += 2
				}
				if yearAfter(s, de) {
					return true
				}
			}
		}
		i = e
	}
	return false
}

func isOrdinal(s string) bool {
	if len(s) != 2 {
		return false
	}
	a, b := s[0]|0x20, s[1]|0x20
	return (a == 's' && b == 't') || (a == 'n' && b == 'd') || (a == 'r' && b == 'd') || (a == 't' && b == 'h')
}

func isDay(s string) bool {
	if len(s) < 1 || len(s) > 2 {
		return false
	}
	d := atoi2(s)
	return d >= 1 && d <= 31
}

// yearAfter reports whether s[i:] is one or two separators, then a 2- or
// 4-digit year not followed by a digit.
func yearAfter(s string, i int) bool {
	j := i
	for j < len(s) && j-i < 2 && isDateSep(s[j]) {
		j++
	}
	if j == i {
		return false
	}
	e := digitRun(s, j)
	return e-j == 2 || (e-j == 4 && isYear4(s[j:e]))
}
