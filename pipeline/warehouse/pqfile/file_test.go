package pqfile

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// dictCase is a dictionary column: entries, and per row an index (-1:
// null).
type dictCase struct {
	name    string
	entries []string
	idx     []int32
}

func dictCaseRecord(c dictCase, nullable bool) (*arrow.Schema, arrow.RecordBatch) {
	md := arrow.NewMetadata([]string{"cpi.table"}, []string{"test"})
	schema := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String, Nullable: nullable}}, &md)
	sb := array.NewStringBuilder(memory.DefaultAllocator)
	defer sb.Release()
	sb.AppendValues(c.entries, nil)
	d := sb.NewArray()
	defer d.Release()
	ib := array.NewInt32Builder(memory.DefaultAllocator)
	defer ib.Release()
	for _, v := range c.idx {
		if v < 0 {
			ib.AppendNull()
			continue
		}
		ib.Append(v)
	}
	ix := ib.NewArray()
	defer ix.Release()
	col := array.NewDictionaryArray(dictionaryType, ix, d)
	defer col.Release()
	return schema, array.NewRecordBatch(writeSchema(schema), []arrow.Array{col}, int64(len(c.idx)))
}

func entries(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("e%06d", i)
	}
	return out
}

// dictCases: runs just under, at and over eight; literal runs longer
// than one indicator byte holds (63 groups); a short repeated run or a
// padded literal group at the end; bit widths 1 to 20 (dictionaries of
// 2^w entries, every index used); nulls here and there, all rows null,
// one row; runs across the 1024-row batches of the column writer.
func dictCases() []dictCase {
	rng := rand.New(rand.NewPCG(3, 9))
	var cs []dictCase
	add := func(name string, n int, idx []int32) {
		cs = append(cs, dictCase{name, entries(n), idx})
	}
	for _, run := range []int{1, 2, 7, 8, 9, 15, 16, 17} {
		var idx []int32
		for i := range 600 {
			idx = append(idx, int32((i/run)%5))
		}
		add(fmt.Sprintf("runs of %d", run), 5, idx)
		add(fmt.Sprintf("runs of %d, 3 more", run), 5, append(idx, 1, 1, 1))
		add(fmt.Sprintf("runs of %d, 3 mixed more", run), 5, append(idx[:len(idx):len(idx)], 1, 2, 2))
	}
	for w := 1; w <= 20; w++ {
		n := 1 << w
		idx := make([]int32, 0, n+3000)
		for i := range n {
			idx = append(idx, int32(i))
		}
		for range 3000 {
			v := int32(rng.IntN(n))
			for range rng.IntN(20) + 1 {
				idx = append(idx, v)
			}
		}
		add(fmt.Sprintf("width %d", w), n, idx)
	}
	long := make([]int32, 5000) // literal runs of more than 63 groups
	for i := range long {
		long[i] = int32(i % 3)
	}
	add("long literal", 3, long)
	add("one entry", 1, []int32{0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	add("one row", 4, []int32{2})
	add("zeros first", 4, []int32{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3})
	var nulls []int32
	for i := range 5000 {
		switch {
		case i%97 < 11:
			nulls = append(nulls, -1)
		default:
			nulls = append(nulls, int32((i/13)%40))
		}
	}
	add("nulls", 40, nulls)
	add("all null", 3, []int32{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1})
	add("empty dictionary", 0, []int32{-1, -1, -1})
	add("unused entries", 10, []int32{3, 3, 3, 3, 3, 3, 3, 3, 3, 4})
	return cs
}

// writeDictCase writes rec as two row groups, ours (dictChunk where it
// takes the column, else the column writer) or arrow-go's (writer and
// column writer), and returns the file and whether dictChunk took it.
func writeDictCase(t *testing.T, schema *arrow.Schema, rec arrow.RecordBatch, nullable, ours bool) ([]byte, bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	took := true
	if ours {
		w, err := Create(schema, testProps(schema), f)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			cols, rg, err := w.rowGroup()
			if err != nil {
				t.Fatal(err)
			}
			var levels []int16
			if nullable {
				levels = DefinitionLevels(nil, rec.Column(0))
			}
			var sc chunkScratch
			done, err := w.dictChunk(&cols[0], rec.Column(0).(*array.Dictionary), levels, &sc)
			if err != nil {
				t.Fatal(err)
			}
			took = took && done
			if !done {
				if err := w.writeColumn(context.Background(), &cols[0], rec.Column(0), nullable, new([]int16), &sc); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.closeRowGroup(cols, rg); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	} else {
		w, err := arrowParquetWriter(schema, f)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := writeRowGroupSerial(context.Background(), w, rec, []bool{nullable}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, took
}

// The pages dictChunk encodes (dictionary, run-length encoded indices,
// definition levels, statistics) make the very file arrow-go's column
// writer makes, for every case; and dictChunk takes every case but the
// empty dictionary, which it leaves to the column writer.
func TestDictChunkMatchesColumnWriter(t *testing.T) {
	for _, c := range dictCases() {
		for _, nullable := range []bool{false, true} {
			hasNull := false
			for _, v := range c.idx {
				hasNull = hasNull || v < 0
			}
			if hasNull && !nullable {
				continue
			}
			schema, rec := dictCaseRecord(c, nullable)
			ours, took := writeDictCase(t, schema, rec, nullable, true)
			theirs, _ := writeDictCase(t, schema, rec, nullable, false)
			rec.Release()
			name := fmt.Sprintf("%s (nullable %v)", c.name, nullable)
			if !bytes.Equal(ours, theirs) {
				t.Errorf("%s: ours %d bytes, arrow-go's %d: not the same file", name, len(ours), len(theirs))
			}
			if want := len(c.entries) > 0; took != want {
				t.Errorf("%s: dictChunk took the column: %v, want %v", name, took, want)
			}
		}
	}
}

// A dictionary that repeats a value is left to the column writer (which
// writes the chunk plain), and the file is still arrow-go's.
func TestDictChunkLeavesRepeatedDictionary(t *testing.T) {
	c := dictCase{"repeats", []string{"a", "b", "a"}, []int32{0, 1, 2, 2, 1, 0}}
	schema, rec := dictCaseRecord(c, false)
	defer rec.Release()
	ours, took := writeDictCase(t, schema, rec, false, true)
	theirs, _ := writeDictCase(t, schema, rec, false, false)
	if took {
		t.Error("dictChunk took a dictionary that repeats a value")
	}
	if !bytes.Equal(ours, theirs) {
		t.Errorf("ours %d bytes, arrow-go's %d: not the same file", len(ours), len(theirs))
	}
}

// The encoder's literal groups are bit-packed least significant bit
// first: the Parquet specification's example (0 to 7 in three bits).
func TestPackGroupSpecExample(t *testing.T) {
	vals := [8]uint64{0, 1, 2, 3, 4, 5, 6, 7}
	got := packGroup(nil, &vals, 3)
	want := []byte{0b10001000, 0b11000110, 0b11111010}
	if !bytes.Equal(got, want) {
		t.Fatalf("packed %08b, want %08b", got, want)
	}
}

func BenchmarkRLEEncoder(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	idx := make([]int32, 0, batchRows)
	for len(idx) < batchRows {
		v := int32(rng.IntN(600))
		for range min(rng.IntN(200)+1, batchRows-len(idx)) {
			idx = append(idx, v)
		}
	}
	cyc := make([]int32, batchRows)
	for i := range cyc {
		cyc[i] = int32(i % 13)
	}
	for _, c := range []struct {
		name string
		idx  []int32
	}{{"runs", idx}, {"cycle", cyc}} {
		b.Run(c.name, func(b *testing.B) {
			var e rleEncoder
			var out []byte
			for b.Loop() {
				e.reset(out[:0], 10)
				e.putInt32(c.idx)
				out = e.finish()
			}
		})
	}
}

// BenchmarkDictColumn writes a row group of one dictionary column
// (batchRows rows: runs of ids, or items cycling) by dictChunk and by
// arrow-go's column writer.
func BenchmarkDictColumn(b *testing.B) {
	cyc := make([]int32, batchRows)
	runs := make([]int32, batchRows)
	for i := range cyc {
		cyc[i] = int32(i % 13)
		runs[i] = int32(i / 121)
	}
	for _, c := range []dictCase{{"cycle", entries(13), cyc}, {"runs", entries(batchRows/121 + 1), runs}} {
		schema, rec := dictCaseRecord(c, false)
		defer rec.Release()
		d := rec.Column(0).(*array.Dictionary)
		for _, ours := range []bool{true, false} {
			name := c.name + "/arrow-go"
			if ours {
				name = c.name + "/dictChunk"
			}
			b.Run(name, func(b *testing.B) {
				f, err := os.Create(filepath.Join(b.TempDir(), "f.parquet"))
				if err != nil {
					b.Fatal(err)
				}
				w, err := Create(schema, testProps(schema), f)
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				var sc chunkScratch
				for b.Loop() {
					cols, rg, err := w.rowGroup()
					if err != nil {
						b.Fatal(err)
					}
					if ours {
						_, err = w.dictChunk(&cols[0], d, nil, &sc)
					} else {
						cols[0].cw = file.NewColumnChunkWriter(cols[0].meta, cols[0].pager, w.props)
						_, err = WriteDictionaryColumn(context.Background(), cols[0].cw, d, nil)
					}
					if err == nil {
						err = w.closeRowGroup(cols, rg)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// writeOneColumn writes rec (one column) as two row groups by
// pqFile.writeColumn, and returns the file and whether the column
// writer was left out of every chunk (dictChunk or plainColumn took it).
func writeOneColumn(t *testing.T, schema *arrow.Schema, rec arrow.RecordBatch, nullable bool) ([]byte, bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Create(schema, testProps(schema), f)
	if err != nil {
		t.Fatal(err)
	}
	took := true
	var sc chunkScratch
	for range 2 {
		cols, rg, err := w.rowGroup()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.writeColumn(context.Background(), &cols[0], rec.Column(0), nullable, new([]int16), &sc); err != nil {
			t.Fatal(err)
		}
		took = took && cols[0].cw == nil
		if err := w.closeRowGroup(cols, rg); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, took
}

// Numbers written by plainColumn (int32, date, int64, timestamp, double;
// nulls or none; NaN, infinities and signed zeros among the doubles; one
// row, a write batch and one more, a whole batch of the stages) make the
// very file pqarrow and the column writer make, with the statistics of
// each page; a page the column writer would cut in two (200,000 doubles)
// is left to it.
func TestPlainColumnMatchesColumnWriter(t *testing.T) {
	md := arrow.NewMetadata([]string{"cpi.table"}, []string{"test"})
	rng := rand.New(rand.NewPCG(5, 11))
	specials := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0}
	types := []arrow.DataType{arrow.PrimitiveTypes.Int32, arrow.FixedWidthTypes.Date32, arrow.PrimitiveTypes.Int64,
		&arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, arrow.PrimitiveTypes.Float64}
	for _, dt := range types {
		for _, n := range []int{1, 1024, 1025, batchRows, 200_000} {
			for _, nulls := range []string{"required", "no nulls", "nulls", "all null"} {
				nullable := nulls != "required"
				if (nulls == "all null" || nulls == "nulls") && n == 200_000 {
					continue
				}
				schema := arrow.NewSchema([]arrow.Field{{Name: "v", Type: dt, Nullable: nullable}}, &md)
				b := array.NewBuilder(memory.DefaultAllocator, dt)
				for i := range n {
					if nulls == "all null" || (nulls == "nulls" && rng.IntN(7) == 0) {
						b.AppendNull()
						continue
					}
					switch b := b.(type) {
					case *array.Int32Builder:
						b.Append(int32(rng.IntN(2000)) - 1000)
					case *array.Date32Builder:
						b.Append(arrow.Date32(17000 + rng.IntN(900)))
					case *array.Int64Builder:
						b.Append(rng.Int64() - 1<<62)
					case *array.TimestampBuilder:
						b.Append(arrow.Timestamp(int64(i) * 1_000_003))
					case *array.Float64Builder:
						v := rng.NormFloat64()
						if rng.IntN(50) == 0 {
							v = specials[rng.IntN(len(specials))]
						}
						b.Append(v)
					}
				}
				col := b.NewArray()
				b.Release()
				rec := array.NewRecordBatch(schema, []arrow.Array{col}, int64(n))
				col.Release()
				ours, took := writeOneColumn(t, schema, rec, nullable)
				theirs, _ := writeDictCase(t, schema, rec, nullable, false)
				rec.Release()
				name := fmt.Sprintf("%s, %d rows, %s", dt, n, nulls)
				if !bytes.Equal(ours, theirs) {
					t.Errorf("%s: ours %d bytes, arrow-go's %d: not the same file", name, len(ours), len(theirs))
				}
				wide := dt.(arrow.FixedWidthDataType).BitWidth() == 64
				if want := !(n == 200_000 && wide); took != want {
					t.Errorf("%s: plainColumn took the column: %v, want %v", name, took, want)
				}
			}
		}
	}
}

// batchRows is the warehouse's row group size.
const batchRows = 64 * 1024

// dictionaryType is how the warehouse writes string columns.
var dictionaryType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

// writeSchema is schema with its string columns as dictionaries.
func writeSchema(schema *arrow.Schema) *arrow.Schema {
	fields := schema.Fields()
	for i, f := range fields {
		if f.Type.ID() == arrow.STRING {
			fields[i].Type = dictionaryType
		}
	}
	md := schema.Metadata()
	return arrow.NewSchema(fields, &md)
}

// testProps are the warehouse's writer properties (warehouse's
// writerProperties): zstd at level 1, statistics, dictionaries for
// strings only.
func testProps(schema *arrow.Schema) *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(1),
		parquet.WithDictionaryDefault(true),
		parquet.WithStats(true),
		parquet.WithMaxRowGroupLength(batchRows),
		parquet.WithCreatedBy("cpi"),
	}
	for _, f := range schema.Fields() {
		if f.Type.ID() != arrow.STRING {
			opts = append(opts, parquet.WithDictionaryFor(f.Name, false))
		}
	}
	return parquet.NewWriterProperties(opts...)
}

// arrowParquetWriter is arrow-go's own file writer with the properties,
// schema and key/value metadata Create uses.
func arrowParquetWriter(schema *arrow.Schema, f *os.File) (*file.Writer, error) {
	props := testProps(schema)
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

// writeRowGroupSerial writes rec column after column through arrow-go's
// column writers straight into the file: the reference.
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
			defLevels = DefinitionLevels(defLevels[:0], col)
			levels = defLevels
		}
		if d, ok := col.(*array.Dictionary); ok {
			_, err = WriteDictionaryColumn(ctx, cw, d, levels)
		} else {
			err = pqarrow.WriteArrowToColumn(ctx, cw, col, levels, nil, nullable[i])
		}
		if err != nil {
			return err
		}
	}
	return rgw.Close()
}
