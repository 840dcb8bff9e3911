package schemas

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Tables is the warehouse's table schemas (tables.yaml).
type Tables struct {
	SchemaVersion int               `yaml:"schema_version"`
	Tables        map[string]*Table `yaml:"tables"`
}

// Table is one warehouse table.
type Table struct {
	Name      string   `yaml:"-"`
	Doc       string   `yaml:"doc"`
	Key       []string `yaml:"key"`
	Partition string   `yaml:"partition"`
	Columns   []Column `yaml:"columns"`
}

// Column is one column of a table. Type is string, int32, int64, double,
// bool, date or timestamp. Unit, when set, is what a number counts or
// measures. Codes, when set, names the code list its values come from
// (see Study.CodeList): the column is coded.
type Column struct {
	Name     string `yaml:"name"`
	Type     string `yaml:"type"`
	Required bool   `yaml:"required"`
	Doc      string `yaml:"doc"`
	Unit     string `yaml:"unit"`
	Codes    string `yaml:"codes"`
}

// Table returns the named table's schema; it panics on an unknown name,
// which is a programming error (table names are fixed in code).
func (t *Tables) Table(name string) *Table {
	tb, ok := t.Tables[name]
	if !ok {
		panic("schemas: unknown table " + name)
	}
	return tb
}

// Names lists the tables in sorted order.
func (t *Tables) Names() []string { return sortedKeys(t.Tables) }

// ColumnIndex returns the position of a column, or -1.
func (tb *Table) ColumnIndex(name string) int {
	for i, c := range tb.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// demographicBlock is the range of the participants table's columns that
// are the study's demographics: those between arm and withdrawn (ok false
// for any other table).
func (tb *Table) demographicBlock() (from, to int, ok bool) {
	if tb.Name != "participants" {
		return 0, 0, false
	}
	from, to = tb.ColumnIndex("arm")+1, tb.ColumnIndex("withdrawn")
	return from, to, from > 0 && to >= from
}

// StudyIndependentColumns are the columns every study's version of the
// table has: all of them but participants' demographics, which follow the
// study definition (Study.DemographicFields).
func (tb *Table) StudyIndependentColumns() []Column {
	from, to, ok := tb.demographicBlock()
	if !ok {
		return tb.Columns
	}
	return slices.Concat(tb.Columns[:from], tb.Columns[to:])
}

// withDemographics is t with the participants table's demographic columns
// (those between arm and withdrawn in tables.yaml, the default study's)
// replaced by the study's, in its order: a column of tables.yaml of the
// same name and kind keeps its documentation; any other is a string column
// coded by its own code list, or an int32 column coded yes_no. Every other
// table is shared with t.
func (t *Tables) withDemographics(ds []Demographic) (*Tables, error) {
	pt, ok := t.Tables["participants"]
	if !ok {
		return t, nil
	}
	from, to, ok := pt.demographicBlock()
	if !ok {
		return nil, fmt.Errorf("tables.yaml: participants has no arm column before withdrawn")
	}
	cols := slices.Clone(pt.Columns[:from])
	for _, d := range ds {
		for _, c := range slices.Concat(pt.Columns[:from], pt.Columns[to:]) {
			if c.Name == d.Name {
				return nil, fmt.Errorf("demographic %q is already a column of the participants table", d.Name)
			}
		}
		col := Column{Name: d.Name, Type: "string", Codes: d.Name, Doc: strings.ReplaceAll(d.Name, "_", " ") + " at baseline (the study's code list)"}
		if d.Binary {
			col = Column{Name: d.Name, Type: "int32", Codes: YesNo, Doc: "1 yes, 0 no: " + strings.ReplaceAll(d.Name, "_", " ") + " (baseline)"}
		}
		if i := pt.ColumnIndex(d.Name); i >= from && i < to && pt.Columns[i].Type == col.Type && pt.Columns[i].Codes == col.Codes {
			col = pt.Columns[i]
		}
		cols = append(cols, col)
	}
	cols = append(cols, pt.Columns[to:]...)
	np := *pt
	np.Columns = cols
	out := &Tables{SchemaVersion: t.SchemaVersion, Tables: maps.Clone(t.Tables)}
	out.Tables["participants"] = &np
	return out, nil
}
