package ingest

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/connectingpeople/cpi/pipeline/ingest/privacy"
	"github.com/connectingpeople/cpi/pipeline/ingest/readers"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// Row reject codes: stable, documented in README.md. A rejected row is
// written to the rejects table with its line, column and code.
const (
	CodeRaggedRow     = "ragged_row"               // more or fewer cells than the header
	CodeBlankRow      = "blank_row"                // every cell blank
	CodeMissingValue  = "missing_value"            // a required cell is blank
	CodeBadID         = "bad_id"                   // a pseudonym not 3–32 of A-Z a-z 0-9 - _
	CodeUnknownTeam   = "unknown_team"             // a team the study does not have
	CodeWrongTrust    = "wrong_trust"              // a team of another trust than the file's
	CodeBadCode       = "bad_code"                 // a value not in the column's code list
	CodeNotInteger    = "not_integer"              // an integer column holds something else
	CodeOutOfRange    = "out_of_range"             // an integer outside the column's range
	CodeBadDate       = "bad_date"                 // not a date in the site's declared layout
	CodeFutureDate    = "future_date"              // a date after the export date
	CodeDateMissing   = "date_missing"             // answers without an interview or rating date
	CodeNotAsked      = "not_asked"                // an answer to an instrument not asked at this wave
	CodeDuplicateKey  = "duplicate_key"            // the same participant × wave (or team × period × rater) twice
	CodeFollowupEarly = "followup_before_baseline" // a follow-up dated before the baseline
	CodeTeamChanged   = "team_changed"             // a later wave names another team than the baseline
	CodeFormula       = "formula"                  // a spreadsheet formula (=, @, +/- text): never loaded
	CodeBadCharacter  = "bad_character"            // control characters or a byte order mark inside a cell
)

// Warning codes: the row is kept, the problem listed.
const (
	WarnUnknownColumn = "unknown_column" // a column the study does not know: not loaded
	WarnMissingColumn = "missing_column" // a canonical column absent from the file: its values are blank
)

// Severities in the problem list.
const (
	SeverityError      = "error"      // the row was rejected
	SeverityWarning    = "warning"    // the row was kept
	SeverityQuarantine = "quarantine" // the whole file was set aside
)

// Problem is one entry of a problem list: where, which rule, and a message
// that never repeats the value found.
type Problem struct {
	File     string
	Line     int
	Column   string
	Code     string
	Severity string
	Message  string
}

const NullInt = math.MinInt32

// header maps an export's columns onto the canonical fields of a kind.
type header struct {
	kind   string
	fields []schemas.Field
	pos    []int // pos[field] = column in the export, -1 when absent
	names  []string
}

// MapHeader finds the kind of an export from its (site-aliased) header and
// where each canonical field is. It returns the problems it found: unknown
// columns (warnings), and header cells that hold an identifier (CheckCell,
// as if in an undeclared column) or name one (CheckHeader): a privacy
// quarantine.
func MapHeader(study *schemas.Study, site *schemas.Site, canonical bool, cells []string) (*header, []Problem, string) {
	canon := make([]string, len(cells))
	for i, c := range cells {
		name := c
		if !canonical && site != nil {
			if alias, ok := site.Headers[c]; ok {
				name = alias
			}
		}
		canon[i] = name
	}
	kind := ""
	switch {
	case slices.Contains(canon, "participant_id") && slices.Contains(canon, "wave"):
		kind = schemas.KindParticipants
	case slices.Contains(canon, "period") && slices.Contains(canon, "rater_id"):
		kind = schemas.KindFidelity
	}
	var problems []Problem
	for i, c := range cells {
		// A header may carry personal data as any cell may.
		if rule, bad := privacy.CheckCell(c, false); bad {
			return nil, []Problem{{Line: 1, Column: fmt.Sprintf("column %d", i+1), Code: warehouse.QuarantinePrivacy + string(rule), Severity: SeverityQuarantine,
				Message: fmt.Sprintf("column %d's header looks like a direct identifier (%s): exports must be anonymised", i+1, rule)}}, warehouse.QuarantinePrivacy + string(rule)
		}
	}
	for i, c := range cells {
		if kind == "" || !isField(study, kind, canon[i]) {
			if rule, bad := privacy.CheckHeader(c); bad {
				return nil, []Problem{{Line: 1, Column: fmt.Sprintf("column %d", i+1), Code: warehouse.QuarantinePrivacy + string(rule), Severity: SeverityQuarantine,
					Message: fmt.Sprintf("column %d's header names a person or an identifier (%s): exports must be anonymised", i+1, rule)}}, warehouse.QuarantinePrivacy + string(rule)
			}
		}
	}
	if kind == "" {
		return nil, []Problem{{Line: 1, Code: warehouse.QuarantineUnknownKind, Severity: SeverityQuarantine,
			Message: "the header is neither a participants export (participant_id, wave, …) nor a fidelity export (period, rater_id, …)"}}, warehouse.QuarantineUnknownKind
	}
	h := &header{kind: kind, fields: study.ExportFields(kind), names: canon}
	h.pos = make([]int, len(h.fields))
	for fi, f := range h.fields {
		h.pos[fi] = slices.Index(canon, f.Name)
	}
	for i := range canon {
		if !isField(study, kind, canon[i]) {
			problems = append(problems, Problem{Line: 1, Column: fmt.Sprintf("column %d", i+1), Code: WarnUnknownColumn, Severity: SeverityWarning,
				Message: fmt.Sprintf("column %d is not a column of the study: not loaded (its cells are still checked for identifiers)", i+1)})
		}
	}
	var missingRequired []string
	for fi, f := range h.fields {
		if h.pos[fi] >= 0 {
			continue
		}
		if f.Required {
			missingRequired = append(missingRequired, f.Name)
			continue
		}
		problems = append(problems, Problem{Line: 1, Column: f.Name, Code: WarnMissingColumn, Severity: SeverityWarning,
			Message: fmt.Sprintf("column %s is not in the file: its values are taken as blank", f.Name)})
	}
	if len(missingRequired) > 0 {
		return nil, append(problems, Problem{Line: 1, Column: strings.Join(missingRequired, " "), Code: warehouse.QuarantineMissingColumns, Severity: SeverityQuarantine,
			Message: "required columns are missing: " + strings.Join(missingRequired, ", ")}), warehouse.QuarantineMissingColumns
	}
	return h, problems, ""
}

func isField(study *schemas.Study, kind, name string) bool {
	for _, f := range study.ExportFields(kind) {
		if f.Name == name {
			return true
		}
	}
	return false
}

// rowChecker validates one export's rows after mapping: every rule of
// DESIGN §6 that concerns a single row. It holds no values beyond the row.
type rowChecker struct {
	study      *schemas.Study
	site       *schemas.Site
	canonical  bool
	trust      string
	exportDate time.Time // zero: no export date in the name
	h          *header
	dateCol    []bool // per export column: a declared date column
	intCol     []bool // per export column: an integer field of the study
	idCol      []bool // per export column: a pseudonym field (participant_id, rater_id)
	valueMaps  []map[string]string
}

func NewRowChecker(study *schemas.Study, site *schemas.Site, canonical bool, trust string, exportDate time.Time, h *header) *rowChecker {
	rc := &rowChecker{study: study, site: site, canonical: canonical, trust: trust, exportDate: exportDate, h: h}
	rc.dateCol = make([]bool, len(h.names))
	rc.intCol = make([]bool, len(h.names))
	rc.idCol = make([]bool, len(h.names))
	for i, n := range h.names {
		rc.dateCol[i] = slices.Contains(schemas.DateFields(), n)
		for _, f := range h.fields {
			if f.Name == n && f.Type == schemas.FieldInt {
				rc.intCol[i] = true
			}
			if f.Name == n && f.Type == schemas.FieldID {
				rc.idCol[i] = true
			}
		}
	}
	rc.valueMaps = make([]map[string]string, len(h.fields))
	if !canonical && site != nil {
		for fi, f := range h.fields {
			rc.valueMaps[fi] = site.ValueMap(f.Name)
		}
	}
	return rc
}

// dateFormatter is a reader that knows which cells are formatted as dates
// (a workbook's raw value of a date is a number).
type dateFormatter interface {
	DateFormatted(col, line int) bool
}

// Privacy checks every cell of a row, known or not, and returns the first
// column and rule broken (CheckCell; in a pseudonym column, eight digits
// that read as a compact date are a pseudonym). With a workbook, a number
// formatted as a date in a column that is neither a declared date nor an
// integer field counts as a full date (a likely date of birth).
func (rc *rowChecker) Privacy(cells []string, line int, df dateFormatter) (int, privacy.PrivacyRule, bool) {
	for i, c := range cells {
		date := i < len(rc.dateCol) && rc.dateCol[i]
		if rule, bad := privacy.CheckCellColumn(c, date, i < len(rc.idCol) && rc.idCol[i]); bad {
			return i, rule, true
		}
		if df != nil && !date && i < len(rc.intCol) && !rc.intCol[i] && c != "" && readers.IsSerial(c) && df.DateFormatted(i, line) {
			return i, privacy.RuleDateOfBirth, true
		}
	}
	return 0, "", false
}

// parsedRow is a row's canonical values: ints (nullInt for blank), codes and
// dates (days since 1970-01-01, nullInt for blank).
type parsedRow struct {
	line   int
	ints   []int32
	strs   []string
	errors []Problem
}

func (p *parsedRow) fail(col, code, msg string) {
	p.errors = append(p.errors, Problem{Line: p.line, Column: col, Code: code, Severity: SeverityError, Message: msg})
}

// trimSpace is strings.TrimSpace, without its work for the usual cell
// that starts and ends with a printable ASCII byte.
func trimSpace(s string) string {
	if s == "" || (s[0] > ' ' && s[0] < 0x80 && s[len(s)-1] > ' ' && s[len(s)-1] < 0x80) {
		return s
	}
	return strings.TrimSpace(s)
}

// parseInt32 is strconv.ParseInt(s, 10, 32) with a shortcut for one or
// two plain digits, most answers.
func parseInt32(s string) (int64, error) {
	switch {
	case len(s) == 1 && '0' <= s[0] && s[0] <= '9':
		return int64(s[0] - '0'), nil
	case len(s) == 2 && '1' <= s[0] && s[0] <= '9' && '0' <= s[1] && s[1] <= '9':
		return int64(s[0]-'0')*10 + int64(s[1]-'0'), nil
	}
	return strconv.ParseInt(s, 10, 32)
}

// check maps and validates one row into p (reused between rows).
func (rc *rowChecker) check(cells []string, line int, p *parsedRow) {
	p.line = line
	p.errors = p.errors[:0]
	n := len(rc.h.fields)
	if cap(p.ints) < n {
		p.ints = make([]int32, n)
		p.strs = make([]string, n)
	}
	p.ints, p.strs = p.ints[:n], p.strs[:n]
	for fi := range p.ints {
		p.ints[fi], p.strs[fi] = NullInt, ""
	}
	if len(cells) != len(rc.h.names) {
		p.fail("", CodeRaggedRow, fmt.Sprintf("the row has %d cells; the header has %d", len(cells), len(rc.h.names)))
		return
	}
	blank := true
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			blank = false
			break
		}
	}
	if blank {
		p.fail("", CodeBlankRow, "every cell of the row is blank")
		return
	}
	for fi := range rc.h.fields {
		f := &rc.h.fields[fi]
		pos := rc.h.pos[fi]
		if pos < 0 {
			continue
		}
		v := trimSpace(cells[pos])
		if m := rc.valueMaps[fi]; m != nil {
			if mapped, ok := m[v]; ok {
				v = mapped
			}
		}
		if v == "" {
			if f.Required {
				p.fail(f.Name, CodeMissingValue, f.Name+" is blank")
			}
			continue
		}
		if bad, code, msg := suspectCell(v, f); bad {
			p.fail(f.Name, code, msg)
			continue
		}
		switch f.Type {
		case schemas.FieldID:
			if !schemas.ValidParticipantID(v) {
				p.fail(f.Name, CodeBadID, f.Name+" must be 3 to 32 of A-Z a-z 0-9 - _")
				continue
			}
			p.strs[fi] = v
		case schemas.FieldCode:
			if f.Name == "team_code" {
				team, ok := rc.study.Team(v)
				if !ok {
					p.fail(f.Name, CodeUnknownTeam, "team_code is not a team of the study ("+strings.Join(rc.study.TeamCodes(), ", ")+")")
					continue
				}
				if team.Trust != rc.trust {
					p.fail(f.Name, CodeWrongTrust, "team_code is a team of another trust than "+rc.trust+", whose file this is")
					continue
				}
			} else if !slices.Contains(f.Codes, v) {
				p.fail(f.Name, CodeBadCode, f.Name+" must be one of "+strings.Join(f.Codes, ", "))
				continue
			}
			p.strs[fi] = v
		case schemas.FieldInt:
			x, err := parseInt32(v)
			if err != nil {
				p.fail(f.Name, CodeNotInteger, f.Name+" must be a whole number")
				continue
			}
			if x < int64(f.Min) || x > int64(f.Max) {
				p.fail(f.Name, CodeOutOfRange, fmt.Sprintf("%s must be from %d to %d", f.Name, f.Min, f.Max))
				continue
			}
			p.ints[fi] = int32(x)
		case schemas.FieldDate:
			d, ok := rc.parseDate(v)
			if !ok {
				p.fail(f.Name, CodeBadDate, f.Name+" is not a date laid out as "+rc.dateLayoutName())
				continue
			}
			if !rc.exportDate.IsZero() && d.After(rc.exportDate) {
				p.fail(f.Name, CodeFutureDate, f.Name+" is after the export date in the file name")
				continue
			}
			p.ints[fi] = int32(d.Unix() / 86400)
		}
	}
}

func (rc *rowChecker) layout() string {
	if rc.canonical || rc.site == nil {
		return "2006-01-02"
	}
	return rc.site.DateLayout
}

func (rc *rowChecker) dateLayoutName() string {
	r := strings.NewReplacer("2006", "yyyy", "01", "mm", "02", "dd", "Jan", "Mon")
	return r.Replace(rc.layout())
}

// parseDate reads a text date in the declared layout only (a UK 03/04/2018
// is never read as March 4th); an XLSX site's numeric cells are Excel date
// serials, converted explicitly.
func (rc *rowChecker) parseDate(v string) (time.Time, bool) {
	if !rc.canonical && rc.site != nil && rc.site.Format == "xlsx" && readers.IsSerial(v) {
		return readers.ExcelSerialToDate(v)
	}
	d, err := time.Parse(rc.layout(), v)
	if err != nil || d.Year() < 1900 {
		return time.Time{}, false
	}
	return d, true
}

// suspectCell catches values that must never be loaded whatever the column:
// spreadsheet formulas and control characters.
func suspectCell(v string, f *schemas.Field) (bool, string, string) {
	switch v[0] {
	case '=', '@':
		return true, CodeFormula, f.Name + " holds a spreadsheet formula"
	case '+', '-':
		if f.Type != schemas.FieldInt && !(f.Type == schemas.FieldCode && len(v) > 1 && v[1] >= '0' && v[1] <= '9') {
			return true, CodeFormula, f.Name + " starts like a spreadsheet formula"
		}
	}
	for _, r := range v {
		if r == utf8.RuneError || r == '\uFEFF' || (unicode.IsControl(r) && r != '\t') {
			return true, CodeBadCharacter, f.Name + " holds a control character or byte order mark"
		}
	}
	return false, "", ""
}
