package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/xitongsys/parquet-go-source/local"
	"github.com/xitongsys/parquet-go/reader"
)

// checkTablesIndependently reads every Parquet file of every table in a
// generation with a second, independent Parquet implementation
// (github.com/xitongsys/parquet-go) and asserts it sees the same rows and
// values, nulls included, as arrow-go does. It returns the files checked.
func checkTablesIndependently(t *testing.T, genDir string, tables []string) int {
	t.Helper()
	n := 0
	for _, table := range tables {
		files, err := warehouse.TableFiles(genDir, table)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			checkFileIndependently(t, f)
			n++
		}
	}
	return n
}

func checkFileIndependently(t *testing.T, path string) {
	t.Helper()
	name := filepath.Base(filepath.Dir(path)) + "/" + filepath.Base(path)
	// arrow-go's view: every column as strings.
	var want [][]string
	var names []string
	err := warehouse.ScanFile(context.Background(), path, func(rec arrow.RecordBatch) error {
		if names == nil {
			for _, f := range rec.Schema().Fields() {
				names = append(names, f.Name)
			}
			want = make([][]string, len(names))
		}
		for c := range names {
			col := rec.Column(c)
			for i := 0; i < col.Len(); i++ {
				want[c] = append(want[c], arrowCell(col, i))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: arrow read: %v", name, err)
	}
	fr, err := local.NewLocalFileReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	pr, err := reader.NewParquetColumnReader(fr, 1)
	if err != nil {
		t.Fatalf("%s: parquet-go cannot open it: %v", name, err)
	}
	defer pr.ReadStop()
	rows := pr.GetNumRows()
	if names == nil { // zero rows: still check the file opens and counts 0
		if rows != 0 {
			t.Errorf("%s: parquet-go sees %d rows, arrow none", name, rows)
		}
		return
	}
	if rows != int64(len(want[0])) {
		t.Fatalf("%s: parquet-go sees %d rows, arrow %d", name, rows, len(want[0]))
	}
	root := pr.SchemaHandler.GetRootExName()
	for c, col := range names {
		vals, _, _, err := pr.ReadColumnByPath(root+"\x01"+col, rows)
		if err != nil {
			t.Fatalf("%s: parquet-go column %s: %v", name, col, err)
		}
		if int64(len(vals)) != rows {
			t.Fatalf("%s: parquet-go column %s has %d values, want %d", name, col, len(vals), rows)
		}
		for i, v := range vals {
			got := "null"
			if v != nil {
				got = fmt.Sprint(v)
			}
			if got != want[c][i] {
				t.Fatalf("%s: row %d column %s: parquet-go %q, arrow %q", name, i, col, got, want[c][i])
			}
		}
	}
}

// arrowCell formats a value as parquet-go gives its physical value.
func arrowCell(col arrow.Array, i int) string {
	if col.IsNull(i) {
		return "null"
	}
	switch a := col.(type) {
	case *array.String:
		return a.Value(i)
	case *array.Int32:
		return fmt.Sprint(a.Value(i))
	case *array.Int64:
		return fmt.Sprint(a.Value(i))
	case *array.Float64:
		return fmt.Sprint(a.Value(i))
	case *array.Boolean:
		return fmt.Sprint(a.Value(i))
	case *array.Date32:
		return fmt.Sprint(int32(a.Value(i)))
	case *array.Timestamp:
		return fmt.Sprint(int64(a.Value(i)))
	}
	return strings.TrimSpace(col.ValueStr(i))
}

// TestScanTableRejectsAnotherSchema: a table file whose column has another
// type than tables.yaml says (an older cpi, or not cpi at all) is an error
// naming the column, never a panic in a reader.
func TestScanTableRejectsAnotherSchema(t *testing.T) {
	env := ingestTestEnv(t)
	w, err := warehouse.OpenWarehouse(filepath.Join(t.TempDir(), "w"), true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	good := warehouse.ArrowSchema(env, "flow", nil)
	fields := good.Fields()
	fields[3].Type = arrow.BinaryTypes.String // n: int64 in tables.yaml
	md := good.Metadata()
	bad := arrow.NewSchema(fields, &md)
	tf, err := tx.CreateTableFile(bad, "flow", "", "", "data")
	if err != nil {
		t.Fatal(err)
	}
	rw := warehouse.NewRowWriter(bad, tf)
	for i := 0; i < 4; i++ {
		rw.Str(i, "x")
	}
	if err := rw.RowDone(); err != nil {
		t.Fatal(err)
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	err = warehouse.ScanTable(context.Background(), tx.Dir, "flow", func(arrow.RecordBatch) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "column n is") {
		t.Fatalf("err = %v, want the column named", err)
	}
}
