package ingest

import (
	"fmt"
	"slices"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// responsesWriter builds the long responses table column by column. It is
// the hot path of ingest (some 60 rows per interview, 100 million at
// national scale), so instead of appending value by value it keeps each
// string column as dictionary indices in a plain slice: per interview the
// wave, instrument, item, trust, team, arm and source columns are constants
// or a pattern fixed per wave, and the answers are gathered in one loop.
// Each batch becomes an Arrow record of dictionary arrays built over those
// slices without copying, written as one Parquet row group.
type responsesWriter struct {
	out    *warehouse.TableFile
	schema *arrow.Schema // as written: strings as dictionaries
	n      int

	*responsesBatch // being filled
	// free holds the batches not being filled or written: a batch's
	// memory goes back here once the file has written it.
	free  chan *responsesBatch
	dicts [8][]string // dictionaries; study_id's grows per batch

	waveIdx map[string]int32
	teamIdx map[string]int32
	armIdx  map[string]int32
	// per wave: the instrument and item indices and answer positions of the
	// items asked, in key order.
	pattern map[string]*responsesPattern
}

// responsesBatch is the memory of one batch of rows.
type responsesBatch struct {
	// Dictionary indices of the string columns, in table order: study_id,
	// wave, instrument, item, trust, team, arm, source_sha256.
	idx   [8][]int32
	value []int32
	valid []bool
	line  []int32
}

// ResponsesBatches is how many batches a writer cycles through: one
// filled, one queued, one being written.
const ResponsesBatches = 3

type responsesPattern struct {
	inst, item []int32
	field      []int // position in interview.items
}

// Column positions of the responses table (tables.yaml).
const (
	respStudy = iota
	respWave
	respInstrument
	respItem
	respTrust
	respTeam
	respArm
	respSHA
)

func newResponsesWriter(env warehouse.Env, tx *warehouse.Tx, res *exportResult, sha string) (*responsesWriter, error) {
	schema := warehouse.ArrowSchema(env, "responses", nil)
	for i, name := range []string{"study_id", "wave", "instrument", "item", "trust", "team", "arm", "value", "source_sha256", "source_line"} {
		if schema.Field(i).Name != name {
			return nil, fmt.Errorf("responses table: column %d is %s, the writer expects %s", i, schema.Field(i).Name, name)
		}
	}
	tf, err := tx.CreateTableFile(schema, "responses", "trust", res.trust, "data")
	if err != nil {
		return nil, err
	}
	w := &responsesWriter{out: tf, schema: warehouse.WriteSchema(schema), waveIdx: map[string]int32{}, teamIdx: map[string]int32{}, armIdx: map[string]int32{}, pattern: map[string]*responsesPattern{}}
	w.free = make(chan *responsesBatch, ResponsesBatches)
	for range ResponsesBatches - 1 {
		w.free <- &responsesBatch{}
	}
	w.responsesBatch = &responsesBatch{}
	s := env.Study
	w.dicts[respWave] = s.Waves
	for i, wv := range s.Waves {
		w.waveIdx[wv] = int32(i)
	}
	for i, t := range s.Teams {
		w.dicts[respTeam] = append(w.dicts[respTeam], t.Code)
		w.teamIdx[t.Code] = int32(i)
	}
	w.dicts[respArm] = s.Arms
	for i, a := range s.Arms {
		w.armIdx[a] = int32(i)
	}
	w.dicts[respTrust] = []string{res.trust}
	w.dicts[respSHA] = []string{sha}
	// The items of the export's instrument fields, in key order.
	type ref struct {
		inst  *schemas.Instrument
		item  string
		field int
	}
	var refs []ref
	j := 0
	for _, f := range res.fields {
		if f.Instrument == "" {
			continue
		}
		in, _ := s.Instrument(f.Instrument)
		refs = append(refs, ref{in, f.Name, j})
		j++
	}
	sort.Slice(refs, func(a, b int) bool {
		if refs[a].inst.Name != refs[b].inst.Name {
			return refs[a].inst.Name < refs[b].inst.Name
		}
		return refs[a].item < refs[b].item
	})
	instIdx := map[string]int32{}
	for i, r := range refs {
		if _, ok := instIdx[r.inst.Name]; !ok {
			instIdx[r.inst.Name] = int32(len(w.dicts[respInstrument]))
			w.dicts[respInstrument] = append(w.dicts[respInstrument], r.inst.Name)
		}
		w.dicts[respItem] = append(w.dicts[respItem], r.item)
		for _, wv := range s.Waves {
			if !r.inst.AskedAt(wv) {
				continue
			}
			p := w.pattern[wv]
			if p == nil {
				p = &responsesPattern{}
				w.pattern[wv] = p
			}
			p.inst = append(p.inst, instIdx[r.inst.Name])
			p.item = append(p.item, int32(i))
			p.field = append(p.field, r.field)
		}
	}
	return w, nil
}

// interview appends the items asked at the wave of one dated interview of
// participant sid.
func (w *responsesWriter) interview(sid string, iv *Interview, team, arm string) error {
	p := w.pattern[iv.Wave]
	if p == nil {
		return nil
	}
	d := &w.dicts[respStudy]
	if len(*d) == 0 || (*d)[len(*d)-1] != sid {
		*d = append(*d, sid)
	}
	k := len(p.item)
	consts := [8]int32{respStudy: int32(len(*d) - 1), respWave: w.waveIdx[iv.Wave], respTrust: 0, respTeam: w.teamIdx[team], respArm: w.armIdx[arm], respSHA: 0}
	for _, c := range []int{respStudy, respWave, respTrust, respTeam, respArm, respSHA} {
		w.idx[c] = appendRepeat(w.idx[c], consts[c], k)
	}
	w.idx[respInstrument] = append(w.idx[respInstrument], p.inst...)
	w.idx[respItem] = append(w.idx[respItem], p.item...)
	for _, f := range p.field {
		v := iv.Items[f]
		w.value = append(w.value, v)
		w.valid = append(w.valid, v != NullInt)
	}
	w.line = appendRepeat(w.line, int32(iv.Line), k)
	w.n += k
	if w.n >= warehouse.BatchRows {
		return w.flushRows(warehouse.BatchRows)
	}
	return nil
}

// appendRepeat appends k copies of v: one growth, then a fill.
func appendRepeat(s []int32, v int32, k int) []int32 {
	n := len(s)
	s = slices.Grow(s, k)[:n+k]
	for i := n; i < n+k; i++ {
		s[i] = v
	}
	return s
}

// int32Array wraps a slice as an Arrow array without copying; valid nil
// means no nulls. The slice must outlive the array's use.
func int32Array(vals []int32, valid []bool) arrow.Array {
	var bitmap *memory.Buffer
	nulls := 0
	if valid != nil {
		bits := make([]byte, bitutil.BytesForBits(int64(len(valid))))
		for i, ok := range valid {
			if ok {
				bitutil.SetBit(bits, i)
			} else {
				nulls++
			}
		}
		if nulls > 0 {
			bitmap = memory.NewBufferBytes(bits)
		}
	}
	data := array.NewData(arrow.PrimitiveTypes.Int32, len(vals),
		[]*memory.Buffer{bitmap, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(vals))}, nil, nulls, 0)
	defer data.Release()
	return array.NewInt32Data(data)
}

// flush writes every row held.
func (w *responsesWriter) flush() error { return w.flushRows(w.n) }

// flushRows writes the first n rows held as a row group (so that row
// groups have exactly batchRows rows, and a reader's batches of that size
// fall on them); the rows after them, the end of the last interview, begin
// the next batch.
func (w *responsesWriter) flushRows(n int) error {
	if n == 0 {
		return nil
	}
	// The rows carried over, copied out before the batch is handed on.
	var carry responsesBatch
	tail := w.n - n
	if tail > 0 {
		for c := range w.idx {
			carry.idx[c] = append([]int32(nil), w.idx[c][n:w.n]...)
		}
		carry.value = append([]int32(nil), w.value[n:w.n]...)
		carry.valid = append([]bool(nil), w.valid[n:w.n]...)
		carry.line = append([]int32(nil), w.line[n:w.n]...)
	}
	lastSid := ""
	if d := w.dicts[respStudy]; len(d) > 0 {
		lastSid = d[len(d)-1]
	}
	fields := w.schema.Fields()
	cols := make([]arrow.Array, len(fields))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for c := respStudy; c <= respSHA; c++ {
		sb := array.NewStringBuilder(memory.DefaultAllocator)
		sb.AppendValues(w.dicts[c], nil)
		dict := sb.NewArray()
		sb.Release()
		idx := int32Array(w.idx[c][:n], nil)
		pos := c
		if c == respSHA {
			pos = 8 // source_sha256 follows value
		}
		cols[pos] = array.NewDictionaryArray(warehouse.DictionaryType, idx, dict)
		idx.Release()
		dict.Release()
	}
	cols[7] = int32Array(w.value[:n], w.valid[:n])
	cols[9] = int32Array(w.line[:n], nil)
	rec := array.NewRecordBatch(w.schema, cols, int64(n))
	written := w.responsesBatch
	err := w.out.WriteThen(rec, func() { w.free <- written })
	rec.Release()
	w.dicts[respStudy] = w.dicts[respStudy][:0]
	w.n = 0
	// The next batch: one whose rows have been written.
	b := <-w.free
	for c := range b.idx {
		b.idx[c] = b.idx[c][:0]
	}
	b.value, b.valid, b.line = b.value[:0], b.valid[:0], b.line[:0]
	w.responsesBatch = b
	if tail > 0 {
		// All of one participant: study_id index 0 of the new dictionary.
		w.dicts[respStudy] = append(w.dicts[respStudy], lastSid)
		for i := range carry.idx[respStudy] {
			carry.idx[respStudy][i] = 0
		}
		for c := range b.idx {
			b.idx[c] = append(b.idx[c], carry.idx[c]...)
		}
		b.value = append(b.value, carry.value...)
		b.valid = append(b.valid, carry.valid...)
		b.line = append(b.line, carry.line...)
		w.n = tail
	}
	return err
}

func (w *responsesWriter) close() error {
	if err := w.flush(); err != nil {
		w.out.Abort()
		return err
	}
	return w.out.Close()
}

func (w *responsesWriter) abort() { w.out.Abort() }
