package warehouse

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// rowsTestRow is one row of every column type RowWriter writes.
type rowsTestRow struct {
	code, label string // label "" is null
	n           int32
	nOK         bool
	big         int64
	x           float64
	xOK         bool
	ok          bool
	day         int32
	dayOK       bool
	at          time.Time
}

// A RowWriter, whose batches are Go slices reused from batch to batch,
// writes the very file of the same rows built batch by batch with Arrow
// builders (dictionaries in order of first appearance, from a map) and
// written as records: more than rowBatches batches, so that every batch
// is reused; nulls in some batches only, and a last short batch.
func TestRowWriterMatchesBuilders(t *testing.T) {
	md := arrow.NewMetadata([]string{MetaTable}, []string{"test"})
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "code", Type: arrow.BinaryTypes.String},
		{Name: "label", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "big", Type: arrow.PrimitiveTypes.Int64},
		{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	}, &md)
	rng := rand.New(rand.NewPCG(8, 1))
	rows := make([]rowsTestRow, 5*BatchRows+123)
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range rows {
		nulls := (i/BatchRows)%2 == 1 // batches 1 and 3 have nulls
		r := &rows[i]
		r.code = fmt.Sprintf("P%06d", i/37)
		if !nulls || rng.IntN(5) > 0 {
			r.label = []string{"a", "b", "c"}[rng.IntN(3)]
		}
		r.n, r.nOK = int32(rng.IntN(100)), !nulls || rng.IntN(4) > 0
		r.big = rng.Int64()
		r.x, r.xOK = rng.NormFloat64(), !nulls || rng.IntN(3) > 0
		r.ok = rng.IntN(2) == 0
		r.day, r.dayOK = int32(19000+rng.IntN(300)), !nulls || rng.IntN(6) > 0
		r.at = base.Add(time.Duration(i) * time.Second)
	}
	w, err := OpenWarehouse(filepath.Join(t.TempDir(), "w"), true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Ours.
	tf, err := tx.CreateTableFile(schema, "t", "", "", "rows")
	if err != nil {
		t.Fatal(err)
	}
	rw := NewRowWriter(schema, tf)
	for _, r := range rows {
		rw.Str(0, r.code)
		rw.NullStr(1, r.label)
		rw.Int32(2, r.n, r.nOK)
		rw.Int64(3, r.big)
		rw.Float64(4, r.x, r.xOK)
		rw.Bool(5, r.ok)
		rw.Date(6, r.day, r.dayOK)
		rw.Timestamp(7, r.at)
		if err := rw.RowDone(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	if rw.made > rowBatches {
		t.Errorf("%d batches made, want at most %d", rw.made, rowBatches)
	}
	// The reference: builders, a batch at a time.
	ref, err := tx.CreateTableFile(schema, "t", "", "", "builders")
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.DefaultAllocator
	ws := WriteSchema(schema)
	for at := 0; at < len(rows); at += BatchRows {
		batch := rows[at:min(at+BatchRows, len(rows))]
		dict := func(get func(rowsTestRow) string) arrow.Array {
			seen := map[string]int32{}
			sb := array.NewStringBuilder(mem)
			ib := array.NewInt32Builder(mem)
			for _, r := range batch {
				v := get(r)
				if v == "" {
					ib.AppendNull()
					continue
				}
				j, ok := seen[v]
				if !ok {
					j = int32(len(seen))
					seen[v] = j
					sb.Append(v)
				}
				ib.Append(j)
			}
			d, ix := sb.NewArray(), ib.NewArray()
			out := array.NewDictionaryArray(DictionaryType, ix, d)
			d.Release()
			ix.Release()
			sb.Release()
			ib.Release()
			return out
		}
		nb := array.NewInt32Builder(mem)
		bb := array.NewInt64Builder(mem)
		xb := array.NewFloat64Builder(mem)
		ob := array.NewBooleanBuilder(mem)
		db := array.NewDate32Builder(mem)
		tb := array.NewTimestampBuilder(mem, schema.Field(7).Type.(*arrow.TimestampType))
		for _, r := range batch {
			if r.nOK {
				nb.Append(r.n)
			} else {
				nb.AppendNull()
			}
			bb.Append(r.big)
			if r.xOK {
				xb.Append(r.x)
			} else {
				xb.AppendNull()
			}
			ob.Append(r.ok)
			if r.dayOK {
				db.Append(arrow.Date32(r.day))
			} else {
				db.AppendNull()
			}
			tb.Append(arrow.Timestamp(r.at.UnixMicro()))
		}
		cols := []arrow.Array{
			dict(func(r rowsTestRow) string { return r.code }), dict(func(r rowsTestRow) string { return r.label }),
			nb.NewArray(), bb.NewArray(), xb.NewArray(), ob.NewArray(), db.NewArray(), tb.NewArray(),
		}
		rec := array.NewRecordBatch(ws, cols, int64(len(batch)))
		for _, c := range cols {
			c.Release()
		}
		for _, b := range []array.Builder{nb, bb, xb, ob, db, tb} {
			b.Release()
		}
		if err := ref.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := ref.Close(); err != nil {
		t.Fatal(err)
	}
	a, errA := os.ReadFile(tf.final)
	b, errB := os.ReadFile(ref.final)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if len(a) < 1<<20 || !bytes.Equal(a, b) {
		t.Fatalf("RowWriter's file %d bytes, the builders' %d: not the same file", len(a), len(b))
	}
}
