package pqfile

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// This file writes a record batch as one Parquet row group, column by
// column: dictionary and number columns by dictChunk and plainColumn
// (file.go), the rest (and what those leave) through the Parquet column
// writers themselves rather than pqarrow's FileWriter. The difference
// from pqarrow is in dictionary columns: pqarrow
// works out which dictionary entries a batch uses by hashing every index
// (compute.UniqueArray), for the column statistics; that was a third of
// the CPU time of ingesting a national study. Here the entries used are
// marked in one pass over the indices, which are long runs of the same
// value in our tables. Everything else (encodings, statistics, page
// layout) is the column writer's own, so the files are byte for byte
// those pqarrow writes (TestWriteRowGroupMatchesPqarrow), except that a
// null's index slot is not counted as a use: pqarrow's minimum and
// maximum can name a value no row holds.

// dictionaryEncoder is the part of the column writer's dictionary encoder
// used to seed it with a batch's dictionary.
type dictionaryEncoder interface {
	Encoding() parquet.Encoding
	PutDictionary(values arrow.Array) error
	NumEntries() int
}

// WriteRowGroup writes rec as the next row group of the file; nullable[i]
// says whether column i may hold nulls (the Parquet column is OPTIONAL).
//
// The columns are encoded and compressed side by side, by up to
// GOMAXPROCS goroutines, each into its own buffer (Parquet's buffered row
// group); closing the row group then writes the chunks in column order,
// so the file is byte for byte the one written column after column
// (TestWriteRowGroupParallelSameBytes). Every goroutine has ended when it
// returns.
func (w *Writer) WriteRowGroup(ctx context.Context, rec arrow.RecordBatch, nullable []bool) error {
	cols, rg, err := w.rowGroup()
	if err != nil {
		return err
	}
	arrs := rec.Columns()
	if len(arrs) != len(cols) {
		return errors.New("a record of another width than the file's")
	}
	errs := make([]error, len(arrs))
	next := make(chan int, len(arrs))
	for i := range arrs {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(arrs))
	for len(w.scratch) < workers {
		w.scratch = append(w.scratch, new(chunkScratch))
	}
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := w.scratch[g] // this goroutine's, kept for the next row group
			for i := range next {
				if err := ctx.Err(); err != nil {
					errs[i] = err
					continue
				}
				errs[i] = w.writeColumn(ctx, &cols[i], arrs[i], nullable[i], &sc.levels, sc)
			}
			sc.trim()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("column %s: %w", rec.ColumnName(i), err)
		}
	}
	return w.closeRowGroup(cols, rg)
}

// writeColumn writes a column chunk of a row group: a dictionary column
// by dictChunk where it can, the rest by arrow-go's column writer.
func (w *Writer) writeColumn(ctx context.Context, c *pqColumn, col arrow.Array, nullable bool, defLevels *[]int16, sc *chunkScratch) error {
	var levels []int16
	if nullable {
		*defLevels = DefinitionLevels((*defLevels)[:0], col)
		levels = *defLevels
	}
	d, isDict := col.(*array.Dictionary)
	var done bool
	var err error
	if isDict {
		done, err = w.dictChunk(c, d, levels, sc)
	} else {
		done, err = w.plainColumn(c, col, levels, sc)
	}
	if done || err != nil {
		return err
	}
	c.cw = file.NewColumnChunkWriter(c.meta, c.pager, w.props)
	viaIndices := false
	if isDict {
		viaIndices, err = WriteDictionaryColumn(ctx, c.cw, d, levels)
	} else {
		err = pqarrow.WriteArrowToColumn(ctx, c.cw, col, levels, nil, nullable)
	}
	if err != nil {
		return err
	}
	return flushLastPage(c.cw, viaIndices, col.Len())
}

// pageFlusher is the column writers' FlushCurrentPage: it encodes the
// values buffered since the last page (run-length encoding of dictionary
// indices, compression) into a data page held in the column's own buffer.
type pageFlusher interface{ FlushCurrentPage() error }

// flushLastPage cuts the column chunk's last data page now, on the calling
// goroutine. The row group's Close would cut it anyway, but it closes the
// columns one after another: a row group of BatchRows rows is one page per
// column, so nearly all the encoding and compression of a file was done
// serially there. The page is the same page, cut after the same writes,
// so the file's bytes do not change (TestWriteRowGroupParallelSameBytes).
// It must not cut an empty page, which Close would not write: a page is
// pending when the encoder holds values (plain encoders) or, for an
// active dictionary encoder, when it has seen raw values since its last
// page or took n > 0 indices directly (viaIndices: that path never cuts a
// page by size, so all n are pending). A column whose pending values are
// all nulls is left to Close.
func flushLastPage(cw file.ColumnChunkWriter, viaIndices bool, n int) error {
	f, ok := cw.(pageFlusher)
	if !ok {
		return nil
	}
	enc := cw.CurrentEncoder()
	pending := false
	switch enc.Encoding() {
	case parquet.Encodings.PlainDict, parquet.Encodings.RLEDict:
		raw, ok := enc.(interface{ ObservedRawSize() int64 })
		pending = (ok && raw.ObservedRawSize() > 0) || (viaIndices && n > 0)
	case parquet.Encodings.Plain:
		pending = enc.EstimatedDataEncodedSize() > 0
	}
	if !pending {
		return nil
	}
	return f.FlushCurrentPage()
}

// DefinitionLevels of a flat nullable column: 1 for a value, 0 for a null.
func DefinitionLevels(levels []int16, a arrow.Array) []int16 {
	n := a.Len()
	if cap(levels) < n {
		levels = make([]int16, n)
	}
	levels = levels[:n]
	if a.NullN() == 0 {
		for i := range levels {
			levels[i] = 1
		}
		return levels
	}
	for i := range levels {
		if a.IsValid(i) {
			levels[i] = 1
		} else {
			levels[i] = 0
		}
	}
	return levels
}

// WriteDictionaryColumn writes a dictionary array as the column chunk's
// dictionary and its indices, as pqarrow does, with statistics over the
// entries the indices use.
//
// viaIndices says the indices went to the encoder as they are
// (WriteDictIndices), not as strings (the fallbacks of writeDense).
func WriteDictionaryColumn(ctx context.Context, cw file.ColumnChunkWriter, d *array.Dictionary, defLevels []int16) (viaIndices bool, err error) {
	dict := d.Dictionary()
	enc, ok := any(cw.CurrentEncoder()).(dictionaryEncoder)
	if !ok || (enc.Encoding() != parquet.Encodings.PlainDict && enc.Encoding() != parquet.Encodings.RLEDict) || enc.NumEntries() != 0 {
		return false, writeDense(ctx, cw, d, defLevels)
	}
	if err := enc.PutDictionary(dict); err != nil {
		return false, err
	}
	if enc.NumEntries() != dict.Len() {
		// The dictionary repeats a value: its indices would not match the
		// encoder's, so the chunk is written plain.
		cw.FallbackToPlain()
		return false, writeDense(ctx, cw, d, defLevels)
	}
	indices, ok := d.Indices().(*array.Int32)
	if !ok {
		return false, errors.New("dictionary indices are not int32")
	}
	if stats := cw.PageStatistics(); stats != nil {
		used, err := usedEntries(dict, indices)
		if err != nil {
			return false, err
		}
		nonNull := indices.Len() - indices.NullN()
		stats.IncNulls(int64(max(len(defLevels)-nonNull, 0)))
		stats.IncNumValues(int64(nonNull))
		err = stats.UpdateFromArrow(used, false)
		used.Release()
		if err != nil {
			return false, err
		}
	}
	return true, cw.WriteDictIndices(indices, defLevels, nil)
}

// usedEntries is the dictionary narrowed to the entries the indices use
// (the dictionary itself, retained, when they use all of it).
func usedEntries(dict arrow.Array, indices *array.Int32) (arrow.Array, error) {
	seen := make([]bool, dict.Len())
	count := 0
	last := int32(-1)
	nulls := indices.NullN() > 0
	// Once every entry is used, the rest cannot change the answer: a batch
	// built by RowWriter uses all of its dictionary.
	for i, v := range indices.Int32Values() {
		if v == last || (nulls && indices.IsNull(i)) {
			continue
		}
		if v < 0 || int(v) >= len(seen) {
			return nil, errors.New("dictionary index out of range")
		}
		last = v
		if !seen[v] {
			seen[v] = true
			count++
			if count == len(seen) {
				break
			}
		}
	}
	if count == dict.Len() {
		dict.Retain()
		return dict, nil
	}
	strs, ok := dict.(*array.String)
	if !ok {
		return nil, errors.New("dictionary values are not strings")
	}
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	for i, ok := range seen {
		if ok {
			b.Append(strs.Value(i))
		}
	}
	return b.NewArray(), nil
}

// writeDense writes a dictionary array's values plainly.
func writeDense(ctx context.Context, cw file.ColumnChunkWriter, d *array.Dictionary, defLevels []int16) error {
	strs, ok := d.Dictionary().(*array.String)
	if !ok {
		return errors.New("dictionary values are not strings")
	}
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	for i := 0; i < d.Len(); i++ {
		if d.IsNull(i) {
			b.AppendNull()
			continue
		}
		b.Append(strs.Value(d.GetValueIndex(i)))
	}
	dense := b.NewArray()
	defer dense.Release()
	return pqarrow.WriteArrowToColumn(ctx, cw, dense, defLevels, nil, defLevels != nil)
}
