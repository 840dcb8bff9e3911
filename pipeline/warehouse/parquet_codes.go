package warehouse

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// This file reads flat columns straight from their pages, for a reader
// that only counts: a string column becomes one small integer code per row
// (the caller's code of its dictionary entry, looked up once per entry),
// an int32 column its values. Nothing is built row by row (no Arrow
// arrays, no dictionary builders): the indices are decoded from the pages'
// RLE/bit-packed runs into a buffer reused from row group to row group.
// It understands what cpi's writer writes (data pages V1; dictionary or
// plain pages; required columns and optional ones without repetition); on
// anything else it returns ErrCodesUnsupported before calling back, so
// the caller can take a general route (ColumnScan).

// ErrCodesUnsupported: a file holds pages ReadCodes does not decode.
var ErrCodesUnsupported = errors.New("column pages of a kind the code reader does not decode")

// CodeColumn is a column ReadCodes reads: a string column when Lookup is
// set (Lookup gives a value's code; it is called from the goroutines that
// decode the columns, so several Lookups may run at once), a double
// column when Float is set, else an int32 column.
type CodeColumn struct {
	Name   string
	Lookup func(string) int32
	Float  bool
}

// CodeBatch is one row group's columns: Vals[i] holds column i's codes or
// values (Floats[i] for a double column), Valid[i] whether each row is not
// null (nil: none is null); a null's slot is 0 for a number column and
// Lookup("") for a string one. All are overwritten by the next row group.
type CodeBatch struct {
	Rows   int
	Vals   [][]int32
	Floats [][]float64
	Valid  [][]bool
}

// ReadCodes calls fn with every row group of files (checked against
// their table's schema, as ColumnScan does), file after file in the order
// given. Before reading any row group it makes sure every file's chunks
// of the columns are of kinds it decodes (ErrCodesUnsupported).
func ReadCodes(ctx context.Context, files []string, cols []CodeColumn, fn func(b *CodeBatch) error) error {
	for _, path := range files {
		if err := withCodeFile(path, cols, func(*file.Reader, []int) error { return nil }); err != nil {
			return err
		}
	}
	b := &CodeBatch{Vals: make([][]int32, len(cols)), Floats: make([][]float64, len(cols)), Valid: make([][]bool, len(cols))}
	// One decoder per column: the columns are decoded side by side.
	decs, fdecs := make([]codeDecoder[int32], len(cols)), make([]codeDecoder[float64], len(cols))
	errs := make([]error, len(cols))
	workers := min(runtime.GOMAXPROCS(0), len(cols))
	for _, path := range files {
		err := withCodeFile(path, cols, func(pf *file.Reader, idx []int) error {
			for rg := range pf.NumRowGroups() {
				if err := ctx.Err(); err != nil {
					return err
				}
				r := pf.RowGroup(rg)
				b.Rows = int(r.NumRows())
				next := make(chan int, len(cols))
				for i := range cols {
					next <- i
				}
				close(next)
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						for i := range next {
							errs[i] = nil
							pr, err := r.GetColumnPageReader(idx[i])
							if err != nil {
								errs[i] = err
								continue
							}
							optional := pf.MetaData().Schema.Column(idx[i]).MaxDefinitionLevel() > 0
							switch c := cols[i]; {
							case c.Float:
								b.Floats[i], b.Valid[i], errs[i] = fdecs[i].chunk(pr, b.Rows, optional, plainFloat64s, 0, b.Floats[i], b.Valid[i])
							case c.Lookup != nil:
								plain := func(out []int32, data []byte, n int) ([]int32, error) { return plainStrings(out, data, n, c.Lookup) }
								b.Vals[i], b.Valid[i], errs[i] = decs[i].chunk(pr, b.Rows, optional, plain, c.Lookup(""), b.Vals[i], b.Valid[i])
							default:
								b.Vals[i], b.Valid[i], errs[i] = decs[i].chunk(pr, b.Rows, optional, plainInt32s, 0, b.Vals[i], b.Valid[i])
							}
							pr.Close()
						}
					})
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						return fmt.Errorf("%s: column %s: %w", filepath.Base(path), cols[i].Name, err)
					}
				}
				if err := fn(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// withCodeFile opens a table file, checks its schema and that its chunks
// of cols are of kinds ReadCodes decodes, and calls fn with it and the
// columns' positions.
func withCodeFile(path string, cols []CodeColumn, fn func(pf *file.Reader, idx []int) error) error {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	defer pf.Close()
	md := pf.MetaData()
	plain, err := pqarrow.FromParquet(md.Schema, &pqarrow.ArrowReadProperties{}, md.KeyValueMetadata())
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	name := ""
	if v := md.KeyValueMetadata().FindValue(MetaTable); v != nil {
		name = *v
	}
	if err := checkTableSchema(name, plain); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	idx := make([]int, len(cols))
	for i, c := range cols {
		idx[i] = md.Schema.ColumnIndexByName(c.Name)
		if idx[i] < 0 {
			return fmt.Errorf("%s: column %s missing", filepath.Base(path), c.Name)
		}
		descr := md.Schema.Column(idx[i])
		want := parquet.Types.Int32
		if c.Lookup != nil {
			want = parquet.Types.ByteArray
		} else if c.Float {
			want = parquet.Types.Double
		}
		if descr.PhysicalType() != want || descr.MaxRepetitionLevel() != 0 || descr.MaxDefinitionLevel() > 1 {
			return fmt.Errorf("%s: column %s: %w", filepath.Base(path), c.Name, ErrCodesUnsupported)
		}
		for rg := range pf.NumRowGroups() {
			cc, err := md.RowGroup(rg).ColumnChunk(idx[i])
			if err != nil {
				return fmt.Errorf("%s: %w", filepath.Base(path), err)
			}
			if cc.CryptoMetadata() != nil {
				return fmt.Errorf("%s: column %s: %w", filepath.Base(path), c.Name, ErrCodesUnsupported)
			}
			for _, e := range cc.Encodings() {
				switch e {
				case parquet.Encodings.Plain, parquet.Encodings.PlainDict, parquet.Encodings.RLEDict, parquet.Encodings.RLE:
				default:
					return fmt.Errorf("%s: column %s: %w", filepath.Base(path), c.Name, ErrCodesUnsupported)
				}
			}
		}
	}
	return fn(pf, idx)
}

// codeDecoder holds the scratch of ReadCodes for a column of codes or
// values of type T, reused from chunk to chunk.
type codeDecoder[T int32 | float64] struct {
	dict    []T     // the current chunk's dictionary
	levels  []int32 // one page's definition levels
	indices []int32 // one page's dictionary indices
	values  []T     // one page's non-null values
}

// chunk decodes one column chunk of n rows into vals (and valid, for an
// optional column); plain decodes PLAIN values (dictionary pages and
// pages written plain), null fills a null's slot.
func (d *codeDecoder[T]) chunk(pr file.PageReader, n int, optional bool, plain func(out []T, data []byte, n int) ([]T, error), null T, vals []T, valid []bool) ([]T, []bool, error) {
	vals = vals[:0]
	if optional {
		valid = valid[:0]
	} else {
		valid = nil
	}
	d.dict = d.dict[:0]
	haveDict := false
	for pr.Next() {
		pg := pr.Page()
		switch pg.Type() {
		case file.PageTypeDictionaryPage:
			if e := parquet.Encoding(pg.Encoding()); e != parquet.Encodings.Plain && e != parquet.Encodings.PlainDict {
				return nil, nil, ErrCodesUnsupported
			}
			var err error
			d.dict, err = plain(d.dict[:0], pg.Data(), int(pg.NumValues()))
			if err != nil {
				return nil, nil, err
			}
			haveDict = true
		case file.PageTypeDataPage:
			p, ok := pg.(*file.DataPageV1)
			if !ok {
				return nil, nil, ErrCodesUnsupported
			}
			data := p.Data()
			nv := int(p.NumValues())
			defined := nv
			if optional {
				if p.DefinitionLevelEncoding() != parquet.Encodings.RLE || len(data) < 4 {
					return nil, nil, ErrCodesUnsupported
				}
				l := int(binary.LittleEndian.Uint32(data))
				if l > len(data)-4 {
					return nil, nil, errors.New("definition levels overrun the page")
				}
				var err error
				d.levels, err = rleHybrid(d.levels[:0], data[4:4+l], 1, nv)
				if err != nil {
					return nil, nil, fmt.Errorf("definition levels: %w", err)
				}
				data = data[4+l:]
				defined = 0
				for _, v := range d.levels {
					defined += int(v)
				}
			}
			var err error
			switch parquet.Encoding(p.Encoding()) {
			case parquet.Encodings.PlainDict, parquet.Encodings.RLEDict:
				if !haveDict || len(data) < 1 {
					return nil, nil, errors.New("dictionary-encoded page without a dictionary")
				}
				d.indices, err = rleHybrid(d.indices[:0], data[1:], int(data[0]), defined)
				if err != nil {
					return nil, nil, fmt.Errorf("dictionary indices: %w", err)
				}
				dict, values := d.dict, d.values[:0]
				for _, ix := range d.indices {
					if uint32(ix) >= uint32(len(dict)) {
						return nil, nil, errors.New("dictionary index out of range")
					}
					values = append(values, dict[ix])
				}
				d.values = values
			case parquet.Encodings.Plain:
				d.values, err = plain(d.values[:0], data, defined)
				if err != nil {
					return nil, nil, err
				}
			default:
				return nil, nil, ErrCodesUnsupported
			}
			if !optional {
				vals = append(vals, d.values...)
				continue
			}
			k := 0
			for _, lv := range d.levels {
				if lv == 1 {
					vals = append(vals, d.values[k])
					valid = append(valid, true)
					k++
				} else {
					vals = append(vals, null)
					valid = append(valid, false)
				}
			}
		default:
			return nil, nil, ErrCodesUnsupported
		}
	}
	if err := pr.Err(); err != nil {
		return nil, nil, err
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

// rleHybrid decodes n values of Parquet's RLE/bit-packing hybrid encoding
// of the given bit width (at most 32).
func rleHybrid(out []int32, data []byte, width, n int) ([]int32, error) {
	if width < 0 || width > 32 {
		return nil, errors.New("bit width out of range")
	}
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
			for range count {
				out = append(out, int32(v))
			}
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
		for range count {
			at := pos >> 3
			var w uint64
			if at+8 <= len(packed) {
				w = binary.LittleEndian.Uint64(packed[at:])
			} else {
				for b := 0; at+b < len(packed); b++ {
					w |= uint64(packed[at+b]) << (8 * b)
				}
			}
			out = append(out, int32((w>>(pos&7))&mask))
			pos += width
		}
	}
	return out, nil
}
