package pqfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// A file is written the way arrow-go's file.Writer writes one with
// buffered row groups (the same metadata builders, page writers and
// column writers, so the same bytes), except for the dictionary columns:
// their pages are encoded here (dictChunk). arrow-go's column writer
// copies every index into its encoder, hashes the dictionary into a memo
// table and run-length encodes the indices one method call per value;
// those were about a fifth of the CPU time of a national ingest. The
// pages are the ones it would write (TestWriteRowGroupParallelSameBytes,
// TestDictChunkMatchesColumnWriter).

// magic begins and ends a Parquet file.
var magic = []byte("PAR1")

// Writer is a Parquet file being written, row group by row group.
type Writer struct {
	f         *os.File
	sink      *tellWriter
	props     *parquet.WriterProperties
	meta      *metadata.FileMetaDataBuilder
	rowGroups int
	open      bool
	scratch   []*chunkScratch // per goroutine of WriteRowGroup
}

// tellWriter counts the bytes written: page writers need the offset.
type tellWriter struct {
	w io.Writer
	n int64
}

func (t *tellWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	t.n += int64(n)
	return n, err
}

func (t *tellWriter) Tell() int64 { return t.n }

// Create starts a Parquet file of schema (strings plain; record batches
// may carry them as dictionaries) written with props, with the schema's
// metadata as the file's key/value metadata. Close closes f.
func Create(sc *arrow.Schema, props *parquet.WriterProperties, f *os.File) (*Writer, error) {
	pqschema, err := pqarrow.ToParquet(sc, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return nil, err
	}
	md := sc.Metadata()
	kv := make(metadata.KeyValueMetadata, 0, md.Len())
	for i := range md.Len() {
		if err := kv.Append(md.Keys()[i], md.Values()[i]); err != nil {
			return nil, err
		}
	}
	w := &Writer{f: f, sink: &tellWriter{w: f}, props: props, open: true}
	w.meta = metadata.NewFileMetadataBuilder(schema.NewSchema(pqschema.Root()), props, kv)
	if _, err := w.sink.Write(magic); err != nil {
		return nil, err
	}
	return w, nil
}

// Close writes the footer and closes the file.
func (w *Writer) Close() error {
	if !w.open {
		return nil
	}
	w.open = false
	err := w.footer()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (w *Writer) footer() error {
	md, err := w.meta.Snapshot()
	if err != nil {
		return err
	}
	n, err := md.WriteTo(w.sink, nil)
	if err != nil {
		return err
	}
	var tail [8]byte
	binary.LittleEndian.PutUint32(tail[:4], uint32(n))
	copy(tail[4:], magic)
	_, err = w.sink.Write(tail[:])
	return err
}

// pqColumn is one column chunk of a row group being written: by arrow-go's
// column writer (cw), or by dictChunk straight to its page writer.
type pqColumn struct {
	pager   file.PageWriter
	meta    *metadata.ColumnChunkMetaDataBuilder
	cw      file.ColumnChunkWriter // nil when dictChunk wrote the chunk
	rows    int
	written int64 // bytes dictChunk or plainColumn wrote
	plain   bool  // plainColumn wrote the chunk: no dictionary page
}

// rowGroup starts the next row group: a page writer per column, each
// buffering its chunk until closeRowGroup.
func (w *Writer) rowGroup() ([]pqColumn, *metadata.RowGroupMetaDataBuilder, error) {
	rg := w.meta.AppendRowGroup()
	cols := make([]pqColumn, rg.NumColumns())
	for i := range cols {
		meta := rg.NextColumnChunk()
		path := meta.Descr().Path()
		pager, err := file.NewPageWriter(w.sink, w.props.CompressionFor(path), w.props.CompressionLevelFor(path), meta,
			int16(w.rowGroups), int16(i), w.props.Allocator(), true, nil, nil)
		if err != nil {
			return nil, nil, err
		}
		cols[i] = pqColumn{pager: pager, meta: meta}
	}
	w.rowGroups++
	return cols, rg, nil
}

// closeRowGroup writes the chunks into the file in column order.
func (w *Writer) closeRowGroup(cols []pqColumn, rg *metadata.RowGroupMetaDataBuilder) error {
	rows := -1
	var total int64
	for i := range cols {
		c := &cols[i]
		n := c.rows
		if c.cw != nil {
			n = c.cw.RowsWritten()
		}
		if rows >= 0 && n != rows {
			return errors.New("row group columns of different lengths")
		}
		rows = n
	}
	for i := range cols {
		c := &cols[i]
		if c.cw != nil {
			if err := c.cw.Close(); err != nil {
				return err
			}
			total += c.cw.TotalBytesWritten()
			continue
		}
		if err := c.pager.Close(!c.plain, false); err != nil {
			return err
		}
		total += c.written
	}
	rg.SetNumRows(max(rows, 0))
	return rg.Finish(total, int16(w.rowGroups-1))
}

// chunkScratch is a goroutine's buffers for the columns it writes, kept
// from column to column and row group to row group (trim drops one grown
// past keepScratch).
type chunkScratch struct {
	seen   map[string]struct{}
	dict   []byte
	page   []byte
	comp   bytes.Buffer
	rle    rleEncoder
	levels []int16
}

// keepScratch is the largest buffer a Writer keeps between row groups:
// a row group of the warehouse's (64 Ki rows) fits.
const keepScratch = 1 << 20

func (sc *chunkScratch) trim() {
	if cap(sc.dict) > keepScratch {
		sc.dict = nil
	}
	if cap(sc.page) > keepScratch {
		sc.page = nil
	}
	if sc.comp.Cap() > keepScratch {
		sc.comp = bytes.Buffer{}
	}
	if len(sc.seen) > 1<<14 {
		sc.seen = nil
	}
	sc.rle.out = nil
}

// putLevels appends a data page's definition levels to sc.page: their
// length (4 bytes), then their runs at bit width 1.
func (sc *chunkScratch) putLevels(defLevels []int16) {
	start := len(sc.page)
	sc.page = append(sc.page, 0, 0, 0, 0)
	sc.rle.reset(sc.page, 1)
	sc.rle.putInt16(defLevels)
	sc.page = sc.rle.finish()
	binary.LittleEndian.PutUint32(sc.page[start:], uint32(len(sc.page)-start-4))
}

// dictChunk writes a dictionary column as its whole chunk: the dictionary
// page, one data page of run-length encoded indices (after the definition
// levels of a nullable column), statistics over the entries used. These
// are the pages writeDictionaryColumn and the column writer's Close give.
// It returns false, having written nothing, for what it leaves to the
// column writer: a dictionary that repeats a value or is empty, an index
// out of range, other page versions or settings.
func (w *Writer) dictChunk(c *pqColumn, d *array.Dictionary, defLevels []int16, sc *chunkScratch) (bool, error) {
	descr := c.meta.Descr()
	path := descr.Path()
	props := w.props
	strs, ok := d.Dictionary().(*array.String)
	indices, ok2 := d.Indices().(*array.Int32)
	if !ok || !ok2 || strs.Len() == 0 || props.DataPageVersion() != parquet.DataPageV1 ||
		!props.DictionaryEnabledFor(path) || !props.StatisticsEnabledFor(path) ||
		descr.PhysicalType() != parquet.Types.ByteArray || descr.MaxRepetitionLevel() != 0 ||
		(descr.MaxDefinitionLevel() > 0) != (defLevels != nil) || !c.pager.HasCompressor() {
		return false, nil
	}
	if sc.seen == nil {
		sc.seen = make(map[string]struct{})
	}
	clear(sc.seen)
	for i := range strs.Len() {
		s := strs.Value(i)
		if _, dup := sc.seen[s]; dup {
			return false, nil
		}
		sc.seen[s] = struct{}{}
	}
	used, err := usedEntries(strs, indices)
	if err != nil {
		return false, nil //nolint:nilerr // the column writer reports it
	}
	defer used.Release()

	mem := props.Allocator()
	page := metadata.NewStatistics(descr, mem)
	nonNull := indices.Len() - indices.NullN()
	page.IncNulls(int64(max(len(defLevels)-nonNull, 0)))
	page.IncNumValues(int64(nonNull))
	if err := page.UpdateFromArrow(used, false); err != nil {
		return false, err
	}

	// The dictionary page: each entry's length and bytes.
	sc.dict = sc.dict[:0]
	for i := range strs.Len() {
		s := strs.Value(i)
		sc.dict = binary.LittleEndian.AppendUint32(sc.dict, uint32(len(s)))
		sc.dict = append(sc.dict, s...)
	}
	dp := file.NewDictionaryPage(memory.NewBufferBytes(sc.dict), int32(strs.Len()), props.DictionaryPageEncoding())
	n1, err := c.pager.WriteDictionaryPage(dp)
	if err != nil {
		return false, err
	}

	// The data page: definition levels (their length first), then the
	// indices' bit width and their runs.
	levels := indices.Len()
	sc.page = sc.page[:0]
	if defLevels != nil {
		levels = len(defLevels)
		sc.putLevels(defLevels)
	}
	width := bitWidth(strs.Len())
	sc.page = append(sc.page, byte(width))
	sc.rle.reset(sc.page, width)
	vals := indices.Int32Values()
	if indices.NullN() == 0 {
		sc.rle.putInt32(vals)
	} else {
		for i, v := range vals {
			if indices.IsValid(i) {
				sc.rle.put(uint64(v))
			}
		}
	}
	sc.page = sc.rle.finish()

	n2, err := w.dataPage(c, page, sc, levels, props.DictionaryIndexEncoding(), levels > 0)
	if err != nil {
		return false, err
	}
	c.rows, c.written = levels, n1+n2
	return true, nil
}

// dataPage writes sc.page, the encoded levels and values of a column chunk's
// one data page (levels of them), compressed, with the page's statistics,
// and sets the chunk's statistics from them (when setStats and they are
// set), as arrow-go's column writer does: the bytes written.
func (w *Writer) dataPage(c *pqColumn, page metadata.TypedStatistics, sc *chunkScratch, levels int, enc parquet.Encoding, setStats bool) (int64, error) {
	props := w.props
	descr := c.meta.Descr()
	path := descr.Path()
	pageStats, err := page.Encode()
	if err != nil {
		return 0, err
	}
	maxStats := int(props.MaxStatsSizeFor(path))
	signed := descr.SortOrder() == schema.SortSIGNED
	pageStats.ApplyStatSizeLimits(maxStats)
	pageStats.Signed = signed
	chunk := metadata.NewStatistics(descr, props.Allocator())
	chunk.Merge(page)

	sc.comp.Reset()
	data := c.pager.Compress(&sc.comp, sc.page)
	dp := file.NewDataPageV1WithConfig(memory.NewBufferBytes(data), parquet.Encodings.RLE, parquet.Encodings.RLE, file.DataPageConfig{
		Num:              int32(levels),
		Encoding:         enc,
		UncompressedSize: int32(len(sc.page)),
		Stats:            pageStats,
	})
	n, err := c.pager.WriteDataPage(dp)
	if err != nil {
		return 0, err
	}
	chunkStats, err := chunk.Encode()
	if err != nil {
		return 0, err
	}
	chunkStats.ApplyStatSizeLimits(maxStats)
	chunkStats.Signed = signed
	if setStats && chunkStats.IsSet() {
		c.meta.SetStats(chunkStats)
	}
	return n, nil
}

// bitWidth is the width of a dictionary index (dictEncoder.BitWidth).
func bitWidth(entries int) int {
	switch entries {
	case 0:
		return 0
	case 1:
		return 1
	}
	w := 0
	for v := uint32(entries - 1); v != 0; v >>= 1 {
		w++
	}
	return w
}

// statsUpdater is the typed statistics' update by values (Update) and by
// values with a validity bitmap (UpdateSpaced).
type statsUpdater[T any] interface {
	Update(values []T, numNull int64)
	UpdateSpaced(values []T, validBits []byte, validBitsOffset, numNull int64)
}

// plainColumn writes a column of numbers (int32, date, int64, timestamp,
// double) as its whole chunk, one plain-encoded data page, as the column
// writer does with what pqarrow hands it (statistics updated batch by
// batch as it updates them). It returns false, having written nothing,
// for what it leaves to the column writer: other types, a page the
// writer would cut in two, other settings.
func (w *Writer) plainColumn(c *pqColumn, col arrow.Array, defLevels []int16, sc *chunkScratch) (bool, error) {
	data := col.Data()
	if len(data.Buffers()) < 2 || data.Buffers()[1] == nil {
		return false, nil
	}
	raw := data.Buffers()[1].Bytes()
	off, n := data.Offset(), data.Len()
	switch dt := col.DataType().(type) {
	case *arrow.Int32Type, *arrow.Date32Type:
		vals := arrow.Int32Traits.CastFromBytes(raw)[off : off+n]
		return plainChunk(w, c, col, vals, arrow.Int32Traits.CastToBytes, defLevels, sc)
	case *arrow.Int64Type:
		vals := arrow.Int64Traits.CastFromBytes(raw)[off : off+n]
		return plainChunk(w, c, col, vals, arrow.Int64Traits.CastToBytes, defLevels, sc)
	case *arrow.TimestampType:
		if dt.Unit != arrow.Microsecond {
			return false, nil
		}
		vals := arrow.Int64Traits.CastFromBytes(raw)[off : off+n]
		return plainChunk(w, c, col, vals, arrow.Int64Traits.CastToBytes, defLevels, sc)
	case *arrow.Float64Type:
		vals := arrow.Float64Traits.CastFromBytes(raw)[off : off+n]
		return plainChunk(w, c, col, vals, arrow.Float64Traits.CastToBytes, defLevels, sc)
	}
	return false, nil
}

func plainChunk[T int32 | int64 | float64](w *Writer, c *pqColumn, col arrow.Array, vals []T, bytesOf func([]T) []byte, defLevels []int16, sc *chunkScratch) (bool, error) {
	descr := c.meta.Descr()
	path := descr.Path()
	props := w.props
	nullable := descr.MaxDefinitionLevel() > 0
	nonNull := len(vals)
	if nullable {
		nonNull -= col.NullN()
	}
	size := nonNull * len(bytesOf(vals[:min(len(vals), 1)]))
	if props.DataPageVersion() != parquet.DataPageV1 || props.DictionaryEnabledFor(path) ||
		props.EncodingFor(path) != parquet.Encodings.Plain || !props.StatisticsEnabledFor(path) ||
		descr.MaxRepetitionLevel() != 0 || nullable != (defLevels != nil) || !c.pager.HasCompressor() ||
		int64(size) >= props.DataPageSize() || len(vals) == 0 {
		return false, nil
	}
	mem := props.Allocator()
	page := metadata.NewStatistics(descr, mem)
	st, ok := page.(statsUpdater[T])
	if !ok {
		return false, nil
	}
	levels := len(vals)
	sc.page = sc.page[:0]
	if nullable {
		sc.putLevels(defLevels)
	}
	batch := int(props.WriteBatchSize())
	if !nullable || col.NullN() == 0 {
		for at := 0; at < len(vals); at += batch {
			st.Update(vals[at:min(at+batch, len(vals))], 0)
		}
		sc.page = append(sc.page, bytesOf(vals)...)
	} else {
		bits, bitsOff := col.NullBitmapBytes(), int64(col.Data().Offset())
		for at := 0; at < len(vals); at += batch {
			end := min(at+batch, len(vals))
			nulls := 0
			for _, l := range defLevels[at:end] {
				if l == 0 {
					nulls++
				}
			}
			st.UpdateSpaced(vals[at:end], bits, bitsOff+int64(at), int64(nulls))
		}
		// The values of the rows not null, a run at a time.
		start := -1
		for i := range vals {
			switch valid := bitutil.BitIsSet(bits, int(bitsOff)+i); {
			case valid && start < 0:
				start = i
			case !valid && start >= 0:
				sc.page = append(sc.page, bytesOf(vals[start:i])...)
				start = -1
			}
		}
		if start >= 0 {
			sc.page = append(sc.page, bytesOf(vals[start:])...)
		}
	}

	n, err := w.dataPage(c, page, sc, levels, parquet.Encodings.Plain, true)
	if err != nil {
		return false, err
	}
	c.rows, c.written, c.plain = levels, n, true
	return true, nil
}
