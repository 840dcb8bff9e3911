// Package redcap maps the study definition to a REDCap project and back:
// the data dictionary, events, instrument–event mapping and data access
// groups a REDCap administrator uploads to create the project (Build,
// WriteProject), and the layout of the project's raw records export
// (ExportColumns, FileName), which `cpi synth --redcap` writes and ingest
// reads.
//
// The mapping, derived from the study definition only:
//
//   - record_id is the participant's pseudonym (participant_id);
//   - one event per wave, unique name <wave>_arm_1 (redcap_event_name → wave);
//   - one data access group per team, unique name the team code lower-cased
//     with every character outside a–z and 0–9 replaced by _
//     (redcap_data_access_group → team_code);
//   - form "interview" (record_id, interview_date, withdrawn) at every
//     wave, form "demographics" at the baseline wave, and one form per
//     instrument at the waves it is asked at;
//   - coded fields are radio (or dropdown, over MaxRadioChoices codes)
//     fields whose raw codes are the canonical codes; 0/1 fields are yesno
//     (raw 1/0); items are integer text fields with the item's min and max;
//     dates are date_ymd.
//
// Nothing identifying is ever a field: the pseudonym is the record id, and
// no field is marked as an identifier.
//
// The package sits on the floor of schemas: it imports nothing of the
// pipeline, so that ingest, synth and cmd/cpi can all use it.
package redcap

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connectingpeople/cpi/schemas"
)

// DictionaryColumns are the 18 columns of a REDCap data dictionary, in
// REDCap's order (REDCap's MetaData::getDataDictionaryHeaders).
var DictionaryColumns = [18]string{
	"Variable / Field Name",
	"Form Name",
	"Section Header",
	"Field Type",
	"Field Label",
	"Choices, Calculations, OR Slider Labels",
	"Field Note",
	"Text Validation Type OR Show Slider Number",
	"Text Validation Min",
	"Text Validation Max",
	"Identifier?",
	"Branching Logic (Show field only if...)",
	"Required Field?",
	"Custom Alignment",
	"Question Number (surveys only)",
	"Matrix Group Name",
	"Matrix Ranking?",
	"Field Annotation",
}

// Names of REDCap's own columns of a records export, and of this mapping's
// forms.
const (
	RecordID        = "record_id"
	EventColumn     = "redcap_event_name"
	DAGColumn       = "redcap_data_access_group"
	FormInterview   = "interview"
	FormDemographic = "demographics"
	// CompleteSuffix ends a form's status column (<form>_complete:
	// 0 incomplete, 1 unverified, 2 complete).
	CompleteSuffix = "_complete"
	// CheckboxSep separates a checkbox field's name from a code in the
	// export's column names (field___code).
	CheckboxSep = "___"
	// MaxRadioChoices is the most codes shown as radio buttons; a longer
	// list is a dropdown.
	MaxRadioChoices = 6
)

// Field is one row of the data dictionary.
type Field struct {
	Name, Form, Section, Type, Label string
	Choices                          []Choice // radio and dropdown
	Note                             string
	Validation                       string // integer, date_ymd or ""
	Min, Max                         string
	Required                         bool
	// Canonical is the canonical export column the field carries
	// (participant_id for record_id).
	Canonical string
}

// Choice is one raw code and its label.
type Choice struct{ Code, Label string }

// Event is one event of the project (one per wave).
type Event struct {
	Name, Unique, Wave string
}

// Form is one instrument (in REDCap's sense) of the project, its fields in
// order and the waves it is collected at.
type Form struct {
	Name   string
	Fields []Field
	Waves  []string
}

// DAG is one data access group (one per team).
type DAG struct {
	Name, Unique, Team, Trust string
}

// Project is the REDCap project of a study.
type Project struct {
	Forms  []Form
	Events []Event
	DAGs   []DAG
}

// Build derives the REDCap project from the study definition. It fails
// when a name cannot be a REDCap name (a field or form name must start
// with a lower-case letter and hold only a–z, 0–9 and _), or two forms or
// DAGs would share a name.
func Build(s *schemas.Study) (*Project, error) {
	p := &Project{}
	for _, w := range s.Waves {
		p.Events = append(p.Events, Event{Name: w, Unique: EventName(w), Wave: w})
	}
	seenDAG := map[string]string{}
	for _, t := range s.Teams {
		u := DAGName(t.Code)
		if other, dup := seenDAG[u]; dup {
			return nil, fmt.Errorf("teams %s and %s would share the data access group %s", other, t.Code, u)
		}
		seenDAG[u] = t.Code
		p.DAGs = append(p.DAGs, DAG{Name: t.Code, Unique: u, Team: t.Code, Trust: t.Trust})
	}
	byName := map[string]schemas.Field{}
	for _, f := range s.ExportFields(schemas.KindParticipants) {
		byName[f.Name] = f
	}
	interview := Form{Name: FormInterview, Waves: slices.Clone(s.Waves)}
	interview.Fields = append(interview.Fields,
		Field{Name: RecordID, Type: "text", Label: "Participant pseudonym", Required: true, Canonical: "participant_id",
			Note: "The trust's study pseudonym: never a name, NHS number or other identifier."},
		Field{Name: "interview_date", Type: "text", Label: "Interview date", Validation: "date_ymd", Canonical: "interview_date",
			Note: "Blank when the participant was not interviewed at this wave."},
		binaryField("withdrawn", "Withdrawn from the study", "Yes on the participant's last row when they withdrew."),
	)
	demo := Form{Name: FormDemographic, Waves: []string{s.BaselineWave()}}
	for _, d := range s.DemographicFields() {
		label := humanize(d.Name)
		if d.Binary {
			demo.Fields = append(demo.Fields, binaryField(d.Name, label, "Yes or no."))
			continue
		}
		demo.Fields = append(demo.Fields, codedField(d.Name, label, byName[d.Name].Codes))
	}
	p.Forms = append(p.Forms, interview, demo)
	for _, in := range s.Instruments {
		f := Form{Name: in.Name}
		for _, w := range s.Waves {
			if in.AskedAt(w) {
				f.Waves = append(f.Waves, w)
			}
		}
		for i, it := range in.Items {
			note := fmt.Sprintf("%s: an integer from %d to %d.", in.Title, it.Min, it.Max)
			if it.Blank != nil {
				note += fmt.Sprintf(" A blank counts as %d.", *it.Blank)
			}
			fd := Field{Name: it.Name, Type: "text", Label: in.Name + " " + it.Name, Note: note,
				Validation: "integer", Min: strconv.Itoa(it.Min), Max: strconv.Itoa(it.Max), Canonical: it.Name}
			if i == 0 {
				fd.Section = in.Title
			}
			f.Fields = append(f.Fields, fd)
		}
		p.Forms = append(p.Forms, f)
	}
	seenForm := map[string]bool{}
	seenField := map[string]bool{}
	for i := range p.Forms {
		f := &p.Forms[i]
		if !validName(f.Name) || seenForm[f.Name] {
			return nil, fmt.Errorf("instrument %q cannot be a REDCap form name (a–z, 0–9 and _, starting with a letter, unique)", f.Name)
		}
		seenForm[f.Name] = true
		for j := range f.Fields {
			fd := &f.Fields[j]
			fd.Form = f.Name
			if !validName(fd.Name) || seenField[fd.Name] {
				return nil, fmt.Errorf("column %q cannot be a REDCap field name (a–z, 0–9 and _, starting with a letter, unique)", fd.Name)
			}
			seenField[fd.Name] = true
		}
	}
	return p, nil
}

func binaryField(name, label, note string) Field {
	return Field{Name: name, Type: "yesno", Label: label, Note: note, Canonical: name}
}

func codedField(name, label string, codes []string) Field {
	f := Field{Name: name, Type: "radio", Label: label, Canonical: name, Note: "Raw codes are the study's canonical codes."}
	if len(codes) > MaxRadioChoices {
		f.Type = "dropdown"
	}
	for _, c := range codes {
		f.Choices = append(f.Choices, Choice{Code: c, Label: humanize(c)})
	}
	return f
}

// humanize turns a code into a label: underscores become spaces, the first
// letter upper case (not_stated → Not stated).
func humanize(code string) string {
	s := strings.ReplaceAll(code, "_", " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// validName reports whether s can be a REDCap variable or form name.
func validName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return !strings.Contains(s, CheckboxSep)
}

// uniqueName lower-cases s and replaces every character outside a–z and
// 0–9 with _.
func uniqueName(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// DAGName is a team's data access group's unique name: TEWV-01 → tewv_01.
func DAGName(team string) string { return uniqueName(team) }

// EventName is a wave's event's unique name: baseline → baseline_arm_1.
func EventName(wave string) string { return uniqueName(wave) + "_arm_1" }

// Fields lists every field of the project, form by form.
func (p *Project) Fields() []Field {
	var out []Field
	for _, f := range p.Forms {
		out = append(out, f.Fields...)
	}
	return out
}

// Form returns the named form.
func (p *Project) Form(name string) (*Form, bool) {
	for i := range p.Forms {
		if p.Forms[i].Name == name {
			return &p.Forms[i], true
		}
	}
	return nil, false
}

// ExportColumns is the header of the project's raw records export:
// record_id, redcap_event_name, redcap_data_access_group, then each form's
// fields (record_id left out) followed by its <form>_complete column.
func (p *Project) ExportColumns() []string {
	out := []string{RecordID, EventColumn, DAGColumn}
	for _, f := range p.Forms {
		for _, fd := range f.Fields {
			if fd.Name != RecordID {
				out = append(out, fd.Name)
			}
		}
		out = append(out, f.Name+CompleteSuffix)
	}
	return out
}

// FileName is the name of a study's REDCap records export made on date:
// <STUDY>_redcap_<YYYYMMDD>.csv, STUDY the study's name in CamelCase
// (letters and digits only).
func FileName(s *schemas.Study, date time.Time) string {
	return StudyCode(s) + "_redcap_" + date.Format("20060102") + ".csv"
}

// StudyCode is the study's name with its words capitalised and joined,
// letters and digits only: "Connecting People implementation study" →
// ConnectingPeopleImplementationStudy.
func StudyCode(s *schemas.Study) string {
	var b strings.Builder
	for _, w := range strings.FieldsFunc(s.Name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		b.WriteString(strings.ToUpper(w[:1]))
		b.WriteString(w[1:])
	}
	if b.Len() == 0 {
		return "study"
	}
	return b.String()
}

// ParseFileName reports whether name is a REDCap export of study s, and its
// export date: named <STUDY>_redcap_<YYYYMMDD>.csv, or as the site mapping
// of a trust with format redcap names its files.
func ParseFileName(s *schemas.Study, name string) (time.Time, bool) {
	if d, ok := siteFileName(s, name); ok {
		return d, true
	}
	prefix := StudyCode(s) + "_redcap_"
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return time.Time{}, false
	}
	day, ok := strings.CutSuffix(rest, ".csv")
	if !ok || len(day) != 8 {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102", day)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// BadFileDate reports whether name is named as a REDCap export of study s
// but its date is no calendar date (20190230), and that date's text.
func BadFileDate(s *schemas.Study, name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, StudyCode(s)+"_redcap_")
	if !ok {
		return "", false
	}
	day, ok := strings.CutSuffix(rest, ".csv")
	if !ok || len(day) != 8 || strings.Trim(day, "0123456789") != "" {
		return "", false
	}
	if _, err := time.Parse("20060102", day); err != nil {
		return day, true
	}
	return "", false
}

// siteFileName reports whether name is a REDCap export named as a site
// mapping with format redcap names them, and its date (a name whose date
// is no calendar date is no match: it is quarantined as bad_export_date).
func siteFileName(s *schemas.Study, name string) (time.Time, bool) {
	for _, t := range s.Trusts {
		site := s.Sites[t.Code]
		if site == nil || site.Format != schemas.FormatRedcap {
			continue
		}
		if ok, d := site.MatchName(name); ok && !d.IsZero() {
			return d, true
		}
	}
	return time.Time{}, false
}
