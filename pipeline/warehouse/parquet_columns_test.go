package warehouse

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// columnsTestSchema has a column of every kind the tables use: a required
// and a nullable string, nullable int32, float64, bool, date and UTC
// timestamp.
func columnsTestSchema() *arrow.Schema {
	md := arrow.NewMetadata([]string{MetaTable}, []string{"test"})
	return arrow.NewSchema([]arrow.Field{
		{Name: "code", Type: arrow.BinaryTypes.String},
		{Name: "label", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	}, &md)
}

// columnsTestRecord builds a batch of the test schema with dictionaries
// holding entries no row uses (zz; q) and, if nullLabel, a null label
// whose index slot points at q.
func columnsTestRecord(t *testing.T, schema *arrow.Schema, nullLabel bool) arrow.RecordBatch {
	t.Helper()
	mem := memory.DefaultAllocator
	dict := func(values []string, idx []int32, valid []bool) arrow.Array {
		sb := array.NewStringBuilder(mem)
		sb.AppendValues(values, nil)
		d := sb.NewArray()
		ib := array.NewInt32Builder(mem)
		ib.AppendValues(idx, valid)
		ix := ib.NewArray()
		out := array.NewDictionaryArray(DictionaryType, ix, d)
		d.Release()
		ix.Release()
		sb.Release()
		ib.Release()
		return out
	}
	n := array.NewInt32Builder(mem)
	n.AppendValues([]int32{3, 0, -7, 9}, []bool{true, false, true, true})
	x := array.NewFloat64Builder(mem)
	x.AppendValues([]float64{0.5, 2, 0, -1.25}, []bool{true, true, false, true})
	ok := array.NewBooleanBuilder(mem)
	ok.AppendValues([]bool{true, false, false, true}, nil)
	day := array.NewDate32Builder(mem)
	day.AppendValues([]arrow.Date32{17987, 0, 18000, 18001}, []bool{true, false, true, true})
	at := array.NewTimestampBuilder(mem, schema.Field(6).Type.(*arrow.TimestampType))
	at.AppendValues([]arrow.Timestamp{1, 2, 3, arrow.Timestamp(time.Date(2019, 3, 29, 0, 0, 0, 0, time.UTC).UnixMicro())}, nil)
	cols := []arrow.Array{
		dict([]string{"zz", "b", "a", "m"}, []int32{1, 1, 3, 2}, nil),
		dict([]string{"q", "b", "m"}, []int32{1, 0, 2, 2}, []bool{true, !nullLabel, true, true}),
		n.NewArray(), x.NewArray(), ok.NewArray(), day.NewArray(), at.NewArray(),
	}
	for _, b := range []array.Builder{n, x, ok, day, at} {
		b.Release()
	}
	rec := array.NewRecordBatch(WriteSchema(schema), cols, 4)
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// The column writer writes the very bytes pqarrow's FileWriter writes for
// the same record, dictionaries included: only the way the statistics of
// a dictionary column are worked out differs. (With a null in a
// dictionary column they differ: pqarrow counts the entry the null's
// index slot points at; see TestWriteRowGroupDictionaryStatistics.)
func TestWriteRowGroupMatchesPqarrow(t *testing.T) {
	schema := columnsTestSchema()
	rec := columnsTestRecord(t, schema, false)
	defer rec.Release()
	dir := t.TempDir()
	columnsTestWrite(t, schema, rec, filepath.Join(dir, "ours.parquet"))

	theirs, err := os.Create(filepath.Join(dir, "pqarrow.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	fw, err := pqarrow.NewFileWriter(WriteSchema(schema), theirs, writerProperties(schema, memory.DefaultAllocator), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := fw.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "ours.parquet"))
	b, _ := os.ReadFile(filepath.Join(dir, "pqarrow.parquet"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("files differ: ours %d bytes, pqarrow's %d", len(a), len(b))
	}

}

// columnsTestWrite writes rec twice (two row groups) to path with
// writeRowGroup.
func columnsTestWrite(t *testing.T, schema *arrow.Schema, rec arrow.RecordBatch, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newParquetWriter(schema, f)
	if err != nil {
		t.Fatal(err)
	}
	nullable := []bool{false, true, true, true, false, true, false}
	for range 2 {
		if err := writeRowGroup(context.Background(), w, rec, nullable); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// The statistics of a dictionary column are those of the entries rows
// use: code a..m (not zz), label b..m with one null, though the null's
// index slot points at q (pqarrow would count q).
func TestWriteRowGroupDictionaryStatistics(t *testing.T) {
	schema := columnsTestSchema()
	rec := columnsTestRecord(t, schema, true)
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "t.parquet")
	columnsTestWrite(t, schema, rec, path)
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	for col, want := range map[int][3]string{0: {"a", "m", "0"}, 1: {"b", "m", "1"}} {
		cc, err := pf.MetaData().RowGroup(0).ColumnChunk(col)
		if err != nil {
			t.Fatal(err)
		}
		st, err := cc.Statistics()
		if err != nil {
			t.Fatal(err)
		}
		bs := st.(*metadata.ByteArrayStatistics)
		got := [3]string{string(bs.Min()), string(bs.Max()), []string{"0", "1"}[min(bs.NullCount(), 1)]}
		if got != want {
			t.Errorf("column %d statistics min, max, nulls %v, want %v", col, got, want)
		}
	}
}

// A dictionary that repeats a value cannot seed the column's dictionary:
// the chunk is written plain, and the values read back are the same.
func TestWriteRowGroupDictionaryWithRepeats(t *testing.T) {
	md := arrow.NewMetadata([]string{MetaTable}, []string{"test"})
	schema := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}}, &md)
	sb := array.NewStringBuilder(memory.DefaultAllocator)
	sb.AppendValues([]string{"x", "x", "y"}, nil)
	d := sb.NewArray()
	ib := array.NewInt32Builder(memory.DefaultAllocator)
	ib.AppendValues([]int32{2, 0, 1, 0}, []bool{true, true, true, false})
	ix := ib.NewArray()
	col := array.NewDictionaryArray(DictionaryType, ix, d)
	rec := array.NewRecordBatch(WriteSchema(schema), []arrow.Array{col}, 4)
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "t.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newParquetWriter(schema, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeRowGroup(context.Background(), w, rec, []bool{true}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := scanFileForTest(path, func(rec arrow.RecordBatch) {
		c := rec.Column(0).(*array.String)
		for i := range c.Len() {
			got = append(got, cmpOrNull(c, i))
		}
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"y", "x", "x", "<null>"}; !slices.Equal(got, want) {
		t.Errorf("read back %v, want %v", got, want)
	}
}

func cmpOrNull(c *array.String, i int) string {
	if c.IsNull(i) {
		return "<null>"
	}
	return c.Value(i)
}

// scanFileForTest reads every record of a Parquet file with pqarrow.
func scanFileForTest(path string, fn func(arrow.RecordBatch)) error {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return err
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1024}, memory.DefaultAllocator)
	if err != nil {
		return err
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		return err
	}
	defer rr.Release()
	for rr.Next() {
		fn(rr.RecordBatch())
	}
	return rr.Err()
}

// A batch the writing goroutine fails on fails the file: a later Write
// or Close returns the error, every batch's memory is handed back, and
// nothing is left in the table's folder.
func TestTableFileWriteFailure(t *testing.T) {
	w, err := OpenWarehouse(filepath.Join(t.TempDir(), "w"), true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	schema := columnsTestSchema()
	tf, err := tx.CreateTableFile(schema, "t", "", "", "data")
	if err != nil {
		t.Fatal(err)
	}
	good := columnsTestRecord(t, schema, true)
	defer good.Release()
	// A record of another schema is refused at once.
	ib := array.NewInt32Builder(memory.DefaultAllocator)
	ib.AppendValues([]int32{1}, nil)
	one := ib.NewArray()
	bad := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "code", Type: arrow.PrimitiveTypes.Int32}}, nil), []arrow.Array{one}, 1)
	defer bad.Release()
	if err := tf.Write(bad); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Errorf("a record of another schema: %v", err)
	}
	// The file closed under the writer: writing a row group fails in the
	// writing goroutine.
	if err := tf.f.Close(); err != nil {
		t.Fatal(err)
	}
	handedBack := 0
	var werr error
	for range 5 {
		rec := good
		if err := tf.WriteThen(rec, func() { handedBack++ }); err != nil {
			werr = err
		}
	}
	cerr := tf.Close()
	if cerr == nil && werr == nil {
		t.Fatal("a batch the writer refused: no error from Write or Close")
	}
	if handedBack != 5 {
		t.Errorf("%d of 5 batches handed back", handedBack)
	}
	entries, _ := os.ReadDir(tx.Path("tables", "t"))
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
}
