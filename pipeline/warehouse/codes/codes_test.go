package codes

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// TestRLEHybrid decodes the Parquet specification's example of a
// bit-packed run (0 to 7 at width 3: 0x88 0xC6 0xFA) after an RLE run
// (five 4s), and a bit-packed run's padding is not read as values; with
// a dictionary, indices become its entries and one past it is an error;
// runs of any length follow what out holds already.
func TestRLEHybrid(t *testing.T) {
	data := []byte{5 << 1, 4, 1<<1 | 1, 0x88, 0xC6, 0xFA}
	identity := []int32{0, 1, 2, 3, 4, 5, 6, 7}
	got, err := rleHybrid(nil, data, 3, 13, identity)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{4, 4, 4, 4, 4, 0, 1, 2, 3, 4, 5, 6, 7}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	got, err = rleHybrid(nil, data, 3, 8, identity) // the bit-packed group's last 3 values are padding
	if err != nil || !slices.Equal(got, []int32{4, 4, 4, 4, 4, 0, 1, 2}) {
		t.Errorf("8 values: %v, %v", got, err)
	}
	if _, err := rleHybrid(nil, data[:4], 3, 13, identity); err == nil {
		t.Error("a truncated bit-packed run decoded without an error")
	}
	// Long RLE runs (filled by doubling copies) of every length to 70.
	for count := 1; count <= 70; count++ {
		run := append(binary.AppendUvarint(nil, uint64(count<<1)), 6)
		got, err := rleHybrid([]int32{9}, append(run, data...), 3, 1+count+13, identity)
		want := append(append([]int32{9}, slices.Repeat([]int32{6}, count)...), 4, 4, 4, 4, 4, 0, 1, 2, 3, 4, 5, 6, 7)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("a run of %d 6s: %v, %v", count, got, err)
		}
	}
	// Through a dictionary: each index looked up; one past it is an error.
	dict := []float64{0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5}
	if f, err := rleHybrid(nil, data, 3, 13, dict); err != nil || f[0] != 4.5 || f[12] != 7.5 {
		t.Errorf("through a dictionary: %v, %v", f, err)
	}
	if _, err := rleHybrid(nil, data, 3, 13, dict[:7]); err == nil {
		t.Error("an index past the dictionary decoded without an error")
	}
}

// TestReadMatchesColumnScan writes a scores table of three row
// groups (runs of study_id, random waves, instruments and scales, a
// nullable double with a fifth null, one never null, a required int32, a
// bool a third true) and reads it
// back: Read' codes are the lookups of ColumnScan's strings, its
// numbers and nulls ColumnScan's, row for row, whether it decodes the
// pages itself or reads the row groups through pqarrow (its route for
// pages it does not decode).
func TestReadMatchesColumnScan(t *testing.T) {
	const rows = 2*warehouse.BatchRows + 777
	files := writeScores(t, t.TempDir(), rows)
	codes := map[string]int32{"": 0} // a code per string, numbered as first met
	lookup := func(s string) int32 {
		v, ok := codes[s]
		if !ok {
			t.Fatalf("lookup of an unexpected value %q", s)
		}
		return v
	}
	names := []string{"study_id", "wave", "instrument", "scale", "value", "items_answered", "prorated"}
	// ColumnScan first, numbering the strings (lookup then only reads).
	type row struct {
		str    [4]int32
		value  float64
		vOK    bool
		items  int32
		itemOK bool
		pro    int32
	}
	var want []row
	scan := warehouse.NewColumnScan(context.Background(), files, names, nil)
	for {
		ok, err := scan.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		val, items, pro := scan.Cols[4].(*array.Float64), scan.Cols[5].(*array.Int32), scan.Cols[6].(*array.Boolean)
		for i := range val.Len() {
			var r row
			for k := range 4 {
				s := scan.Cols[k].(*array.String).Value(i)
				if _, ok := codes[s]; !ok {
					codes[s] = int32(len(codes))
				}
				r.str[k] = codes[s]
			}
			r.vOK, r.itemOK = val.IsValid(i), items.IsValid(i)
			if r.vOK {
				r.value = val.Value(i)
			}
			if r.itemOK {
				r.items = items.Value(i)
			}
			if pro.Value(i) {
				r.pro = 1
			}
			want = append(want, r)
		}
	}
	scan.Close()
	if len(want) != rows {
		t.Fatalf("ColumnScan read %d rows, want %d", len(want), rows)
	}
	cols := []Column{{Name: "study_id", Lookup: lookup}, {Name: "wave", Lookup: lookup}, {Name: "instrument", Lookup: lookup},
		{Name: "scale", Lookup: lookup}, {Name: "value", Float: true}, {Name: "items_answered"}, {Name: "prorated", Bool: true}, {Name: "chg", Float: true}}
	// The file twice: a second file's row groups follow the first's.
	twice := append(slices.Clone(files), files...)
	if n, err := Rows(twice); err != nil || n != 2*rows {
		t.Errorf("Rows: %d, %v; want %d", n, err, 2*rows)
	}
	for _, mode := range []struct{ slow, ahead bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		at, groups := 0, 0
		err := read(context.Background(), twice, cols, mode.slow, mode.ahead, func(b *Batch) error {
			groups++
			for i := range b.Rows {
				w := want[at%rows]
				for k := range 4 {
					if b.Vals[k][i] != w.str[k] {
						return fmt.Errorf("row %d column %s: code %d, want %d", at, names[k], b.Vals[k][i], w.str[k])
					}
				}
				if b.Valid[4][i] != w.vOK || w.vOK && math.Float64bits(b.Floats[4][i]) != math.Float64bits(w.value) {
					return fmt.Errorf("row %d value: %v (valid %v), want %v (valid %v)", at, b.Floats[4][i], b.Valid[4][i], w.value, w.vOK)
				}
				if b.Valid[5] != nil || !w.itemOK || b.Vals[5][i] != w.items {
					return fmt.Errorf("row %d items_answered: %v, want %v (a required column)", at, b.Vals[5][i], w.items)
				}
				if b.Valid[6] != nil || b.Vals[6][i] != w.pro {
					return fmt.Errorf("row %d prorated: %v, want %v (a required column)", at, b.Vals[6][i], w.pro)
				}
				if !b.Valid[7][i] || b.Floats[7][i] != float64(at%rows)/4 {
					return fmt.Errorf("row %d chg: %v (valid %v), want %v", at, b.Floats[7][i], b.Valid[7][i], float64(at%rows)/4)
				}
				at++
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%+v: %v", mode, err)
		}
		if at != 2*rows || groups != 6 {
			t.Errorf("%+v: %d rows in %d row groups, want %d in 6", mode, at, groups, 2*rows)
		}
	}
}

// writeScores writes a scores table of rows rows (row groups of
// warehouse.BatchRows) into a new warehouse at dir: runs of 7 rows per
// study_id, random waves, instruments and scales, a nullable double
// with a fifth null, one never null (chg, r/4), a required int32, a bool
// a third true.
func writeScores(t testing.TB, dir string, rows int) []string {
	t.Helper()
	study, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	env := warehouse.Env{Study: study, Version: "test"}
	w, err := warehouse.OpenWarehouse(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	schema := warehouse.ArrowSchema(env, "scores", nil)
	tf, err := tx.CreateTableFile(schema, "scores", "trust", "T1", "data")
	if err != nil {
		t.Fatal(err)
	}
	tb := study.Tables.Table("scores")
	c := func(n string) int { return warehouse.ColIndex(tb, n) }
	rw := warehouse.NewRowWriter(schema, tf)
	rng := rand.New(rand.NewPCG(1, 2))
	for r := range rows {
		rw.Str(c("study_id"), fmt.Sprintf("T1-%06d", r/7))
		rw.Str(c("wave"), study.Waves[rng.IntN(len(study.Waves))])
		rw.Str(c("instrument"), []string{"rguk", "qpr", "csri"}[rng.IntN(3)])
		rw.Str(c("scale"), []string{"total", "metric", "cost"}[rng.IntN(3)])
		rw.Str(c("trust"), "T1")
		rw.Str(c("team"), "T1a")
		rw.Str(c("arm"), "control")
		rw.Float64(c("value"), rng.NormFloat64()*10, rng.IntN(5) != 0)
		rw.Int32(c("items_answered"), int32(rng.IntN(30)), true)
		rw.Int32(c("items_total"), 30, true)
		rw.Bool(c("prorated"), rng.IntN(3) == 0)
		rw.Float64(c("base"), 0, false)
		rw.Float64(c("chg"), float64(r)/4, true) // nullable, never null
		if err := rw.RowDone(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := warehouse.TableFiles(tx.Dir, "scores")
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// BenchmarkRead reads the columns compare reads of a scores table of 16
// row groups (a million rows): study_id, wave, instrument, scale, value.
func BenchmarkRead(b *testing.B) {
	files := writeScores(b, b.TempDir(), 16*warehouse.BatchRows)
	code := func(string) int32 { return 1 }
	cols := []Column{{Name: "study_id", Lookup: code}, {Name: "wave", Lookup: code}, {Name: "instrument", Lookup: code},
		{Name: "scale", Lookup: code}, {Name: "value", Float: true}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n := 0
		if err := Read(context.Background(), files, cols, func(bt *Batch) error { n += bt.Rows; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != 16*warehouse.BatchRows {
			b.Fatalf("%d rows", n)
		}
	}
}

// TestRLEHybridWidths decodes random runs (RLE and bit-packed, of every
// width 0 to 20, with groups that end short of a word, and a last group's
// padding) against the values encoded, bit by bit by a plain encoder here.
func TestRLEHybridWidths(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for width := 0; width <= 20; width++ {
		size := 1 << width
		dict := make([]int32, size)
		for i := range dict {
			dict[i] = int32(i*3 + 1)
		}
		var data []byte
		var want []int32
		for run := range 40 {
			if run < 39 && rng.IntN(3) == 0 { // an RLE run (the last is bit-packed)
				count, v := 1+rng.IntN(30), rng.IntN(size)
				data = binary.AppendUvarint(data, uint64(count<<1))
				for b := range (width + 7) / 8 {
					data = append(data, byte(v>>(8*b)))
				}
				want = append(want, slices.Repeat([]int32{dict[v]}, count)...)
				continue
			}
			groups := 1 + rng.IntN(5)
			data = binary.AppendUvarint(data, uint64(groups<<1|1))
			bits := make([]byte, groups*width)
			for k := range groups * 8 {
				v := rng.IntN(size)
				for b := range width {
					if v>>b&1 == 1 {
						pos := k*width + b
						bits[pos/8] |= 1 << (pos % 8)
					}
				}
				want = append(want, dict[v])
			}
			data = append(data, bits...)
		}
		// The last bit-packed group may be padding: ask for fewer values.
		for _, n := range []int{len(want), len(want) - 3} {
			got, err := rleHybrid(nil, data, width, n, dict)
			if err != nil || !slices.Equal(got, want[:n]) {
				t.Fatalf("width %d, %d values: %v", width, n, err)
			}
		}
		if width > 0 { // one entry short: an index past the dictionary
			if _, err := rleHybrid(nil, data, width, len(want), dict[:size-1]); err == nil && slices.Contains(want, dict[size-1]) {
				t.Errorf("width %d: an index past the dictionary decoded without an error", width)
			}
		}
	}
}

// BenchmarkRLEHybrid decodes 64Ki dictionary indices of width 13 (a
// row group's study_ids), bit-packed, through a dictionary.
func BenchmarkRLEHybrid(b *testing.B) {
	const n, width = 1 << 16, 13
	dict := make([]int32, 1<<width)
	rng := rand.New(rand.NewPCG(9, 10))
	data := binary.AppendUvarint(nil, uint64(n/8<<1|1))
	bits := make([]byte, n/8*width)
	for k := range n {
		v := rng.IntN(1 << width)
		for j := range width {
			if v>>j&1 == 1 {
				bits[(k*width+j)/8] |= 1 << ((k*width + j) % 8)
			}
		}
	}
	data = append(data, bits...)
	out := make([]int32, 0, n)
	b.SetBytes(n * 4)
	for b.Loop() {
		var err error
		if out, err = rleHybrid(out[:0], data, width, n, dict); err != nil {
			b.Fatal(err)
		}
	}
}
