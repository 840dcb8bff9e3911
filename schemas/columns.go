package schemas

import "sort"

// Kinds of export.
const (
	KindParticipants = "participants"
	KindFidelity     = "fidelity"
)

// Field types of the canonical export.
const (
	FieldID   = "id"   // a pseudonym: participant_id, rater_id
	FieldCode = "code" // one of Codes
	FieldInt  = "int"  // an integer in Min..Max
	FieldDate = "date" // a date in the site's layout
)

// Field is one column of the canonical export format (DESIGN §5).
type Field struct {
	Name     string
	Type     string
	Codes    []string
	Min, Max int
	Required bool // a blank is an error
	// Instrument and Item are set for answer columns.
	Instrument string
	Item       *Item
}

// ExportFields lists the canonical columns of an export kind, in template order.
func (s *Study) ExportFields(kind string) []Field {
	f := s.fixedFields(kind)
	if kind == KindFidelity {
		for _, c := range s.Fidelity.Components {
			f = append(f, Field{Name: c.Code, Type: FieldInt, Min: s.Fidelity.Min, Max: s.Fidelity.Max})
		}
		return f
	}
	for _, in := range s.Instruments {
		for i := range in.Items {
			it := in.Items[i]
			f = append(f, Field{Name: it.Name, Type: FieldInt, Min: it.Min, Max: it.Max, Instrument: in.Name, Item: &it})
		}
	}
	return f
}

// fixedFields are an export kind's columns before the fidelity components
// or the instruments' items.
func (s *Study) fixedFields(kind string) []Field {
	if kind == KindFidelity {
		return []Field{
			{Name: "team_code", Type: FieldCode, Codes: s.TeamCodes(), Required: true},
			{Name: "period", Type: FieldCode, Codes: s.Periods, Required: true},
			{Name: "rater_id", Type: FieldID, Required: true},
			{Name: "rater_role", Type: FieldCode, Codes: s.Fidelity.RaterRoles, Required: true},
			{Name: "rating_date", Type: FieldDate},
		}
	}
	fields := []Field{
		{Name: "participant_id", Type: FieldID, Required: true},
		{Name: "team_code", Type: FieldCode, Codes: s.TeamCodes(), Required: true},
		{Name: "wave", Type: FieldCode, Codes: s.Waves, Required: true},
		{Name: "interview_date", Type: FieldDate},
	}
	for _, d := range s.DemographicDefs {
		if d.Binary {
			fields = append(fields, Field{Name: d.Name, Type: FieldInt, Min: 0, Max: 1})
		} else {
			fields = append(fields, Field{Name: d.Name, Type: FieldCode, Codes: d.Codes})
		}
	}
	return append(fields, Field{Name: "withdrawn", Type: FieldInt, Min: 0, Max: 1})
}

// isFixedField reports whether name is one of an export kind's fixed columns.
func (s *Study) isFixedField(kind, name string) bool {
	for _, f := range s.fixedFields(kind) {
		if f.Name == name {
			return true
		}
	}
	return false
}

// DateFields are the columns the study declares as dates.
func DateFields() []string { return []string{"interview_date", "rating_date"} }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
