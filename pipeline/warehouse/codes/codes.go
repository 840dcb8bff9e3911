// Package codes reads flat columns of cpi's tables straight from their
// Parquet pages, for readers that only count (see Read).
package codes

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// This file reads flat columns straight from their pages, for a reader
// that only counts: a string column becomes one small integer code per row
// (the caller's code of its dictionary entry, looked up once per entry),
// a number column its values. Nothing is built row by row (no Arrow
// arrays, no dictionary builders): the indices are decoded from the pages'
// RLE/bit-packed runs into a buffer reused from row group to row group,
// and the pages themselves are read and decompressed into buffers kept
// from chunk to chunk (pages.go), not by arrow-go's page reader.
// It understands what cpi's writer writes (data pages V1; dictionary or
// plain pages; required columns and optional ones without repetition;
// the codecs arrow-go registers); on anything else (data pages V2, other
// encodings, encryption, chunks of writers older than PARQUET-816's fix)
// it reads the row group through pqarrow instead.

// errCodesUnsupported: a column chunk holds pages read does not
// decode; the row group is then read through pqarrow (scanRowGroup).
var errCodesUnsupported = errors.New("column pages of a kind the code reader does not decode")

// Column is a column Read reads: a string column when Lookup is
// set (Lookup gives a value's code; it is called from the goroutines that
// decode the columns, so several Lookups may run at once, one column's at a
// time), a double column when Float is set, a bool column when Bool is set
// (1 true, 0 false in Vals), else an int32 column.
type Column struct {
	Name   string
	Lookup func(string) int32
	Float  bool
	Bool   bool
}

// Batch is one row group's columns: Vals[i] holds column i's codes or
// values (Floats[i] for a double column), Valid[i] whether each row is not
// null (nil: none is null); a null's slot is 0 for a number column and
// Lookup("") for a string one. All are overwritten by the next row group.
type Batch struct {
	Rows   int
	Vals   [][]int32
	Floats [][]float64
	Valid  [][]bool
	file   string // the file's name, for fn's error
}

// Read calls fn with every row group of files (each checked against
// its table's schema, as ColumnScan does), file after file in the order
// given. A row group whose pages it does not decode itself (not written by
// cpi's writer: data pages V2, other encodings, encryption) is read
// through pqarrow instead, with the same result (TestReadMatchesColumnScan).
func Read(ctx context.Context, files []string, cols []Column, fn func(b *Batch) error) error {
	return read(ctx, files, cols, false, false, fn)
}

// Rows is the number of rows of files, from their footers (for a
// caller that sizes its columns once).
func Rows(files []string) (int, error) {
	n := 0
	for _, path := range files {
		pf, err := file.OpenParquetFile(path, false)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		n += int(pf.NumRows())
		pf.Close()
	}
	return n, nil
}

// ReadAhead is Read, but decodes each row group while fn takes the one
// before (in a second Batch): a column's Lookup may run while fn runs,
// though still one call at a time per column, in the order of the rows.
func ReadAhead(ctx context.Context, files []string, cols []Column, fn func(b *Batch) error) error {
	return read(ctx, files, cols, false, true, fn)
}

// read is Read (ReadAhead when ahead is set), every row group through
// pqarrow when scan is set.
func read(ctx context.Context, files []string, cols []Column, scan, ahead bool, fn func(b *Batch) error) error {
	newBatch := func() *Batch {
		return &Batch{Vals: make([][]int32, len(cols)), Floats: make([][]float64, len(cols)), Valid: make([][]bool, len(cols))}
	}
	if !ahead {
		return decodeAll(ctx, files, cols, scan, newBatch(), func(b *Batch) (*Batch, error) { return b, fn(b) })
	}
	// The decoding goroutine hands a row group over on ready and takes
	// the other Batch back from free; stop ends it after fn's error.
	ready, free, stop := make(chan *Batch), make(chan *Batch, 1), make(chan struct{})
	free <- newBatch()
	errStopped := errors.New("stopped")
	var decodeErr error
	go func() {
		defer close(ready)
		decodeErr = decodeAll(ctx, files, cols, scan, newBatch(), func(b *Batch) (*Batch, error) {
			select {
			case ready <- b:
			case <-stop:
				return nil, errStopped
			}
			select {
			case nb := <-free:
				return nb, nil
			case <-stop:
				return nil, errStopped
			}
		})
	}()
	var err error
	for b := range ready {
		if err != nil {
			continue
		}
		if err = fn(b); err != nil {
			close(stop)
			err = fmt.Errorf("%s: %w", b.file, err)
			continue
		}
		free <- b
	}
	if err != nil {
		return err
	}
	return decodeErr
}

// decodeAll decodes every row group of files into a Batch and hands it to
// emit, which gives back the Batch to fill next.
func decodeAll(ctx context.Context, files []string, cols []Column, scan bool, b *Batch, emit func(*Batch) (*Batch, error)) error {
	// One decoder per column: the columns are decoded side by side.
	decs, fdecs := make([]codeDecoder[int32], len(cols)), make([]codeDecoder[float64], len(cols))
	pages := make([]pageReader, len(cols))
	errs := make([]error, len(cols))
	workers := min(runtime.GOMAXPROCS(0), len(cols))
	for _, path := range files {
		err := withCodeFile(path, cols, func(f *os.File, pf *file.Reader, idx []int, fast []bool) error {
			for rg := range pf.NumRowGroups() {
				if err := ctx.Err(); err != nil {
					return err
				}
				r := pf.RowGroup(rg)
				b.Rows, b.file = int(r.NumRows()), filepath.Base(path)
				slow := scan || !fast[rg]
				if !slow {
					next := make(chan int, len(cols))
					for i := range cols {
						next <- i
					}
					close(next)
					var wg sync.WaitGroup
					for range workers {
						wg.Go(func() {
							for i := range next {
								optional := pf.MetaData().Schema.Column(idx[i]).MaxDefinitionLevel() > 0
								errs[i] = decodeCodeChunk(f, r, idx[i], optional, cols[i], b, i, &pages[i], &decs[i], &fdecs[i])
							}
						})
					}
					wg.Wait()
					for i, err := range errs {
						if errors.Is(err, errCodesUnsupported) {
							slow = true
						} else if err != nil {
							return fmt.Errorf("column %s: %w", cols[i].Name, err)
						}
					}
				}
				if slow {
					if err := scanRowGroup(ctx, pf, rg, idx, cols, b); err != nil {
						return err
					}
				}
				var err error
				if b, err = emit(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
	}
	return nil
}

// decodeCodeChunk decodes column i (the file's column c) of row group r
// of the file f into b, its pages read by pr.
func decodeCodeChunk(f io.ReaderAt, r *file.RowGroupReader, c int, optional bool, col Column, b *Batch, i int, pr *pageReader, dec *codeDecoder[int32], fdec *codeDecoder[float64]) error {
	cc, err := r.MetaData().ColumnChunk(c)
	if err != nil {
		return err
	}
	if err := pr.reset(f, cc); err != nil {
		return err
	}
	switch {
	case col.Float:
		b.Floats[i], b.Valid[i], err = fdec.chunk(pr, b.Rows, optional, plainFloat64s, 0, b.Floats[i], b.Valid[i])
	case col.Lookup != nil:
		plain := func(out []int32, data []byte, n int) ([]int32, error) { return plainStrings(out, data, n, col.Lookup) }
		b.Vals[i], b.Valid[i], err = dec.chunk(pr, b.Rows, optional, plain, col.Lookup(""), b.Vals[i], b.Valid[i])
	case col.Bool:
		b.Vals[i], b.Valid[i], err = dec.chunk(pr, b.Rows, optional, plainBools, 0, b.Vals[i], b.Valid[i])
	default:
		b.Vals[i], b.Valid[i], err = dec.chunk(pr, b.Rows, optional, plainInt32s, 0, b.Vals[i], b.Valid[i])
	}
	return err
}

// scanRowGroup reads row group rg of pf through pqarrow into b.
func scanRowGroup(ctx context.Context, pf *file.Reader, rg int, idx []int, cols []Column, b *Batch) error {
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(max(b.Rows, 1))}, memory.DefaultAllocator)
	if err != nil {
		return err
	}
	rr, err := fr.GetRecordReader(ctx, idx, []int{rg})
	if err != nil {
		return err
	}
	defer rr.Release()
	for i := range cols {
		b.Vals[i], b.Floats[i] = b.Vals[i][:0], b.Floats[i][:0]
		b.Valid[i] = nil
		if pf.MetaData().Schema.Column(idx[i]).MaxDefinitionLevel() > 0 {
			b.Valid[i] = make([]bool, 0, b.Rows)
		}
	}
	for rr.Next() {
		rec := rr.RecordBatch()
		for i, c := range cols {
			a := rec.Column(i)
			if b.Valid[i] != nil {
				for r := range a.Len() {
					b.Valid[i] = append(b.Valid[i], a.IsValid(r))
				}
			}
			switch a := a.(type) {
			case *array.String:
				if c.Lookup == nil {
					return fmt.Errorf("column %s is a string column", c.Name)
				}
				last, lastC := "", c.Lookup("")
				for r := range a.Len() {
					v := a.Value(r) // "" for a null
					if r == 0 || v != last {
						last, lastC = v, c.Lookup(v)
					}
					b.Vals[i] = append(b.Vals[i], lastC)
				}
			case *array.Boolean:
				if !c.Bool {
					return fmt.Errorf("column %s is a bool column", c.Name)
				}
				for r := range a.Len() {
					b.Vals[i] = append(b.Vals[i], int32(btoi(a.IsValid(r) && a.Value(r))))
				}
			case *array.Int32:
				if c.Lookup != nil || c.Float || c.Bool {
					return fmt.Errorf("column %s is an int32 column", c.Name)
				}
				for r := range a.Len() {
					b.Vals[i] = append(b.Vals[i], a.Value(r)*int32(btoi(a.IsValid(r))))
				}
			case *array.Float64:
				if !c.Float {
					return fmt.Errorf("column %s is a double column", c.Name)
				}
				for r := range a.Len() {
					v := a.Value(r)
					if a.IsNull(r) {
						v = 0
					}
					b.Floats[i] = append(b.Floats[i], v)
				}
			default:
				return fmt.Errorf("column %s is not a string, bool, int32 or double column", c.Name)
			}
		}
	}
	if err := rr.Err(); err != nil {
		return err
	}
	for i, c := range cols {
		if n := len(b.Vals[i]) + len(b.Floats[i]); n != b.Rows || c.Float && len(b.Vals[i]) > 0 {
			return fmt.Errorf("column %s: %d values in a row group of %d rows", c.Name, n, b.Rows)
		}
	}
	return nil
}

func btoi(ok bool) int {
	if ok {
		return 1
	}
	return 0
}

// withCodeFile opens a table file, checks its schema, and calls fn with
// it (as a file and as read by arrow-go), the columns' positions and which
// of its row groups hold only column chunks of kinds read decodes itself.
func withCodeFile(path string, cols []Column, fn func(f *os.File, pf *file.Reader, idx []int, fast []bool) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	pf, err := file.NewParquetReader(f)
	if err != nil {
		f.Close()
		return err
	}
	defer pf.Close() // closes f
	if err := warehouse.CheckFile(pf); err != nil {
		return err
	}
	md := pf.MetaData()
	idx := make([]int, len(cols))
	fast := make([]bool, pf.NumRowGroups())
	for rg := range fast {
		// PARQUET-816: an old writer's chunk sizes leave out a header.
		fast[rg] = !md.WriterVersion().LessThan(metadata.Parquet816FixedVersion)
	}
	for i, c := range cols {
		idx[i] = md.Schema.ColumnIndexByName(c.Name)
		if idx[i] < 0 {
			return fmt.Errorf("column %s missing", c.Name)
		}
		descr := md.Schema.Column(idx[i])
		want := parquet.Types.Int32
		if c.Lookup != nil {
			want = parquet.Types.ByteArray
		} else if c.Float {
			want = parquet.Types.Double
		} else if c.Bool {
			want = parquet.Types.Boolean
		}
		if descr.PhysicalType() != want || descr.MaxRepetitionLevel() != 0 || descr.MaxDefinitionLevel() > 1 {
			return fmt.Errorf("column %s is not a flat %s column", c.Name, want)
		}
		for rg := range fast {
			cc, err := md.RowGroup(rg).ColumnChunk(idx[i])
			if err != nil {
				return err
			}
			if _, err := compress.GetCodec(cc.Compression()); err != nil || cc.CryptoMetadata() != nil {
				fast[rg] = false
			}
			for _, e := range cc.Encodings() {
				switch e {
				case parquet.Encodings.Plain, parquet.Encodings.PlainDict, parquet.Encodings.RLEDict, parquet.Encodings.RLE:
				default:
					fast[rg] = false
				}
			}
		}
	}
	return fn(f, pf, idx, fast)
}

// codeDecoder holds the scratch of Read for a column of codes or
// values of type T, reused from chunk to chunk.
type codeDecoder[T int32 | float64] struct {
	dict   []T     // the current chunk's dictionary
	levels []int32 // one page's definition levels
}

// chunk decodes one column chunk of n rows into vals (and valid, for an
// optional column); plain decodes PLAIN values (dictionary pages and
// pages written plain), null fills a null's slot.
func (d *codeDecoder[T]) chunk(pr *pageReader, n int, optional bool, plain func(out []T, data []byte, n int) ([]T, error), null T, vals []T, valid []bool) ([]T, []bool, error) {
	vals = vals[:0]
	if optional {
		valid = valid[:0]
	} else {
		valid = nil
	}
	d.dict = d.dict[:0]
	haveDict := false
	for {
		ok, err := pr.next()
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			break
		}
		switch pr.typ {
		case pageDictionary:
			if e := pr.encoding; e != parquet.Encodings.Plain && e != parquet.Encodings.PlainDict {
				return nil, nil, errCodesUnsupported
			}
			d.dict, err = plain(d.dict[:0], pr.data, pr.numValues)
			if err != nil {
				return nil, nil, err
			}
			haveDict = true
		case pageData:
			data := pr.data
			nv := pr.numValues
			defined := nv
			if optional {
				if pr.defLevels != parquet.Encodings.RLE || len(data) < 4 {
					return nil, nil, errCodesUnsupported
				}
				l := int(binary.LittleEndian.Uint32(data))
				if l > len(data)-4 {
					return nil, nil, errors.New("definition levels overrun the page")
				}
				d.levels, err = rleHybrid(d.levels[:0], data[4:4+l], 1, nv, []int32{0, 1}) // levels map to themselves
				if err != nil {
					return nil, nil, fmt.Errorf("definition levels: %w", err)
				}
				data = data[4+l:]
				defined = 0
				for _, v := range d.levels {
					defined += int(v)
				}
			}
			// The defined values straight into vals, then (with nulls)
			// spread out to their rows from the back, in place.
			at := len(vals)
			switch pr.encoding {
			case parquet.Encodings.PlainDict, parquet.Encodings.RLEDict:
				if !haveDict || len(data) < 1 {
					return nil, nil, errors.New("dictionary-encoded page without a dictionary")
				}
				if vals, err = rleHybrid(vals, data[1:], int(data[0]), at+defined, d.dict); err != nil {
					return nil, nil, fmt.Errorf("dictionary indices: %w", err)
				}
			case parquet.Encodings.Plain:
				if vals, err = plain(vals, data, defined); err != nil {
					return nil, nil, err
				}
			default:
				return nil, nil, errCodesUnsupported
			}
			if !optional {
				continue
			}
			valid = fill(valid, true, nv)
			if defined == nv {
				continue
			}
			vals = slices.Grow(vals, nv-defined)[:at+nv]
			k := at + defined - 1
			for j := nv - 1; j >= 0; j-- {
				if d.levels[j] == 0 {
					vals[at+j], valid[at+j] = null, false
					continue
				}
				vals[at+j] = vals[k]
				k--
			}
		case pageDataV2:
			return nil, nil, errCodesUnsupported
		}
	}
	if len(vals) != n {
		return nil, nil, fmt.Errorf("%d values in a chunk of %d rows", len(vals), n)
	}
	return vals, valid, nil
}

// plainStrings decodes n PLAIN byte arrays (4-byte length, bytes), each
// turned into a code by lookup, once per run of equal values.
func plainStrings(out []int32, data []byte, n int, lookup func(string) int32) ([]int32, error) {
	var last []byte
	lastC := int32(0)
	for k := range n {
		if len(data) < 4 {
			return nil, errors.New("plain values overrun the page")
		}
		l := int(binary.LittleEndian.Uint32(data))
		if l < 0 || l > len(data)-4 {
			return nil, errors.New("plain values overrun the page")
		}
		v := data[4 : 4+l]
		data = data[4+l:]
		if k == 0 || string(v) != string(last) {
			last, lastC = v, lookup(string(v))
		}
		out = append(out, lastC)
	}
	return out, nil
}

// plainBools decodes n PLAIN bools (bit-packed, the first in the lowest
// bit) as 1 or 0.
func plainBools(out []int32, data []byte, n int) ([]int32, error) {
	if len(data) < (n+7)/8 {
		return nil, errors.New("plain values overrun the page")
	}
	for k := range n {
		out = append(out, int32(data[k>>3]>>(k&7)&1))
	}
	return out, nil
}

// plainInt32s decodes n PLAIN int32s.
func plainInt32s(out []int32, data []byte, n int) ([]int32, error) {
	if len(data) < 4*n {
		return nil, errors.New("plain values overrun the page")
	}
	for k := range n {
		out = append(out, int32(binary.LittleEndian.Uint32(data[4*k:])))
	}
	return out, nil
}

// plainFloat64s decodes n PLAIN doubles.
func plainFloat64s(out []float64, data []byte, n int) ([]float64, error) {
	if len(data) < 8*n {
		return nil, errors.New("plain values overrun the page")
	}
	for k := range n {
		out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(data[8*k:])))
	}
	return out, nil
}

// fill appends count copies of x to out: long runs by doubling copies.
func fill[T any](out []T, x T, count int) []T {
	at := len(out)
	out = slices.Grow(out, count)[:at+count]
	run := out[at:]
	k := min(count, 8)
	for j := range k {
		run[j] = x
	}
	for ; k < count; k *= 2 {
		copy(run[k:], run[:k])
	}
	return out
}

// rleHybrid decodes n values of Parquet's RLE/bit-packing hybrid encoding
// of the given bit width (at most 32), each an index into dict, and
// appends dict[index] to out (an RLE run's value looked up once).
func rleHybrid[T int32 | float64](out []T, data []byte, width, n int, dict []T) ([]T, error) {
	if width < 0 || width > 32 {
		return nil, errors.New("bit width out of range")
	}
	errRange := errors.New("dictionary index out of range")
	byteWidth := (width + 7) / 8
	for len(out) < n {
		h, k := binary.Uvarint(data)
		if k <= 0 {
			return nil, errors.New("truncated run header")
		}
		data = data[k:]
		if h&1 == 0 { // an RLE run: a count, then one value
			count := int(h >> 1)
			if len(data) < byteWidth || count > n-len(out) {
				return nil, errors.New("run overruns the page")
			}
			var v uint32
			for b := range byteWidth {
				v |= uint32(data[b]) << (8 * b)
			}
			data = data[byteWidth:]
			if v >= uint32(len(dict)) {
				return nil, errRange
			}
			out = fill(out, dict[v], count)
			continue
		}
		groups := int(h >> 1) // bit-packed: groups of 8 values, LSB first
		size := groups * width
		if size > len(data) {
			return nil, errors.New("bit-packed run overruns the page")
		}
		packed := data[:size]
		data = data[size:]
		count := min(groups*8, n-len(out)) // the last group may be padding
		mask := uint64(1)<<width - 1
		pos := 0 // bit position in packed
		at0 := len(out)
		out = slices.Grow(out, count)[:at0+count]
		dst := out[at0:]
		j := 0
		if width <= 16 { // a group of 8 values is width bytes: two loads
			nd := uint64(len(dict))
			for ; j+8 <= len(dst) && j/8*width+16 <= len(packed); j += 8 {
				at := j / 8 * width
				lo, hi := binary.LittleEndian.Uint64(packed[at:]), binary.LittleEndian.Uint64(packed[at+8:])
				g := dst[j : j+8 : j+8]
				for k := range g {
					b := uint(k * width)
					var ix uint64
					if b >= 64 {
						ix = hi >> (b - 64) & mask
					} else {
						ix = (lo>>b | hi<<(64-b)) & mask
					}
					if ix >= nd {
						return nil, errRange
					}
					g[k] = dict[ix]
				}
			}
			pos = j * width
		}
		for ; j < len(dst); j++ {
			at := pos >> 3
			var w uint64
			if at+8 <= len(packed) {
				w = binary.LittleEndian.Uint64(packed[at:])
			} else {
				for b := 0; at+b < len(packed); b++ {
					w |= uint64(packed[at+b]) << (8 * b)
				}
			}
			ix := (w >> (pos & 7)) & mask
			if ix >= uint64(len(dict)) {
				return nil, errRange
			}
			dst[j] = dict[ix]
			pos += width
		}
	}
	return out, nil
}
