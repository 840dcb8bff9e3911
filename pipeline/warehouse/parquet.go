package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/connectingpeople/cpi/pipeline/warehouse/pqfile"
	"github.com/connectingpeople/cpi/schemas"
)

// BatchRows is the number of rows in an Arrow record batch and so in a
// Parquet row group: memory follows it, not the size of a table.
const BatchRows = 64 * 1024

// Key/value metadata written into every table file.
const (
	MetaTable         = "cpi.table"
	MetaSchemaVersion = "cpi.schema_version"
	MetaProgram       = "cpi.program_version"
	MetaStudyHash     = "cpi.study_hash"
)

// arrowType maps a tables.yaml type to its Arrow type; Parquet's logical
// types follow (DATE for date32, BOOLEAN, INT32, UTC TIMESTAMP).
func arrowType(t string) arrow.DataType {
	switch t {
	case "string":
		return arrow.BinaryTypes.String
	case "int32":
		return arrow.PrimitiveTypes.Int32
	case "int64":
		return arrow.PrimitiveTypes.Int64
	case "double":
		return arrow.PrimitiveTypes.Float64
	case "bool":
		return arrow.FixedWidthTypes.Boolean
	case "date":
		return arrow.FixedWidthTypes.Date32
	case "timestamp":
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	}
	panic("pipeline: unknown column type " + t)
}

// tableSchema is a table's Arrow schema with the key/value metadata that
// names the table, its schema version, the program and the study's hash.
func ArrowSchema(env Env, name string, extra map[string]string) *arrow.Schema {
	tb := env.Study.Tables.Table(name)
	fields := make([]arrow.Field, len(tb.Columns))
	for i, c := range tb.Columns {
		fields[i] = arrow.Field{Name: c.Name, Type: arrowType(c.Type), Nullable: !c.Required}
	}
	meta := map[string]string{
		MetaTable:         name,
		MetaSchemaVersion: strconv.Itoa(env.Study.Tables.SchemaVersion),
		MetaProgram:       env.Version,
		MetaStudyHash:     env.Study.Hash,
	}
	for k, v := range extra {
		meta[k] = v
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = meta[k]
	}
	md := arrow.NewMetadata(keys, vals)
	return arrow.NewSchema(fields, &md)
}

// writerProperties: zstd, statistics on every column, dictionary encoding
// for strings only (small integer codes and numbers compress as well plain,
// without hashing every value).
func writerProperties(schema *arrow.Schema, mem memory.Allocator) *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithAllocator(mem),
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(1),
		parquet.WithDictionaryDefault(true),
		parquet.WithStats(true),
		parquet.WithMaxRowGroupLength(BatchRows),
		parquet.WithCreatedBy("cpi"),
	}
	for _, f := range schema.Fields() {
		if f.Type.ID() != arrow.STRING {
			opts = append(opts, parquet.WithDictionaryFor(f.Name, false))
		}
	}
	return parquet.NewWriterProperties(opts...)
}

// TableFile is one Parquet file of a table being written into a generation.
// Records go in as row groups; Close renames it into place; Abort drops it.
//
// Row groups are encoded and compressed by a goroutine of the file's own
// while the caller builds the next batch, so a stage that reads, checks
// and writes keeps two cores busy even on its last file. One batch waits
// in the queue at most: memory stays a few batches per open file.
type TableFile struct {
	tx       *Tx
	table    string
	f        *os.File
	w        *pqfile.Writer
	schema   *arrow.Schema // of the records written: strings as dictionaries
	nullable []bool        // per column: OPTIONAL in Parquet
	tmp      string
	final    string
	rows     int64

	queue chan tableBatch // to the writing goroutine; nil until the first batch
	done  chan struct{}   // closed when the writing goroutine ends
	err   error           // the writing goroutine's error: read only after done
}

// tableBatch is a record waiting to be written, and what to call once it
// has been written or dropped (its memory may then be reused).
type tableBatch struct {
	rec     arrow.RecordBatch
	written func()
}

// CreateTableFile starts tables/<table>/[<partition>=<value>/]<name>.parquet
// in the generation. partition "" means an unpartitioned table.
func (tx *Tx) CreateTableFile(schema *arrow.Schema, table, partition, value, name string) (*TableFile, error) {
	elems := [][2]string{{"table", table}, {"table file", name}}
	if partition != "" {
		elems = append(elems, [2]string{"partition", partition + "=" + value})
	}
	for _, e := range elems {
		if err := CheckPathElem(e[0], e[1]); err != nil {
			return nil, fmt.Errorf("table %s: %w", table, err)
		}
	}
	dir := tx.Path("tables", table)
	if partition != "" {
		dir = filepath.Join(dir, partition+"="+value)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("table %s: %w", table, err)
	}
	final := filepath.Join(dir, name+".parquet")
	f, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", table, err)
	}
	if err := f.Chmod(FileMode); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("table %s: %w", table, err)
	}
	w, err := pqfile.Create(schema, writerProperties(schema, &reuseAllocator{}), f)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("table %s: %w", table, err)
	}
	nullable := make([]bool, schema.NumFields())
	for i, fd := range schema.Fields() {
		nullable[i] = fd.Nullable
	}
	return &TableFile{tx: tx, table: table, f: f, w: w, schema: WriteSchema(schema), nullable: nullable, tmp: f.Name(), final: final}, nil
}

// Write appends a record batch as a row group. The record must not be
// changed afterwards; an error may be an earlier batch's.
func (t *TableFile) Write(rec arrow.RecordBatch) error { return t.WriteThen(rec, nil) }

// WriteThen is Write for a record over memory the caller will reuse:
// written (if not nil) is called once the record has been written or
// dropped, and is always called.
func (t *TableFile) WriteThen(rec arrow.RecordBatch, written func()) error {
	if rec.NumRows() == 0 || !rec.Schema().Equal(t.schema) {
		if written != nil {
			written()
		}
		if rec.NumRows() == 0 {
			return nil
		}
		return fmt.Errorf("table %s: a record of another schema than the file's", t.table)
	}
	if t.queue == nil {
		t.queue, t.done = make(chan tableBatch, 1), make(chan struct{})
		go t.writeLoop()
	}
	select {
	case <-t.done: // the writer failed: say so now, not after the rest
		if written != nil {
			written()
		}
		return t.err
	default:
	}
	rec.Retain()
	select {
	case t.queue <- tableBatch{rec, written}:
		t.rows += rec.NumRows()
		return nil
	case <-t.done:
		rec.Release()
		if written != nil {
			written()
		}
		return t.err
	}
}

// writeLoop writes queued records as row groups until the queue closes or
// a write fails.
func (t *TableFile) writeLoop() {
	defer close(t.done)
	for b := range t.queue {
		err := t.w.WriteRowGroup(context.Background(), b.rec, t.nullable)
		b.rec.Release()
		if b.written != nil {
			b.written()
		}
		if err != nil {
			t.err = err
			return
		}
	}
}

// finishWrites waits for the queued records to be written and returns
// the first error of writing them.
func (t *TableFile) finishWrites() error {
	if t.queue == nil {
		return nil
	}
	close(t.queue)
	<-t.done
	for b := range t.queue { // left behind by a failed write
		b.rec.Release()
		if b.written != nil {
			b.written()
		}
	}
	t.queue = nil
	return t.err
}

// Close finishes the file, syncs it and renames it into place.
func (t *TableFile) Close() error {
	if err := t.finishWrites(); err != nil {
		_ = t.w.Close()
		os.Remove(t.tmp)
		return err
	}
	if err := t.w.Close(); err != nil { // closes t.f too
		os.Remove(t.tmp)
		return err
	}
	f, err := os.OpenFile(t.tmp, os.O_RDWR, 0)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err != nil {
		os.Remove(t.tmp)
		return err
	}
	rel, _ := filepath.Rel(t.tx.Dir, t.final)
	if err := t.tx.Step("write " + rel); err != nil {
		return err
	}
	if err := os.Rename(t.tmp, t.final); err != nil {
		return err
	}
	t.tx.mu.Lock()
	t.tx.written[t.table] = true
	t.tx.mu.Unlock()
	return nil
}

// Abort drops the unfinished file.
func (t *TableFile) Abort() {
	_ = t.finishWrites()
	_ = t.w.Close()
	os.Remove(t.tmp)
}

// RowWriter batches rows into Arrow records and writes them to a TableFile.
// Append one value to every column with the typed appenders, then call
// RowDone.
//
// String columns are built as Arrow dictionary arrays (a dictionary per
// batch, int32 indices), which Parquet's writer stores as its dictionary
// encoding directly instead of hashing every value; readers see plain
// strings. A value equal to the column's previous one reuses its index
// without a lookup, the common case in long tables.
//
// Columns are plain Go slices, wrapped as Arrow arrays without a copy
// when a batch is written. A batch's slices are reused once the file has
// written it: at most rowBatches batches exist (one filling, one queued,
// one being written), so a table's memory is allocated once rather than
// per batch, and not cleared each time.
type RowWriter struct {
	schema *arrow.Schema // as written: strings as dictionaries
	dicts  []*dictColumn // per column; nil for non-string columns
	cur    *rowBatch
	free   chan *rowBatch // batches written and ready for reuse
	made   int            // batches allocated
	full   bool           // a batch has been filled: size the next ones whole
	out    *TableFile
	n      int
}

// rowBatches is the most batches a RowWriter has in hand.
const rowBatches = 3

// rowBatch is one batch of rows, column by column.
type rowBatch struct {
	cols []rowColumn
}

// rowColumn holds one column's values, in the slice of its type
// (dictionary indices, int32 and dates in i32; int64 and timestamps in
// i64); valid is nil until the batch's first null.
type rowColumn struct {
	i32   []int32
	i64   []int64
	f64   []float64
	b     []bool
	valid []bool
	nulls int
}

// null marks the row about to be appended null.
func (c *rowColumn) null(rows int) {
	if c.valid == nil {
		c.valid = make([]bool, 0, max(rows+1, cap(c.i32), cap(c.i64), cap(c.f64), cap(c.b)))
	}
	for len(c.valid) < rows {
		c.valid = append(c.valid, true)
	}
	c.valid = append(c.valid, false)
	c.nulls++
}

// bitmap is the validity bitmap of n rows (nil without nulls).
func (c *rowColumn) bitmap(n int) *memory.Buffer {
	if c.nulls == 0 {
		return nil
	}
	bits := make([]byte, bitutil.BytesForBits(int64(n)))
	for i := range n {
		if i >= len(c.valid) || c.valid[i] {
			bitutil.SetBit(bits, i)
		}
	}
	return memory.NewBufferBytes(bits)
}

func (c *rowColumn) reset() {
	c.i32, c.i64, c.f64, c.b = c.i32[:0], c.i64[:0], c.f64[:0], c.b[:0]
	if c.valid != nil {
		c.valid = c.valid[:0]
	}
	c.nulls = 0
}

// dictColumn accumulates one string column of a batch.
//
// Finding a value's index is the hot part (a national ingest appends a
// hundred million strings), so the map is a last resort: a repeat of the
// previous value reuses its index; while the values have come in strictly
// ascending order (ids, which the tables are sorted by) a value above the
// last is new without a lookup; a value that follows the previous one's
// entry (columns cycling through items or scales) is found there; a small
// dictionary is searched in place; and the map is filled only when a
// larger one needs it. The indices are
// those a map alone would give: first appearance order.
type dictColumn struct {
	values    []string
	lookup    map[string]int32 // values[:mapped], filled on demand
	mapped    int
	ascending bool // values strictly ascending in the order appended
	last      string
	lastIdx   int32
}

// dictScan is the largest dictionary searched in place rather than
// through the map.
const dictScan = 8

func newDictColumn() *dictColumn {
	return &dictColumn{lookup: map[string]int32{}, ascending: true, lastIdx: -1}
}

// index is v's index, v added to the dictionary if new.
func (d *dictColumn) index(v string) int32 {
	if d.lastIdx >= 0 && v == d.last {
		return d.lastIdx
	}
	i := d.find(v)
	if i < 0 {
		i = int32(len(d.values))
		if n := len(d.values); n > 0 && v <= d.values[n-1] {
			d.ascending = false
		}
		d.values = append(d.values, v)
	}
	d.last, d.lastIdx = v, i
	return i
}

// find is the index of v in the dictionary, or -1.
func (d *dictColumn) find(v string) int32 {
	n := len(d.values)
	switch {
	case n == 0:
		return -1
	case d.ascending && v > d.values[n-1]:
		return -1
	}
	// Columns that cycle through their values (items, scales) mostly
	// follow the entry after the previous one.
	if next := int(d.lastIdx) + 1; next >= 0 && next < n && d.values[next] == v {
		return int32(next)
	} else if next == n && d.values[0] == v {
		return 0
	}
	if n <= dictScan {
		for j, w := range d.values {
			if w == v {
				return int32(j)
			}
		}
		return -1
	}
	for j := d.mapped; j < n; j++ {
		d.lookup[d.values[j]] = int32(j)
	}
	d.mapped = n
	if i, ok := d.lookup[v]; ok {
		return i
	}
	return -1
}

func (d *dictColumn) reset() {
	d.values = d.values[:0]
	if d.mapped > 0 {
		clear(d.lookup)
	}
	d.mapped = 0
	d.ascending = true
	d.lastIdx = -1
}

// DictionaryType is how string columns are written.
var DictionaryType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

// WriteSchema is schema with its string columns as dictionaries.
func WriteSchema(schema *arrow.Schema) *arrow.Schema {
	fields := schema.Fields()
	for i, f := range fields {
		if f.Type.ID() == arrow.STRING {
			fields[i].Type = DictionaryType
		}
	}
	md := schema.Metadata()
	return arrow.NewSchema(fields, &md)
}

// NewRowWriter builds rows of schema (a table's schema from tableSchema)
// into out, which must have been created with the same schema.
func NewRowWriter(schema *arrow.Schema, out *TableFile) *RowWriter {
	ws := WriteSchema(schema)
	r := &RowWriter{schema: ws, out: out, dicts: make([]*dictColumn, len(ws.Fields())), free: make(chan *rowBatch, rowBatches)}
	for i, f := range ws.Fields() {
		if f.Type.ID() == arrow.DICTIONARY {
			r.dicts[i] = newDictColumn()
		}
	}
	r.cur = r.newBatch()
	return r
}

// newBatch allocates a batch: whole (BatchRows rows) once the table has
// filled one, so that its slices do not grow by doubling.
func (r *RowWriter) newBatch() *rowBatch {
	r.made++
	b := &rowBatch{cols: make([]rowColumn, len(r.dicts))}
	if !r.full {
		return b
	}
	for i, f := range r.schema.Fields() {
		c := &b.cols[i]
		switch f.Type.ID() {
		case arrow.DICTIONARY, arrow.INT32, arrow.DATE32:
			c.i32 = make([]int32, 0, BatchRows)
		case arrow.INT64, arrow.TIMESTAMP:
			c.i64 = make([]int64, 0, BatchRows)
		case arrow.FLOAT64:
			c.f64 = make([]float64, 0, BatchRows)
		case arrow.BOOL:
			c.b = make([]bool, 0, BatchRows)
		}
	}
	return b
}

// RowDone counts a row and writes a row group when the batch is full.
func (r *RowWriter) RowDone() error {
	r.n++
	if r.n >= BatchRows {
		r.full = true
		if err := r.flush(true); err != nil {
			return err
		}
	}
	return nil
}

// flush hands the batch to the file as a record and, if next, takes the
// next: a new one while fewer than rowBatches exist, else one the file
// has written.
func (r *RowWriter) flush(next bool) error {
	if r.n == 0 {
		return nil
	}
	fields := r.schema.Fields()
	cols := make([]arrow.Array, len(fields))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	n := r.n
	for i, f := range fields {
		c := &r.cur.cols[i]
		bitmap := c.bitmap(n)
		var values []byte
		switch f.Type.ID() {
		case arrow.DICTIONARY, arrow.INT32, arrow.DATE32:
			values = arrow.Int32Traits.CastToBytes(c.i32[:n])
		case arrow.INT64, arrow.TIMESTAMP:
			values = arrow.Int64Traits.CastToBytes(c.i64[:n])
		case arrow.FLOAT64:
			values = arrow.Float64Traits.CastToBytes(c.f64[:n])
		case arrow.BOOL:
			bits := make([]byte, bitutil.BytesForBits(int64(n)))
			for j, v := range c.b[:n] {
				if v {
					bitutil.SetBit(bits, j)
				}
			}
			values = bits
		default:
			return fmt.Errorf("table %s: column %s of type %s", r.out.table, f.Name, f.Type)
		}
		typ := f.Type
		if d := r.dicts[i]; d != nil {
			typ = arrow.PrimitiveTypes.Int32
		}
		data := array.NewData(typ, n, []*memory.Buffer{bitmap, memory.NewBufferBytes(values)}, nil, c.nulls, 0)
		arr := array.MakeFromData(data)
		data.Release()
		if d := r.dicts[i]; d != nil {
			sb := array.NewStringBuilder(memory.DefaultAllocator)
			sb.AppendValues(d.values, nil)
			dict := sb.NewArray()
			sb.Release()
			cols[i] = array.NewDictionaryArray(DictionaryType, arr, dict)
			arr.Release()
			dict.Release()
			d.reset()
			continue
		}
		cols[i] = arr
	}
	rec := array.NewRecordBatch(r.schema, cols, int64(n))
	defer rec.Release()
	r.n = 0
	b := r.cur
	r.cur = nil
	err := r.out.WriteThen(rec, func() { r.free <- b })
	if !next {
		return err
	}
	select {
	case r.cur = <-r.free:
	default:
		if r.made < rowBatches {
			r.cur = r.newBatch()
		} else {
			r.cur = <-r.free
		}
	}
	for i := range r.cur.cols {
		r.cur.cols[i].reset()
	}
	return err
}

// Close writes the last rows and closes the file.
func (r *RowWriter) Close() error {
	if err := r.flush(false); err != nil {
		r.out.Abort()
		return err
	}
	return r.out.Close()
}

// Abort drops everything written.
func (r *RowWriter) Abort() {
	r.out.Abort()
}

// Str appends a string.
func (r *RowWriter) Str(col int, v string) {
	c := &r.cur.cols[col]
	c.i32 = append(c.i32, r.dicts[col].index(v))
	if c.valid != nil {
		c.valid = append(c.valid, true)
	}
}

// NullStr appends v, or null when v is empty.
func (r *RowWriter) NullStr(col int, v string) {
	if v == "" {
		r.Null(col)
		return
	}
	r.Str(col, v)
}

// Int32 appends v, or null when !ok.
func (r *RowWriter) Int32(col int, v int32, ok bool) {
	if !ok {
		r.Null(col)
		return
	}
	c := &r.cur.cols[col]
	c.i32 = append(c.i32, v)
	if c.valid != nil {
		c.valid = append(c.valid, true)
	}
}

// Int64 appends v.
func (r *RowWriter) Int64(col int, v int64) {
	c := &r.cur.cols[col]
	c.i64 = append(c.i64, v)
	if c.valid != nil {
		c.valid = append(c.valid, true)
	}
}

// Float64 appends v, or null when !ok.
func (r *RowWriter) Float64(col int, v float64, ok bool) {
	if !ok {
		r.Null(col)
		return
	}
	c := &r.cur.cols[col]
	c.f64 = append(c.f64, v)
	if c.valid != nil {
		c.valid = append(c.valid, true)
	}
}

// Bool appends v.
func (r *RowWriter) Bool(col int, v bool) {
	c := &r.cur.cols[col]
	c.b = append(c.b, v)
	if c.valid != nil {
		c.valid = append(c.valid, true)
	}
}

// Date appends a date (days since 1970-01-01), or null when !ok.
func (r *RowWriter) Date(col int, days int32, ok bool) {
	r.Int32(col, days, ok)
}

// Timestamp appends a UTC time in microseconds.
func (r *RowWriter) Timestamp(col int, t time.Time) {
	r.Int64(col, t.UTC().UnixMicro())
}

// Null appends a null: a zero in the column's values, unset in its
// validity.
func (r *RowWriter) Null(col int) {
	c := &r.cur.cols[col]
	switch r.schema.Field(col).Type.ID() {
	case arrow.DICTIONARY, arrow.INT32, arrow.DATE32:
		c.null(len(c.i32))
		c.i32 = append(c.i32, 0)
	case arrow.INT64, arrow.TIMESTAMP:
		c.null(len(c.i64))
		c.i64 = append(c.i64, 0)
	case arrow.FLOAT64:
		c.null(len(c.f64))
		c.f64 = append(c.f64, 0)
	case arrow.BOOL:
		c.null(len(c.b))
		c.b = append(c.b, false)
	}
}

// TableFiles lists a table's Parquet files under dir (a generation or the
// warehouse's tables folder parent), in path order.
func TableFiles(genDir, table string) ([]string, error) {
	root := filepath.Join(genDir, "tables", table)
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".parquet") && !IsTemp(d.Name()) {
			out = append(out, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	sort.Strings(out)
	return out, err
}

// ScanTable calls fn with each record batch of a table, file by file in
// path order. The record is released after fn returns.
func ScanTable(ctx context.Context, genDir, table string, fn func(rec arrow.RecordBatch) error) error {
	files, err := TableFiles(genDir, table)
	if err != nil {
		return fmt.Errorf("read table %s: %w", table, err)
	}
	for _, p := range files {
		if err := ScanFile(ctx, p, fn); err != nil {
			return fmt.Errorf("read table %s: %w", table, err)
		}
	}
	return nil
}

// ScanFile reads every column of one table file, batch by batch.
func ScanFile(ctx context.Context, path string, fn func(rec arrow.RecordBatch) error) error {
	scan := NewColumnScan(ctx, []string{path}, nil, nil)
	defer scan.Close()
	for {
		ok, err := scan.Next()
		if err != nil || !ok {
			return err
		}
		if err := fn(scan.rec); err != nil {
			return err
		}
	}
}

// CheckFile makes sure an open table file is one of cpi's tables, with
// every column of its table at the type tables.yaml gives
// (checkTableSchema), as every reader of the table layer does.
func CheckFile(pf *file.Reader) error {
	md := pf.MetaData()
	plain, err := pqarrow.FromParquet(md.Schema, &pqarrow.ArrowReadProperties{}, md.KeyValueMetadata())
	if err != nil {
		return err
	}
	name := ""
	if v := md.KeyValueMetadata().FindValue(MetaTable); v != nil {
		name = *v
	}
	return checkTableSchema(name, plain)
}

// embeddedTables is schemas.EmbeddedTables parsed once (a parse takes
// milliseconds and every file read is checked); it is only read.
var embeddedTables = sync.OnceValues(schemas.EmbeddedTables)

// checkTableSchema makes sure a table file has every column of its table
// (named in its metadata) with the type tables.yaml gives, so that readers
// can rely on the types: a file written by another schema version, or not
// by cpi, is an error, not a panic.
func checkTableSchema(name string, schema *arrow.Schema) error {
	if name == "" {
		return fmt.Errorf("not a cpi table file (no %s metadata)", MetaTable)
	}
	tables, err := embeddedTables()
	if err != nil {
		return err
	}
	tb, ok := tables.Tables[name]
	if !ok {
		return fmt.Errorf("unknown table %q", name)
	}
	for _, c := range tb.StudyIndependentColumns() { // participants' demographics are the study's
		idx := schema.FieldIndices(c.Name)
		if len(idx) == 0 {
			return fmt.Errorf("column %s is missing (written by another version of cpi? run cpi run again to rebuild)", c.Name)
		}
		if got, want := schema.Field(idx[0]).Type, arrowType(c.Type); !arrow.TypeEqual(got, want) {
			return fmt.Errorf("column %s is %s, want %s (written by another version of cpi? run cpi run again to rebuild)", c.Name, got, want)
		}
	}
	return nil
}

// Columns finds columns of a record by name; a missing column is an error
// naming the table file's schema problem.
func Columns(rec arrow.RecordBatch, names ...string) ([]arrow.Array, error) {
	out := make([]arrow.Array, len(names))
	for i, n := range names {
		idx := rec.Schema().FieldIndices(n)
		if len(idx) == 0 {
			return nil, fmt.Errorf("column %s missing", n)
		}
		out[i] = rec.Column(idx[0])
	}
	return out, nil
}

// ColIndex is the position of a column in a table's schema.
func ColIndex(tb *schemas.Table, name string) int {
	i := tb.ColumnIndex(name)
	if i < 0 {
		panic("pipeline: table " + tb.Name + " has no column " + name)
	}
	return i
}

// ColumnScan reads chosen columns (names; nil: all of them) of a table's
// files, file after file, in record batches: the columns in dictNames as
// dictionary arrays (a long column's repeated values are not copied out of
// the file's dictionary one by one). Each file is checked against its
// table's schema first (checkTableSchema). rec and cols (the named
// columns, in the order named) hold the current batch, valid until the
// next call.
type ColumnScan struct {
	ctx              context.Context
	files            []string
	names, dictNames []string
	Check            func(pf *file.Reader) error // optional, on each file opened
	mem              memory.Allocator            // of the batches read

	pf   *file.Reader
	rr   pqarrow.RecordReader
	rec  arrow.RecordBatch
	Cols []arrow.Array
}

func NewColumnScan(ctx context.Context, files, names, dictNames []string) *ColumnScan {
	return &ColumnScan{ctx: ctx, files: files, names: names, dictNames: dictNames, mem: memory.DefaultAllocator}
}

// ReuseMemory makes the scan read its batches into memory that earlier
// batches, once released, give back, instead of Go allocating, clearing
// and collecting fresh buffers for every batch. Only for a caller that
// keeps nothing of a batch after the next call to Next: not even a string
// of it (array.String's values alias the batch's memory, which the next
// batch then overwrites); copy what is kept (strings.Clone).
func (s *ColumnScan) ReuseMemory() { s.mem = &reuseAllocator{} }

// Next moves to the next batch; false at the end.
func (s *ColumnScan) Next() (bool, error) {
	s.rec, s.Cols = nil, nil
	for {
		if err := s.ctx.Err(); err != nil {
			return false, err
		}
		if s.rr != nil {
			if s.rr.Next() {
				s.rec = s.rr.RecordBatch()
				if s.names == nil {
					s.Cols = s.rec.Columns()
					return true, nil
				}
				cols, err := Columns(s.rec, s.names...)
				if err != nil {
					return false, err
				}
				s.Cols = cols
				return true, nil
			}
			err := s.rr.Err()
			s.closeFile()
			if err != nil {
				return false, err
			}
		}
		if len(s.files) == 0 {
			return false, nil
		}
		path := s.files[0]
		s.files = s.files[1:]
		if err := s.open(path); err != nil {
			s.closeFile()
			return false, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
	}
}

func (s *ColumnScan) open(path string) error {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return err
	}
	s.pf = pf
	if err := CheckFile(pf); err != nil {
		return err
	}
	if s.Check != nil {
		if err := s.Check(pf); err != nil {
			return err
		}
	}
	var idx []int // nil: every column
	if s.names != nil {
		idx = make([]int, len(s.names))
	}
	// Parallel: the columns of a batch are decoded side by side, so the
	// last trust's scan still uses both cores.
	props := pqarrow.ArrowReadProperties{BatchSize: readBatchRows, Parallel: true}
	for i, n := range s.names {
		idx[i] = pf.MetaData().Schema.ColumnIndexByName(n)
		if idx[i] < 0 {
			return fmt.Errorf("column %s missing", n)
		}
		if slices.Contains(s.dictNames, n) {
			props.SetReadDict(idx[i], true)
		}
	}
	fr, err := pqarrow.NewFileReader(pf, props, s.mem)
	if err != nil {
		return err
	}
	rr, err := fr.GetRecordReader(s.ctx, idx, nil)
	if err != nil {
		return err
	}
	s.rr = rr
	return nil
}

func (s *ColumnScan) closeFile() {
	if s.rr != nil {
		s.rr.Release()
		s.rr = nil
	}
	if s.pf != nil {
		s.pf.Close()
		s.pf = nil
	}
}

// Close releases the file being read.
func (s *ColumnScan) Close() { s.closeFile() }

// readBatchRows is the size of the batches a ColumnScan reads. Parquet's
// dictionary decoder allocates scratch space for a whole batch in every
// column chunk (16 bytes a row), so a batch a quarter of a row group
// allocates a quarter as much.
const readBatchRows = BatchRows / 4
