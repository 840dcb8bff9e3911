package warehouse

import (
	"context"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/schemas"
)

// Records: the small tables (a stage's results, a few thousand rows at
// most) read and written as slices of structs whose fields name their
// columns with a `col` tag:
//
//	type effect struct {
//		Analysis string  `col:"analysis"`
//		Estimate float64 `col:"estimate"` // NaN: null
//	}
//
// Field types: string (a nullable column: "" is null), float64 (NaN or
// ±Inf is null), int, int32, int64 (written to the column's integer type;
// null reads as 0), bool. Columns of the table without a field are written
// as nulls; a field naming no column of the table is a programming error.
// Large tables (participants, responses, scores) stream through RowWriter
// and ColumnScan instead.

// ReplaceTable removes every file of a table from the generation being
// written, before the table is written anew.
func (tx *Tx) ReplaceTable(name string) error {
	if err := os.RemoveAll(tx.Path("tables", name)); err != nil {
		return fmt.Errorf("table %s: %w", name, err)
	}
	return nil
}

// WriteTable rewrites an unpartitioned table in one file: fill appends its
// rows to rw.
func WriteTable(env Env, tx *Tx, name string, fill func(rw *RowWriter) error) error {
	if err := tx.ReplaceTable(name); err != nil {
		return err
	}
	schema := ArrowSchema(env, name, nil)
	tf, err := tx.CreateTableFile(schema, name, "", "", "data")
	if err != nil {
		return err
	}
	rw := NewRowWriter(schema, tf)
	if err := fill(rw); err != nil {
		rw.Abort()
		return fmt.Errorf("table %s: %w", name, err)
	}
	if err := rw.Close(); err != nil {
		return fmt.Errorf("table %s: %w", name, err)
	}
	return nil
}

// recordField is one tagged field of a record type and its column.
type recordField struct {
	index []int // reflect field index
	col   int   // column position in the table
	name  string
	kind  reflect.Kind
}

// recordFields maps the `col` tags of struct type t to the table's columns.
func recordFields(tb *schemas.Table, t reflect.Type) ([]recordField, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("table %s: records must be structs, not %s", tb.Name, t)
	}
	var out []recordField
	for i := range t.NumField() {
		f := t.Field(i)
		name, ok := f.Tag.Lookup("col")
		if !ok {
			continue
		}
		col := tb.ColumnIndex(name)
		if col < 0 {
			return nil, fmt.Errorf("table %s has no column %s (field %s)", tb.Name, name, f.Name)
		}
		switch f.Type.Kind() {
		case reflect.String, reflect.Float64, reflect.Int, reflect.Int32, reflect.Int64, reflect.Bool:
		default:
			return nil, fmt.Errorf("table %s: field %s has unsupported type %s", tb.Name, f.Name, f.Type)
		}
		out = append(out, recordField{index: f.Index, col: col, name: name, kind: f.Type.Kind()})
	}
	return out, nil
}

// WriteRecords rewrites an unpartitioned table with rows, sorted by the
// table's key in byte order when every key column is a string field
// (otherwise in the order given).
func WriteRecords[T any](env Env, tx *Tx, name string, rows []T) error {
	tb := env.Study.Tables.Table(name)
	fields, err := recordFields(tb, reflect.TypeFor[T]())
	if err != nil {
		return err
	}
	if key := stringKeyFields(tb, fields); key != nil {
		rows = slices.Clone(rows)
		slices.SortStableFunc(rows, func(a, b T) int {
			va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
			for _, f := range key {
				if c := strings.Compare(va.FieldByIndex(f.index).String(), vb.FieldByIndex(f.index).String()); c != 0 {
					return c
				}
			}
			return 0
		})
	}
	byCol := make([]*recordField, len(tb.Columns))
	for i := range fields {
		byCol[fields[i].col] = &fields[i]
	}
	return WriteTable(env, tx, name, func(rw *RowWriter) error {
		for _, r := range rows {
			v := reflect.ValueOf(r)
			for col, c := range tb.Columns {
				f := byCol[col]
				if f == nil {
					rw.Null(col)
					continue
				}
				if err := writeField(rw, col, c, v.FieldByIndex(f.index)); err != nil {
					return fmt.Errorf("column %s: %w", c.Name, err)
				}
			}
			if err := rw.RowDone(); err != nil {
				return err
			}
		}
		return nil
	})
}

// stringKeyFields returns the fields of the table's key, or nil when a key
// column has no string field.
func stringKeyFields(tb *schemas.Table, fields []recordField) []recordField {
	var out []recordField
	for _, k := range tb.Key {
		i := slices.IndexFunc(fields, func(f recordField) bool { return f.name == k })
		if i < 0 || fields[i].kind != reflect.String {
			return nil
		}
		out = append(out, fields[i])
	}
	return out
}

func writeField(rw *RowWriter, col int, c schemas.Column, v reflect.Value) error {
	switch v.Kind() {
	case reflect.String:
		if c.Required {
			rw.Str(col, v.String())
		} else {
			rw.NullStr(col, v.String())
		}
	case reflect.Float64:
		x := v.Float()
		rw.Float64(col, x, !math.IsNaN(x) && !math.IsInf(x, 0))
	case reflect.Int, reflect.Int32, reflect.Int64:
		switch c.Type {
		case "int32":
			n := v.Int()
			if n < math.MinInt32 || n > math.MaxInt32 {
				return fmt.Errorf("value out of int32 range")
			}
			rw.Int32(col, int32(n), true)
		case "int64":
			rw.Int64(col, v.Int())
		default:
			return fmt.Errorf("an integer field for a %s column", c.Type)
		}
	case reflect.Bool:
		rw.Bool(col, v.Bool())
	}
	return nil
}

// ReadRecords reads every row of a table into records of type T (its
// tagged fields exported), file by file in path order (a partitioned
// table's partitions one after the other).
func ReadRecords[T any](ctx context.Context, genDir, name string) ([]T, error) {
	tables, err := embeddedTables()
	if err != nil {
		return nil, err
	}
	tb := tables.Table(name)
	fields, err := recordFields(tb, reflect.TypeFor[T]())
	if err != nil {
		return nil, err
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	var out []T
	err = ScanTable(ctx, genDir, name, func(rec arrow.RecordBatch) error {
		cols, err := Columns(rec, names...)
		if err != nil {
			return err
		}
		start := len(out)
		out = append(out, make([]T, rec.NumRows())...)
		for c, f := range fields {
			for i := range int(rec.NumRows()) {
				dst := reflect.ValueOf(&out[start+i]).Elem().FieldByIndex(f.index)
				if err := readField(dst, cols[c], i); err != nil {
					return fmt.Errorf("column %s: %w", f.name, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func readField(dst reflect.Value, a arrow.Array, i int) error {
	switch dst.Kind() {
	case reflect.String:
		if a.IsNull(i) {
			return nil
		}
		switch a := a.(type) {
		case *array.String:
			dst.SetString(a.Value(i))
		case *array.Dictionary:
			s, ok := a.Dictionary().(*array.String)
			if !ok {
				return fmt.Errorf("not a string column")
			}
			dst.SetString(s.Value(a.GetValueIndex(i)))
		default:
			return fmt.Errorf("not a string column")
		}
	case reflect.Float64:
		a, ok := a.(*array.Float64)
		if !ok {
			return fmt.Errorf("not a double column")
		}
		if a.IsNull(i) {
			dst.SetFloat(math.NaN())
		} else {
			dst.SetFloat(a.Value(i))
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		if a.IsNull(i) {
			return nil
		}
		switch a := a.(type) {
		case *array.Int32:
			dst.SetInt(int64(a.Value(i)))
		case *array.Int64:
			dst.SetInt(a.Value(i))
		default:
			return fmt.Errorf("not an integer column")
		}
	case reflect.Bool:
		a, ok := a.(*array.Boolean)
		if !ok {
			return fmt.Errorf("not a boolean column")
		}
		dst.SetBool(a.IsValid(i) && a.Value(i))
	}
	return nil
}
