package warehouse

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/connectingpeople/cpi/pipeline/warehouse/pqfile"
	"github.com/connectingpeople/cpi/schemas"
)

// writeRowGroupSerial is writeRowGroup as it was before its columns were
// encoded side by side: one column after another straight into the file.
// It is the reference the parallel writer must match byte for byte.
func writeRowGroupSerial(ctx context.Context, w *file.Writer, rec arrow.RecordBatch, nullable []bool) error {
	rgw := w.AppendRowGroup()
	var defLevels []int16
	for i, col := range rec.Columns() {
		cw, err := rgw.NextColumn()
		if err != nil {
			return err
		}
		var levels []int16
		if nullable[i] {
			defLevels = pqfile.DefinitionLevels(defLevels[:0], col)
			levels = defLevels
		}
		if d, ok := col.(*array.Dictionary); ok {
			_, err = pqfile.WriteDictionaryColumn(ctx, cw, d, levels)
		} else {
			err = pqarrow.WriteArrowToColumn(ctx, cw, col, levels, nil, nullable[i])
		}
		if err != nil {
			return err
		}
	}
	return rgw.Close()
}

// arrowParquetWriter is arrow-go's own file writer with the properties,
// schema and key/value metadata newParquetWriter uses: the reference
// whose bytes pqFile must write.
func arrowParquetWriter(schema *arrow.Schema, f *os.File) (*file.Writer, error) {
	props := writerProperties(schema, &reuseAllocator{})
	pqschema, err := pqarrow.ToParquet(schema, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return nil, err
	}
	md := schema.Metadata()
	kv := make(metadata.KeyValueMetadata, 0, md.Len())
	for i := range md.Len() {
		if err := kv.Append(md.Keys()[i], md.Values()[i]); err != nil {
			return nil, err
		}
	}
	return file.NewParquetWriterWithError(f, pqschema.Root(), file.WithWriterProps(props), file.WithWriteMetadata(kv))
}

// bigColumnsRecord is a batch of the test schema of n rows, seeded:
// dictionary columns of many entries with long runs (as the long tables
// have), numbers with nulls; n large enough for several data pages per
// column.
func bigColumnsRecord(t *testing.T, schema *arrow.Schema, n int, seed uint64) arrow.RecordBatch {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	mem := memory.DefaultAllocator
	dict := func(entries int, run int, nulls bool) arrow.Array {
		sb := array.NewStringBuilder(mem)
		for e := range entries {
			sb.Append(fmt.Sprintf("value-%05d-%d", e, seed))
		}
		d := sb.NewArray()
		ib := array.NewInt32Builder(mem)
		v := int32(0)
		for r := range n {
			if r%run == 0 {
				v = int32(rng.IntN(entries))
			}
			if nulls && rng.IntN(20) == 0 {
				ib.AppendNull()
				continue
			}
			ib.Append(v)
		}
		ix := ib.NewArray()
		out := array.NewDictionaryArray(DictionaryType, ix, d)
		d.Release()
		ix.Release()
		sb.Release()
		ib.Release()
		return out
	}
	ib := array.NewInt32Builder(mem)
	fb := array.NewFloat64Builder(mem)
	bb := array.NewBooleanBuilder(mem)
	db := array.NewDate32Builder(mem)
	tb := array.NewTimestampBuilder(mem, schema.Field(6).Type.(*arrow.TimestampType))
	for r := range n {
		if rng.IntN(10) == 0 {
			ib.AppendNull()
			fb.AppendNull()
			db.AppendNull()
		} else {
			ib.Append(int32(rng.IntN(5)))
			fb.Append(rng.NormFloat64())
			db.Append(arrow.Date32(17000 + rng.IntN(900)))
		}
		bb.Append(rng.IntN(3) == 0)
		tb.Append(arrow.Timestamp(int64(r) * 1_000_003))
	}
	cols := []arrow.Array{dict(max(n/100, 1), 120, false), dict(7, 5000, true), ib.NewArray(), fb.NewArray(), bb.NewArray(), db.NewArray(), tb.NewArray()}
	for _, b := range []array.Builder{ib, fb, bb, db, tb} {
		b.Release()
	}
	rec := array.NewRecordBatch(WriteSchema(schema), cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// Columns encoded side by side (four goroutines, more than the columns
// that need them at times) give the very bytes of the same row groups
// written column after column: three row groups of 200,000 rows, every
// column several data pages long, the dictionaries and statistics of each.
func TestWriteRowGroupParallelSameBytes(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	schema := columnsTestSchema()
	// Row groups of several pages per column, and of one (BatchRows rows,
	// as the stages write; a few rows), whose only page writeRowGroup cuts
	// before the row group's Close.
	var recs []arrow.RecordBatch
	sizes := []int{200_000, 200_000, 200_000, BatchRows, 1_000, 1}
	total := 0
	for i, n := range sizes {
		recs = append(recs, bigColumnsRecord(t, schema, n, uint64(i)))
		total += n
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	nullable := []bool{false, true, true, true, false, true, false}
	dir := t.TempDir()
	write := func(name string, rg func(arrow.RecordBatch) error, closeFile func() error) []byte {
		for _, rec := range recs {
			if err := rg(rec); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if err := closeFile(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	create := func(name string) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	ours, err := newParquetWriter(schema, create("parallel.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	par := write("parallel.parquet", func(rec arrow.RecordBatch) error {
		return writeRowGroup(context.Background(), ours, rec, nullable)
	}, ours.Close)
	theirs, err := arrowParquetWriter(schema, create("serial.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	ser := write("serial.parquet", func(rec arrow.RecordBatch) error {
		return writeRowGroupSerial(context.Background(), theirs, rec, nullable)
	}, theirs.Close)
	if len(ser) < 1<<20 || !bytes.Equal(par, ser) {
		t.Fatalf("parallel %d bytes, serial %d: not the same file", len(par), len(ser))
	}
	// And the file reads back as written: every row, row groups whole.
	pf, err := file.OpenParquetFile(filepath.Join(dir, "parallel.parquet"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	if got := pf.NumRows(); got != int64(total) {
		t.Errorf("%d rows read back, want %d", got, total)
	}
	if got := pf.NumRowGroups(); got != len(sizes) {
		t.Errorf("%d row groups, want %d", got, len(sizes))
	}
}

// A row group whose writing is cancelled returns the context's error and
// leaves no goroutine behind.
func TestWriteRowGroupCancelled(t *testing.T) {
	schema := columnsTestSchema()
	rec := bigColumnsRecord(t, schema, 10_000, 1)
	defer rec.Release()
	before := runtime.NumGoroutine()
	f, err := os.Create(filepath.Join(t.TempDir(), "c.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := newParquetWriter(schema, f)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = writeRowGroup(ctx, w, rec, []bool{false, true, true, true, false, true, false})
	if err == nil || ctx.Err() == nil {
		t.Fatalf("cancelled row group: %v", err)
	}
	_ = w.Close()
	waitGoroutines(t, before)
}

// waitGoroutines fails the test unless the goroutines fall back to at
// most want within two seconds (goroutines that have returned may take a
// moment to be counted out).
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines left, want at most %d:\n%s", n, want, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Table files written, closed, aborted and failed, and a scan read to
// its end and one dropped halfway, leave no goroutine running: the
// writing goroutines, the column encoders and the parallel column readers
// all end.
func TestTableFilesLeaveNoGoroutines(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	before := runtime.NumGoroutine()
	w, err := OpenWarehouse(filepath.Join(t.TempDir(), "w"), true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	schema := columnsTestSchema()
	rec := bigColumnsRecord(t, schema, 70_000, 2)
	defer rec.Release()
	var closed string
	for i, end := range []string{"close", "abort", "fail"} {
		tf, err := tx.CreateTableFile(schema, "t", "", "", fmt.Sprintf("f%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if end == "fail" {
			_ = tf.f.Close() // the writing goroutine's writes fail
		}
		for range 3 {
			_ = tf.Write(rec)
		}
		switch end {
		case "close":
			if err := tf.Close(); err != nil {
				t.Fatal(err)
			}
			closed = tf.final
		case "abort":
			tf.Abort()
		case "fail":
			if err := tf.Close(); err == nil {
				t.Error("a file closed under its writer: no error")
			}
		}
	}
	pf, err := file.OpenParquetFile(closed, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := pf.NumRows(); got != 3*70_000 {
		t.Errorf("%d rows written, want %d", got, 3*70_000)
	}
	pf.Close()
	// A table of the study read by a ColumnScan (its columns decoded side
	// by side) to the end, and again dropped after the first batch.
	study, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	env := Env{Study: study, Version: "test"}
	rs := ArrowSchema(env, "reliability", nil)
	tf, err := tx.CreateTableFile(rs, "reliability", "", "", "data")
	if err != nil {
		t.Fatal(err)
	}
	rw := NewRowWriter(rs, tf)
	const n = 3*BatchRows + 5
	for i := range n {
		for c, f := range rs.Fields() {
			switch f.Type.ID() {
			case arrow.STRING:
				rw.Str(c, fmt.Sprint("s", i/1000))
			case arrow.INT32:
				rw.Int32(c, int32(i), true)
			case arrow.FLOAT64:
				rw.Float64(c, float64(i)/3, i%7 != 0)
			default:
				t.Fatalf("column %s: type %s not in the test", f.Name, f.Type)
			}
		}
		if err := rw.RowDone(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := TableFiles(tx.Dir, "reliability")
	if err != nil || len(files) != 1 {
		t.Fatalf("reliability files %v: %v", files, err)
	}
	rows := 0
	scan := NewColumnScan(context.Background(), files, nil, nil)
	scan.ReuseMemory()
	for {
		ok, err := scan.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		rows += scan.Cols[0].Len()
	}
	scan.Close()
	if rows != n {
		t.Errorf("%d rows read back, want %d", rows, n)
	}
	scan = NewColumnScan(context.Background(), files, nil, nil)
	if ok, err := scan.Next(); !ok || err != nil {
		t.Fatalf("first batch: %v %v", ok, err)
	}
	scan.Close()
	waitGoroutines(t, before)
}

// newParquetWriter is the Parquet writer of a TableFile.
func newParquetWriter(schema *arrow.Schema, f *os.File) (*pqfile.Writer, error) {
	return pqfile.Create(schema, writerProperties(schema, &reuseAllocator{}), f)
}

// writeRowGroup writes rec as the next row group of w.
func writeRowGroup(ctx context.Context, w *pqfile.Writer, rec arrow.RecordBatch, nullable []bool) error {
	return w.WriteRowGroup(ctx, rec, nullable)
}
