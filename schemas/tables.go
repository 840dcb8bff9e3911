package schemas

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
