package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// The data package: tables/datapackage.json describes every table of the
// generation as a Frictionless Data Package (v2, tabular): each table a
// resource with its files, partitioning, fields, types, units, code lists
// with labels, missing values and key; the package names the study, the
// program version, the study's hash and the data cut-off. It is the one
// model of the codebook: `cpi tables` prints it as text, `cpi tables
// --json` as it is written. It lives beside the table folders, not in one,
// so it is no stage's output; `cpi check` knows it by name.

// DataPackageFile is where the data package lives in a generation.
const DataPackageFile = "tables/datapackage.json"

// Profiles of the Data Package v2 specification the package declares.
const (
	profilePackage  = "https://datapackage.org/profiles/2.0/datapackage.json"
	profileResource = "https://datapackage.org/profiles/2.0/dataresource.json"
	profileSchema   = "https://datapackage.org/profiles/2.0/tableschema.json"
)

// DataPackage is a Frictionless Data Package descriptor. Properties of cpi's
// own are prefixed "cpi:", as the specification allows.
type DataPackage struct {
	Profile string `json:"$schema"`
	// V1Profile is v1's name of the profile, kept so readers of the first
	// version of the specification (and its published JSON Schema) take
	// the package too.
	V1Profile     string      `json:"profile"`
	Name          string      `json:"name"`
	Title         string      `json:"title"`
	Description   string      `json:"description"`
	Version       string      `json:"version"`
	Program       string      `json:"cpi:programVersion"`
	StudyHash     string      `json:"cpi:studyHash"`
	SchemaVersion int         `json:"cpi:schemaVersion"`
	DataCutoff    string      `json:"cpi:dataCutoff,omitempty"` // latest export date of the current exports; "" before any
	Resources     []*Resource `json:"resources"`
}

// Resource is one table. Path lists its Parquet files relative to the
// tables folder; a table with no file yet has empty inline Data instead,
// as the specification needs one of the two.
type Resource struct {
	Profile     string          `json:"$schema"`
	V1Profile   string          `json:"profile"`
	Name        string          `json:"name"`
	Type        string          `json:"type"`
	Description string          `json:"description"`
	Path        []string        `json:"path,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
	Format      string          `json:"format"`
	Mediatype   string          `json:"mediatype"`
	PathPattern string          `json:"cpi:pathPattern"`
	PartitionBy []string        `json:"cpi:partitionBy"`
	// Rows is for `cpi tables`, not written: ingest_files's rows change
	// with every arrival, and the package is as deterministic as the
	// tables (DESIGN §11).
	Rows   int64       `json:"-"`
	Schema TableSchema `json:"schema"`
}

// TableSchema is a resource's Table Schema.
type TableSchema struct {
	Profile       string   `json:"$schema"`
	Fields        []*Field `json:"fields"`
	PrimaryKey    []string `json:"primaryKey"`
	MissingValues []string `json:"missingValues"`
}

// Field is one column. Categories (Table Schema v2) gives a coded column's
// values with their labels; its values are strings, or integers for an
// integer column.
type Field struct {
	Name        string          `json:"name"`
	Type        string          `json:"type"`
	Description string          `json:"description"`
	Unit        string          `json:"cpi:unit,omitempty"`
	ParquetType string          `json:"cpi:parquetType"`
	Codes       string          `json:"cpi:codeList,omitempty"`
	Constraints Constraints     `json:"constraints"`
	Categories  []FieldCategory `json:"categories,omitempty"`
}

// Constraints of a field.
type Constraints struct {
	Required bool `json:"required"`
}

// FieldCategory is one value of a coded field and its label. Value is a
// string or an int64.
type FieldCategory struct {
	Value any    `json:"value"`
	Label string `json:"label"`
}

// fieldType maps a tables.yaml type to a Table Schema type.
func fieldType(t string) string {
	switch t {
	case "string":
		return "string"
	case "int32", "int64":
		return "integer"
	case "double":
		return "number"
	case "bool":
		return "boolean"
	case "date":
		return "date"
	case "timestamp":
		return "datetime"
	}
	panic("pipeline: unknown column type " + t)
}

// BuildDataPackage describes the tables of the generation at genDir (""
// for none) with l its ledger. The result depends only on the study, the
// program version, the table files and the current exports: no clock.
func BuildDataPackage(env warehouse.Env, genDir string, l *warehouse.Ledger) (*DataPackage, error) {
	st := env.Study
	dp := &DataPackage{
		Profile:       profilePackage,
		V1Profile:     "tabular-data-package",
		Name:          "cpi-warehouse",
		Title:         st.Name,
		Description:   "The tables of the cpi warehouse: one resource per table, Parquet files under tables/<table>/ (hive partitions <key>=<value>/ where a table is per trust; the key is also a column inside the files). A null is a missing value. Code lists with labels are in each coded field's categories and in the codes table.",
		Version:       fmt.Sprintf("%d.%d", st.Tables.SchemaVersion, st.Version),
		Program:       env.Version,
		StudyHash:     st.Hash,
		SchemaVersion: st.Tables.SchemaVersion,
		DataCutoff:    dataCutoff(l),
	}
	for _, name := range st.Tables.Names() {
		tb := st.Tables.Table(name)
		r := &Resource{
			Profile: profileResource, V1Profile: "tabular-data-resource", Name: name, Type: "table", Description: tb.Doc + tableProvenance(st, name),
			Format: "parquet", Mediatype: "application/vnd.apache.parquet",
			PathPattern: name + "/*.parquet", PartitionBy: []string{},
			Schema: TableSchema{Profile: profileSchema, PrimaryKey: tb.Key, MissingValues: []string{""}},
		}
		if tb.Partition != "" {
			r.PathPattern = name + "/" + tb.Partition + "=*/*.parquet"
			r.PartitionBy = []string{tb.Partition}
		}
		if genDir != "" {
			files, err := warehouse.TableFiles(genDir, name)
			if err != nil {
				return nil, fmt.Errorf("table %s: %w", name, err)
			}
			for _, f := range files {
				rel, err := filepath.Rel(filepath.Join(genDir, "tables"), f)
				if err != nil {
					return nil, err
				}
				r.Path = append(r.Path, filepath.ToSlash(rel))
				n, err := parquetRows(f)
				if err != nil {
					return nil, fmt.Errorf("table %s: %w", name, err)
				}
				r.Rows += n
			}
		}
		if len(r.Path) == 0 {
			r.Data = json.RawMessage("[]")
		}
		for _, c := range tb.Columns {
			f := &Field{
				Name: c.Name, Type: fieldType(c.Type), Description: c.Doc, Unit: c.Unit,
				ParquetType: c.Type, Codes: c.Codes, Constraints: Constraints{Required: c.Required},
			}
			if c.Codes != "" {
				codes, err := st.CodeList(c.Codes)
				if err != nil {
					return nil, fmt.Errorf("table %s, column %s: %w", name, c.Name, err)
				}
				for _, cd := range codes {
					var v any = cd.Value
					if f.Type == "integer" {
						n, err := strconv.ParseInt(cd.Value, 10, 64)
						if err != nil {
							return nil, fmt.Errorf("table %s, column %s: code %q is not an integer", name, c.Name, cd.Value)
						}
						v = n
					}
					f.Categories = append(f.Categories, FieldCategory{Value: v, Label: cd.Label})
				}
			}
			r.Schema.Fields = append(r.Schema.Fields, f)
		}
		dp.Resources = append(dp.Resources, r)
	}
	return dp, nil
}

// parquetRows is the number of rows of a Parquet file, from its footer.
func parquetRows(path string) (int64, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return 0, err
	}
	defer pf.Close()
	return pf.NumRows(), nil
}

// dataCutoff is the latest export date among the current exports of the
// ledger, "" when none is current.
func dataCutoff(l *warehouse.Ledger) string {
	cut := ""
	if l == nil {
		return cut
	}
	for _, f := range l.Files {
		if f.Status == warehouse.StatusCurrent && f.ExportDate > cut {
			cut = f.ExportDate
		}
	}
	return cut
}

// Marshal is the package as written: indented JSON, fields in a fixed
// order, ending with a newline.
func (dp *DataPackage) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(dp); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeDataPackage writes tables/datapackage.json into the generation when
// its bytes change (mode 0640, atomically).
func writeDataPackage(env warehouse.Env, tx *warehouse.Tx) error {
	dp, err := BuildDataPackage(env, tx.Dir, tx.Ledger)
	if err != nil {
		return fmt.Errorf("data package: %w", err)
	}
	b, err := dp.Marshal()
	if err != nil {
		return fmt.Errorf("data package: %w", err)
	}
	path := tx.Path(filepath.FromSlash(DataPackageFile))
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := tx.Step("write datapackage"); err != nil {
		return err
	}
	if err := warehouse.WriteFileAtomic(path, warehouse.FileMode, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}); err != nil {
		return fmt.Errorf("data package: %w", err)
	}
	return nil
}

// tableProvenance is what a table's description adds about the data its
// values depend on: for scores, each value set and unit-cost table the
// study's instruments use (name, title or price year and source), as the
// scores files' metadata records them (cpi.valueset.*, cpi.unitcosts.*).
func tableProvenance(st *schemas.Study, name string) string {
	if name != "scores" {
		return ""
	}
	var b strings.Builder
	for _, vs := range slices.Sorted(maps.Keys(st.ValueSets)) {
		v := st.ValueSets[vs]
		fmt.Fprintf(&b, " Value set %s: %s version %s.", v.Name, v.Title, v.Version)
	}
	for _, uc := range slices.Sorted(maps.Keys(st.UnitCosts)) {
		u := *st.UnitCosts[uc]
		if st.Economics.PriceYear != 0 {
			u.PriceYear = st.Economics.PriceYear
		}
		fmt.Fprintf(&b, " Unit costs %s: %s", u.Name, u.Describe())
	}
	return b.String()
}
