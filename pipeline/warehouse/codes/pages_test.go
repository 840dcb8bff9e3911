package codes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// otherWriters are the page kinds arrow-go's own writer gives (cpi's
// writer gives one data page V1 per chunk, dictionary or plain): several
// pages per chunk, plain strings, a dictionary that falls back to plain
// mid-chunk, data pages V2, other codecs.
var otherWriters = []struct {
	name  string
	props []parquet.WriterProperty
}{
	{"v1 small pages zstd", []parquet.WriterProperty{parquet.WithDataPageSize(4096), parquet.WithCompression(compress.Codecs.Zstd)}},
	{"v1 plain snappy", []parquet.WriterProperty{parquet.WithDictionaryDefault(false), parquet.WithDataPageSize(8192), parquet.WithCompression(compress.Codecs.Snappy)}},
	{"v1 dictionary fallback gzip", []parquet.WriterProperty{parquet.WithDictionaryPageSizeLimit(2000), parquet.WithDataPageSize(8192), parquet.WithCompression(compress.Codecs.Gzip)}},
	{"v1 uncompressed", []parquet.WriterProperty{parquet.WithCompression(compress.Codecs.Uncompressed)}},
	{"v2 zstd", []parquet.WriterProperty{parquet.WithDataPageVersion(parquet.DataPageV2), parquet.WithDataPageSize(8192), parquet.WithCompression(compress.Codecs.Zstd)}},
}

// writeScoresWith writes rows of a scores table with arrow-go's writer
// (pqarrow) and props, in row groups of 5,000 rows: runs of 3 rows per
// study_id, random waves, a value with a fifth null, a required int32, a
// bool a third true.
func writeScoresWith(t *testing.T, path string, rows int, props []parquet.WriterProperty) {
	t.Helper()
	study, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	schema := warehouse.ArrowSchema(warehouse.Env{Study: study, Version: "test"}, "scores", nil)
	rb := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer rb.Release()
	rng := rand.New(rand.NewPCG(3, 4))
	for r := range rows {
		for i, f := range schema.Fields() {
			switch bld := rb.Field(i).(type) {
			case *array.StringBuilder:
				switch f.Name {
				case "study_id":
					bld.Append(fmt.Sprintf("T1-%06d", r/3))
				case "wave":
					bld.Append(study.Waves[rng.IntN(len(study.Waves))])
				default:
					bld.Append([]string{"a", "b", "c"}[rng.IntN(3)])
				}
			case *array.Float64Builder:
				if f.Name == "value" && rng.IntN(5) == 0 {
					bld.AppendNull()
				} else {
					bld.Append(rng.NormFloat64())
				}
			case *array.Int32Builder:
				bld.Append(int32(rng.IntN(40)))
			case *array.BooleanBuilder:
				bld.Append(rng.IntN(3) == 0)
			default:
				t.Fatalf("column %s of an unexpected type %s", f.Name, f.Type)
			}
		}
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(schema, f, parquet.NewWriterProperties(append(props, parquet.WithMaxRowGroupLength(5000))...), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPageReaderMatchesArrow reads every column chunk of files written
// by cpi's writer and by arrow-go's (otherWriters) with pageReader and
// with arrow-go's page reader: the same pages, of the same type, number
// of values and encodings, with the same bytes once decompressed (a data
// page V2 only its type: it is left to pqarrow).
func TestPageReaderMatchesArrow(t *testing.T) {
	dir := t.TempDir()
	paths := writeScores(t, filepath.Join(dir, "cpi"), warehouse.BatchRows+99)
	for i, w := range otherWriters {
		p := filepath.Join(dir, fmt.Sprintf("other%d.parquet", i))
		writeScoresWith(t, p, 12000, w.props)
		paths = append(paths, p)
	}
	kinds := map[string]int{}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		pf, err := file.NewParquetReader(f)
		if err != nil {
			t.Fatal(err)
		}
		var pr pageReader
		for rg := range pf.NumRowGroups() {
			r := pf.RowGroup(rg)
			for c := range pf.MetaData().Schema.NumColumns() {
				cc, err := r.MetaData().ColumnChunk(c)
				if err != nil {
					t.Fatal(err)
				}
				if err := pr.reset(f, cc); err != nil {
					t.Fatal(err)
				}
				apr, err := r.GetColumnPageReader(c)
				if err != nil {
					t.Fatal(err)
				}
				where := fmt.Sprintf("%s row group %d column %d", filepath.Base(path), rg, c)
				for k := 0; ; k++ {
					ok, err := pr.next()
					if err != nil {
						t.Fatalf("%s page %d: %v", where, k, err)
					}
					if aok := apr.Next(); ok != aok {
						t.Fatalf("%s page %d: a page %v, arrow-go's %v (%v)", where, k, ok, aok, apr.Err())
					}
					if !ok {
						break
					}
					pg := apr.Page()
					if pr.typ != int32(pg.Type()) {
						t.Fatalf("%s page %d: type %d, arrow-go's %d", where, k, pr.typ, pg.Type())
					}
					if pr.typ == pageDataV2 {
						kinds["data page V2"]++
						continue
					}
					if pr.numValues != int(pg.NumValues()) || pr.encoding != parquet.Encoding(pg.Encoding()) || !bytes.Equal(pr.data, pg.Data()) {
						t.Fatalf("%s page %d: %d values encoded %s (%d bytes), arrow-go's %d %s (%d bytes)", where, k,
							pr.numValues, pr.encoding, len(pr.data), pg.NumValues(), parquet.Encoding(pg.Encoding()), len(pg.Data()))
					}
					if p, ok := pg.(*file.DataPageV1); ok && pr.defLevels != p.DefinitionLevelEncoding() {
						t.Fatalf("%s page %d: definition levels %s, arrow-go's %s", where, k, pr.defLevels, p.DefinitionLevelEncoding())
					}
					kinds[fmt.Sprintf("type %d %s %s", pr.typ, pr.encoding, cc.Compression())]++
				}
				apr.Close()
			}
		}
		pf.Close()
	}
	// Every kind the writers give was met.
	for _, k := range []string{"type 2 PLAIN ZSTD", "type 0 RLE_DICTIONARY ZSTD", "type 0 PLAIN ZSTD", "type 0 PLAIN SNAPPY",
		"type 0 PLAIN GZIP", "type 0 RLE_DICTIONARY GZIP", "type 0 RLE_DICTIONARY UNCOMPRESSED", "data page V2"} {
		if kinds[k] == 0 {
			t.Errorf("no page of kind %s among %v", k, kinds)
		}
	}
}

// TestReadOtherWriters reads the files of otherWriters with Read, on the
// page route (data pages V1; V2 through pqarrow) and with every row group
// through pqarrow: the same codes, numbers and nulls, row for row, and
// the values written.
func TestReadOtherWriters(t *testing.T) {
	const rows = 12000
	codes := map[string]int32{}
	var mu sync.Mutex                // the columns' Lookups may run at once
	lookup := func(s string) int32 { // each string its number, whichever route meets it first
		mu.Lock()
		defer mu.Unlock()
		if c, ok := codes[s]; ok {
			return c
		}
		codes[s] = int32(len(codes))
		return codes[s]
	}
	cols := []Column{{Name: "study_id", Lookup: lookup}, {Name: "wave", Lookup: lookup}, {Name: "value", Float: true},
		{Name: "items_answered"}, {Name: "prorated", Bool: true}}
	type flat struct {
		ids, waves, items, pro []int32
		value                  []float64
		valid                  []bool
	}
	readAll := func(files []string, slow bool) (flat, error) {
		var out flat
		err := read(context.Background(), files, cols, slow, false, func(b *Batch) error {
			out.ids = append(out.ids, b.Vals[0]...)
			out.waves = append(out.waves, b.Vals[1]...)
			out.value = append(out.value, b.Floats[2]...)
			out.valid = append(out.valid, b.Valid[2]...)
			out.items = append(out.items, b.Vals[3]...)
			out.pro = append(out.pro, b.Vals[4]...)
			return nil
		})
		return out, err
	}
	for i, w := range otherWriters {
		path := filepath.Join(t.TempDir(), "data.parquet")
		writeScoresWith(t, path, rows, w.props)
		fast, err := readAll([]string{path}, false)
		if err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		slow, err := readAll([]string{path}, true)
		if err != nil {
			t.Fatalf("%s through pqarrow: %v", w.name, err)
		}
		if len(fast.ids) != rows || !slices.Equal(fast.ids, slow.ids) || !slices.Equal(fast.waves, slow.waves) ||
			!slices.Equal(fast.items, slow.items) || !slices.Equal(fast.pro, slow.pro) || !slices.Equal(fast.valid, slow.valid) ||
			!slices.EqualFunc(fast.value, slow.value, func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }) {
			t.Errorf("%s (%d): the page route and pqarrow's differ (%d rows, %d)", w.name, i, len(fast.ids), len(slow.ids))
		}
		// The ids as written: runs of 3 rows.
		for r := range fast.ids {
			if fast.ids[r] != codes[fmt.Sprintf("T1-%06d", r/3)] {
				t.Fatalf("%s: row %d's study_id code %d", w.name, r, fast.ids[r])
			}
		}
		nulls := 0
		for r, ok := range fast.valid {
			if !ok {
				nulls++
				if fast.value[r] != 0 {
					t.Errorf("%s: row %d a null with value %v", w.name, r, fast.value[r])
				}
			}
		}
		if nulls < rows/10 || nulls > rows*3/10 {
			t.Errorf("%s: %d nulls in %d rows, want about a fifth", w.name, nulls, rows)
		}
	}
}

// TestReadAheadStops: fn's error ends ReadAhead, which returns it (with
// the file's name) and calls fn no more; so does a cancelled context.
func TestReadAheadStops(t *testing.T) {
	files := writeScores(t, t.TempDir(), 4*warehouse.BatchRows)
	cols := []Column{{Name: "study_id", Lookup: func(string) int32 { return 0 }}, {Name: "value", Float: true}}
	stop := fmt.Errorf("enough")
	calls := 0
	err := ReadAhead(context.Background(), files, cols, func(b *Batch) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 || !strings.HasPrefix(err.Error(), "data.parquet: ") {
		t.Errorf("ReadAhead after fn's error: %v after %d calls, want %v after 2", err, calls, stop)
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls = 0
	err = ReadAhead(ctx, files, cols, func(b *Batch) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls > 2 {
		t.Errorf("ReadAhead cancelled: %v after %d calls", err, calls)
	}
}

// TestReadNullableColumns writes a participants table of three row groups
// with cpi's writer: age_band a dictionary string a third null (runs of
// nulls too), living_alone an int32 a quarter null, diagnosis_group never
// null though nullable, withdrawn a required bool. Read, on the page route
// and through pqarrow, gives the values written, Lookup("") and 0 for a
// null, and the nulls.
func TestReadNullableColumns(t *testing.T) {
	study, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	env := warehouse.Env{Study: study, Version: "test"}
	w, err := warehouse.OpenWarehouse(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	schema := warehouse.ArrowSchema(env, "participants", nil)
	tf, err := tx.CreateTableFile(schema, "participants", "trust", "T1", "data")
	if err != nil {
		t.Fatal(err)
	}
	tb := study.Tables.Table("participants")
	c := func(n string) int { return warehouse.ColIndex(tb, n) }
	rw := warehouse.NewRowWriter(schema, tf)
	const rows = 2*warehouse.BatchRows + 501
	bands := []string{"18-25", "26-40", "41-65", "66+"}
	type row struct {
		band      string // "" for null
		alone     int32
		aloneOK   bool
		withdrawn int32
		diagnosis string
	}
	rng := rand.New(rand.NewPCG(11, 12))
	want := make([]row, rows)
	for r := range want {
		x := &want[r]
		if r%1000 >= 900 || rng.IntN(3) != 0 { // rows 900–999 of each thousand all null
			x.band = bands[rng.IntN(len(bands))]
		}
		if r%1000 >= 900 {
			x.band = ""
		}
		x.alone, x.aloneOK = int32(rng.IntN(2)), rng.IntN(4) != 0
		x.withdrawn = int32(rng.IntN(2))
		x.diagnosis = bands[r%3]
		rw.Str(c("study_id"), fmt.Sprintf("T1-%06d", r))
		rw.Str(c("trust"), "T1")
		rw.Str(c("team"), "T1a")
		rw.Str(c("arm"), "control")
		rw.NullStr(c("age_band"), x.band)
		rw.Null(c("gender"))
		rw.Null(c("ethnicity"))
		rw.Int32(c("living_alone"), x.alone, x.aloneOK)
		rw.NullStr(c("diagnosis_group"), x.diagnosis)
		rw.Bool(c("withdrawn"), x.withdrawn == 1)
		rw.Date(c("baseline_date"), 0, false)
		rw.Date(c("followup_date"), 0, false)
		rw.Bool(c("interviewed_baseline"), true)
		rw.Bool(c("interviewed_followup"), true)
		if err := rw.RowDone(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := warehouse.TableFiles(tx.Dir, "participants")
	if err != nil {
		t.Fatal(err)
	}
	code := map[string]int32{"": -1, "18-25": 1, "26-40": 2, "41-65": 3, "66+": 4}
	lookup := func(s string) int32 { return code[s] }
	cols := []Column{{Name: "age_band", Lookup: lookup}, {Name: "living_alone"}, {Name: "diagnosis_group", Lookup: lookup}, {Name: "withdrawn", Bool: true}}
	for _, slow := range []bool{false, true} {
		at := 0
		err := read(context.Background(), files, cols, slow, false, func(b *Batch) error {
			for i := range b.Rows {
				x := want[at]
				if b.Vals[0][i] != code[x.band] || b.Valid[0][i] != (x.band != "") {
					return fmt.Errorf("row %d age_band: %d (valid %v), want %d", at, b.Vals[0][i], b.Valid[0][i], code[x.band])
				}
				if b.Valid[1][i] != x.aloneOK || b.Vals[1][i] != x.alone*int32(btoi(x.aloneOK)) {
					return fmt.Errorf("row %d living_alone: %d (valid %v), want %d (valid %v)", at, b.Vals[1][i], b.Valid[1][i], x.alone, x.aloneOK)
				}
				if b.Vals[2][i] != code[x.diagnosis] || !b.Valid[2][i] || b.Valid[3] != nil || b.Vals[3][i] != x.withdrawn {
					return fmt.Errorf("row %d diagnosis_group or withdrawn", at)
				}
				at++
			}
			return nil
		})
		if err != nil || at != rows {
			t.Fatalf("through pqarrow %v: %v after %d rows of %d", slow, err, at, rows)
		}
	}
}
