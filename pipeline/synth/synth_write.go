package synth

import (
	"archive/zip"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/charmap"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// Writers of the synthetic study: a trust's rows in its export dialect
// (site mapping: header aliases, value maps, date layout, encoding,
// delimiter, CSV or XLSX), or in the canonical format.

// synthCellKind is what an export cell holds.
type synthCellKind uint8

const (
	synthBlank synthCellKind = iota
	synthText
	synthNumber
	synthDate
)

// synthCell is one cell of an export row, in the export's own values.
type synthCell struct {
	kind synthCellKind
	s    string
	n    int64
	t    time.Time
}

// synthSink writes the rows of one export file; the first row is the
// header.
type synthSink interface {
	writeRow(cells []synthCell) error
	// finish completes the file; the caller closes what it wrote to.
	finish() error
	// release frees what the sink holds (temporary files), finished or not.
	release()
}

var (
	_ synthSink = (*synthCSV)(nil)
	_ synthSink = (*synthXLSX)(nil)
)

// Sources of a participants column in a SynthInterview.
const (
	synthSrcID = -1 - iota
	synthSrcTeam
	synthSrcWave
	synthSrcDate
	synthSrcDemo // a coded demographic: Demo[idx]
	synthSrcFlag // a 0/1 demographic: Flags[idx]
	synthSrcWithdrawn
	synthSrcPeriod
	synthSrcRater
	synthSrcRole
)

// synthColumn is one column of a dialect.
type synthColumn struct {
	header string
	src    int               // a synthSrc constant, or the index of an item / component
	idx    int               // synthSrcDemo, synthSrcFlag: the demographic's index
	codes  map[string]string // canonical → export code; nil: as is
	ints   []synthCell       // export cell of value min+i, for short ranges
	min    int32
}

// synthDialect is how one trust writes one kind of export.
type synthDialect struct {
	site   *schemas.Site
	layout string // text dates
	cols   []synthColumn
	cells  []synthCell
}

// newSynthDialect maps the canonical columns of kind onto the site's
// headers and codes (the inverse of its mapping); canonical ignores the
// mapping. itemNames are the names behind item (or component) indexes.
func newSynthDialect(s *schemas.Study, site *schemas.Site, kind string, itemNames []string) (*synthDialect, error) {
	d := &synthDialect{site: site, layout: site.DateLayout}
	alias := map[string]string{}
	for _, a := range sortedStrings(site.Headers) {
		if c := site.Headers[a]; alias[c] == "" {
			alias[c] = a
		}
	}
	fixed := map[string]int{
		"participant_id": synthSrcID, "team_code": synthSrcTeam, "wave": synthSrcWave,
		"interview_date": synthSrcDate, "rating_date": synthSrcDate, "withdrawn": synthSrcWithdrawn,
		"period": synthSrcPeriod, "rater_id": synthSrcRater, "rater_role": synthSrcRole,
	}
	demo := map[string][2]int{} // name → source and index
	if kind == schemas.KindParticipants {
		for i, n := range s.CodedDemographics() {
			demo[n] = [2]int{synthSrcDemo, i}
		}
		for i, n := range s.BinaryDemographics() {
			demo[n] = [2]int{synthSrcFlag, i}
		}
	}
	item := map[string]int{}
	for i, n := range itemNames {
		item[n] = i
	}
	for _, f := range s.ExportFields(kind) {
		c := synthColumn{header: f.Name}
		if a := alias[f.Name]; a != "" {
			c.header = a
		}
		if src, ok := demo[f.Name]; ok {
			c.src, c.idx = src[0], src[1]
		} else if src, ok := fixed[f.Name]; ok {
			c.src = src
		} else if i, ok := item[f.Name]; ok {
			c.src = i
		} else {
			return nil, fmt.Errorf("%s column %s: the generator has no values for it", kind, f.Name)
		}
		if m := site.ValueMap(f.Name); len(m) > 0 {
			c.codes = map[string]string{}
			for _, export := range sortedStrings(m) {
				if canon := m[export]; c.codes[canon] == "" {
					c.codes[canon] = export
				}
			}
		}
		if f.Type == schemas.FieldInt && f.Max-f.Min <= 1000 {
			c.min = int32(f.Min)
			for v := f.Min; v <= f.Max; v++ {
				c.ints = append(c.ints, c.intCell(int64(v)))
			}
		}
		d.cols = append(d.cols, c)
	}
	d.cells = make([]synthCell, len(d.cols))
	return d, nil
}

func sortedStrings(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// intCell is the export cell of an integer: its code when the site maps
// it to one, else the number.
func (c *synthColumn) intCell(v int64) synthCell {
	text := strconv.FormatInt(v, 10)
	if e, ok := c.codes[text]; ok {
		if n, err := strconv.ParseInt(e, 10, 64); err == nil {
			return synthCell{kind: synthNumber, n: n}
		}
		return synthCell{kind: synthText, s: e}
	}
	return synthCell{kind: synthNumber, n: v}
}

func (c *synthColumn) code(v string) synthCell {
	if v == "" {
		return synthCell{}
	}
	if e, ok := c.codes[v]; ok {
		return synthCell{kind: synthText, s: e}
	}
	return synthCell{kind: synthText, s: v}
}

func (c *synthColumn) value(v SynthValue) synthCell {
	if !v.Valid {
		return synthCell{}
	}
	if i := v.Value - c.min; i >= 0 && int(i) < len(c.ints) {
		return c.ints[i]
	}
	return c.intCell(int64(v.Value))
}

func synthDateCell(t time.Time) synthCell {
	if t.IsZero() {
		return synthCell{}
	}
	return synthCell{kind: synthDate, t: t}
}

func (d *synthDialect) header() []synthCell {
	out := make([]synthCell, len(d.cols))
	for i, c := range d.cols {
		out[i] = synthCell{kind: synthText, s: c.header}
	}
	return out
}

// interview converts a participants row; the cells are reused.
func (d *synthDialect) interview(r *SynthInterview) []synthCell {
	for i := range d.cols {
		c := &d.cols[i]
		var cell synthCell
		switch c.src {
		case synthSrcID:
			cell = synthCell{kind: synthText, s: r.ParticipantID}
		case synthSrcTeam:
			cell = c.code(r.Team)
		case synthSrcWave:
			cell = c.code(r.Wave)
		case synthSrcDate:
			cell = synthDateCell(r.Date)
		case synthSrcDemo:
			cell = c.code(r.Demo[c.idx])
		case synthSrcFlag:
			cell = c.value(r.Flags[c.idx])
		case synthSrcWithdrawn:
			w := SynthValue{Valid: true}
			if r.Withdrawn {
				w.Value = 1
			}
			cell = c.value(w)
		default:
			if c.src >= 0 && c.src < len(r.Items) {
				cell = c.value(r.Items[c.src])
			}
		}
		d.cells[i] = cell
	}
	return d.cells
}

// rating converts a fidelity row; the cells are reused.
func (d *synthDialect) rating(r *SynthRating) []synthCell {
	for i := range d.cols {
		c := &d.cols[i]
		var cell synthCell
		switch c.src {
		case synthSrcTeam:
			cell = c.code(r.Team)
		case synthSrcPeriod:
			cell = c.code(r.Period)
		case synthSrcRater:
			cell = synthCell{kind: synthText, s: r.RaterID}
		case synthSrcRole:
			cell = c.code(r.RaterRole)
		case synthSrcDate:
			cell = synthDateCell(r.Date)
		default:
			if c.src >= 0 && c.src < len(r.Components) {
				cell = c.value(r.Components[c.src])
			}
		}
		d.cells[i] = cell
	}
	return d.cells
}

// synthWriteTrust writes one trust's participants and fidelity files; on
// failure it still returns the files it completed.
func synthWriteTrust(ctx context.Context, s *schemas.Study, opts SynthOptions, dir, trust string) ([]SynthFile, error) {
	site := s.Sites[trust]
	if site == nil {
		return nil, fmt.Errorf("trust %s has no site mapping", trust)
	}
	// A trust whose REDCap exports come under its own names (format
	// redcap) sends its exports here in the canonical template.
	canonical := opts.Canonical || site.Format == schemas.FormatRedcap
	if canonical {
		site = schemas.Canonical(trust)
	}
	name := func(kind string) string {
		if canonical {
			return schemas.CanonicalFileName(trust, kind, opts.ExportDate)
		}
		return site.FileName(kind, opts.ExportDate)
	}
	gen := newSynthGen(s, opts, trust, synthTrustSizes(s, opts)[trust])
	pd, err := newSynthDialect(s, site, schemas.KindParticipants, gen.row.ItemNames)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", trust, err)
	}
	var components []string
	for _, c := range s.Fidelity.Components {
		components = append(components, c.Code)
	}
	fd, err := newSynthDialect(s, site, schemas.KindFidelity, components)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", trust, err)
	}
	var out []SynthFile
	f, err := synthWriteFile(ctx, dir, name(schemas.KindParticipants), pd, "Participants", opts.ExportDate, func(emit func([]synthCell) error) error {
		return gen.run(ctx, func(r *SynthInterview) error { return emit(pd.interview(r)) })
	})
	if err != nil {
		return nil, err
	}
	out = append(out, SynthFile{Trust: trust, Kind: schemas.KindParticipants, Name: f.Name, Path: f.Path, Rows: f.Rows})
	f, err = synthWriteFile(ctx, dir, name(schemas.KindFidelity), fd, "Fidelity", opts.ExportDate, func(emit func([]synthCell) error) error {
		return synthRatings(ctx, s, opts, trust, func(r *SynthRating) error { return emit(fd.rating(r)) })
	})
	if err != nil {
		return out, err // the participants file is complete: the caller removes it
	}
	out = append(out, SynthFile{Trust: trust, Kind: schemas.KindFidelity, Name: f.Name, Path: f.Path, Rows: f.Rows})
	return out, nil
}

// synthMkdir creates the output folder, 0750.
func synthMkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create output folder: %w", err)
	}
	return nil
}

// synthWriteFile writes one export beside its final name and renames it
// into place when complete; on failure nothing is left behind.
func synthWriteFile(ctx context.Context, dir, name string, d *synthDialect, sheet string, exportDate time.Time, fill func(emit func([]synthCell) error) error) (SynthFile, error) {
	res := SynthFile{Name: name, Path: filepath.Join(dir, name)}
	if err := warehouse.CheckPathElem("export file name", name); err != nil {
		return res, fmt.Errorf("synth: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return res, fmt.Errorf("create %s: %w", name, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o640); err != nil {
		return res, fmt.Errorf("create %s: %w", name, err)
	}
	bw := bufio.NewWriterSize(tmp, 1<<18)
	var sink synthSink
	if d.site.Format == "xlsx" {
		sink, err = newSynthXLSX(bw, sheet, d.layout, exportDate)
	} else {
		sink, err = newSynthCSV(bw, d.site)
	}
	if err != nil {
		return res, fmt.Errorf("write %s: %w", name, err)
	}
	defer sink.release()
	if err := sink.writeRow(d.header()); err != nil {
		return res, fmt.Errorf("write %s: %w", name, err)
	}
	err = fill(func(cells []synthCell) error {
		res.Rows++
		return sink.writeRow(cells)
	})
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return res, err
		}
		return res, fmt.Errorf("write %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := sink.finish(); err != nil {
		return res, fmt.Errorf("write %s: %w", name, err)
	}
	if err := bw.Flush(); err != nil {
		return res, fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return res, fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), res.Path); err != nil {
		os.Remove(tmp.Name())
		return res, fmt.Errorf("write %s: %w", name, err)
	}
	ok = true
	return res, nil
}

// synthCSV writes delimited text: UTF-8 (with a BOM and CRLF line ends for
// utf-8-bom, as Excel's "CSV UTF-8") or Windows-1252.
type synthCSV struct {
	w      *bufio.Writer
	delim  byte
	eol    string
	layout string
	cp1252 bool
	buf    []byte
}

func newSynthCSV(w *bufio.Writer, site *schemas.Site) (*synthCSV, error) {
	c := &synthCSV{w: w, delim: ',', eol: "\n", layout: site.DateLayout}
	if site.Delimiter != "" {
		r, size := utf8.DecodeRuneInString(site.Delimiter)
		if r >= utf8.RuneSelf || size != len(site.Delimiter) {
			return nil, fmt.Errorf("delimiter %q: only one ASCII character is supported", site.Delimiter)
		}
		c.delim = site.Delimiter[0]
	}
	switch site.Encoding {
	case "", "utf-8":
	case "utf-8-bom":
		c.eol = "\r\n"
		if _, err := w.WriteString("\ufeff"); err != nil {
			return nil, err
		}
	case "windows-1252":
		c.cp1252 = true
	default:
		return nil, fmt.Errorf("encoding %q is not supported", site.Encoding)
	}
	return c, nil
}

func (c *synthCSV) writeRow(cells []synthCell) error {
	b := c.buf[:0]
	for i, cell := range cells {
		if i > 0 {
			b = append(b, c.delim)
		}
		switch cell.kind {
		case synthText:
			var err error
			if b, err = c.appendText(b, cell.s); err != nil {
				return fmt.Errorf("column %d: %w", i+1, err)
			}
		case synthNumber:
			b = strconv.AppendInt(b, cell.n, 10)
		case synthDate:
			b = cell.t.AppendFormat(b, c.layout)
		}
	}
	b = append(b, c.eol...)
	c.buf = b
	_, err := c.w.Write(b)
	return err
}

// appendText appends a field, quoted when it holds the delimiter, a quote
// or a line end, and encoded as the file is.
func (c *synthCSV) appendText(b []byte, s string) ([]byte, error) {
	quote := false
	for i := 0; i < len(s); i++ {
		if ch := s[i]; ch == c.delim || ch == '"' || ch == '\n' || ch == '\r' {
			quote = true
			break
		}
	}
	if quote {
		b = append(b, '"')
	}
	for _, r := range s {
		switch {
		case r == '"':
			b = append(b, '"', '"')
		case r < utf8.RuneSelf || !c.cp1252:
			b = utf8.AppendRune(b, r)
		default:
			x, ok := charmap.Windows1252.EncodeRune(r)
			if !ok {
				return b, fmt.Errorf("character U+%04X cannot be written in windows-1252", r)
			}
			b = append(b, x)
		}
	}
	if quote {
		b = append(b, '"')
	}
	return b, nil
}

func (c *synthCSV) finish() error { return nil }

func (c *synthCSV) release() {}

// synthXLSX writes an Excel workbook of one sheet through excelize's
// stream writer: numbers as numeric cells, dates as date cells, blanks as
// absent cells. The zip is written straight to the output with every
// entry dated the export date, so the same rows give the same bytes.
type synthXLSX struct {
	f     *excelize.File
	sw    *excelize.StreamWriter
	out   io.Writer
	mod   time.Time
	style int
	row   int
	vals  []any
}

func newSynthXLSX(out io.Writer, sheet, layout string, exportDate time.Time) (*synthXLSX, error) {
	f := excelize.NewFile()
	x := &synthXLSX{f: f, out: out, mod: exportDate}
	fail := func(err error) (*synthXLSX, error) {
		f.Close()
		return nil, err
	}
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return fail(fmt.Errorf("name sheet: %w", err))
	}
	stamp := exportDate.Format("2006-01-02T15:04:05Z")
	if err := f.SetDocProps(&excelize.DocProperties{Creator: "cpi synth", Created: stamp, Modified: stamp, Title: "Synthetic " + sheet + " export"}); err != nil {
		return fail(fmt.Errorf("document properties: %w", err))
	}
	numFmt := synthExcelDateFormat(layout)
	style, err := f.NewStyle(&excelize.Style{CustomNumFmt: &numFmt})
	if err != nil {
		return fail(fmt.Errorf("date style: %w", err))
	}
	x.style = style
	if x.sw, err = f.NewStreamWriter(sheet); err != nil {
		return fail(fmt.Errorf("sheet %s: %w", sheet, err))
	}
	return x, nil
}

func (x *synthXLSX) writeRow(cells []synthCell) error {
	x.row++
	if x.row > excelize.TotalRows {
		return fmt.Errorf("more than %d rows do not fit a worksheet", excelize.TotalRows)
	}
	x.vals = x.vals[:0]
	for _, c := range cells {
		switch c.kind {
		case synthBlank:
			x.vals = append(x.vals, nil)
		case synthText:
			x.vals = append(x.vals, c.s)
		case synthNumber:
			x.vals = append(x.vals, c.n)
		case synthDate:
			x.vals = append(x.vals, excelize.Cell{StyleID: x.style, Value: c.t})
		}
	}
	ref, err := excelize.CoordinatesToCellName(1, x.row)
	if err != nil {
		return err
	}
	return x.sw.SetRow(ref, x.vals)
}

func (x *synthXLSX) release() { _ = x.f.Close() }

func (x *synthXLSX) finish() error {
	if err := x.sw.Flush(); err != nil {
		return fmt.Errorf("flush sheet: %w", err)
	}
	var zerr error
	x.f.SetZipWriter(func(io.Writer) excelize.ZipWriter {
		return &synthZip{zw: zip.NewWriter(x.out), mod: x.mod, err: &zerr}
	})
	if err := x.f.Write(io.Discard); err != nil {
		return fmt.Errorf("write workbook: %w", err)
	}
	return zerr
}

// synthZip is excelize's zip writer with a fixed date on every entry,
// writing to the output rather than to excelize's in-memory buffer.
type synthZip struct {
	zw  *zip.Writer
	mod time.Time
	err *error
}

func (z *synthZip) Create(name string) (io.Writer, error) {
	w, err := z.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: z.mod})
	if err != nil && *z.err == nil {
		*z.err = err
	}
	return w, err
}

func (z *synthZip) AddFS(fs.FS) error {
	return errors.New("synthetic workbook: adding a file system is not supported")
}

func (z *synthZip) Close() error {
	err := z.zw.Close()
	if err != nil && *z.err == nil {
		*z.err = err
	}
	return err
}

// synthExcelDateFormat turns a Go date layout into an Excel number format
// ("02/01/2006" → "dd/mm/yyyy").
func synthExcelDateFormat(layout string) string {
	tokens := []struct{ goTok, excel string }{
		{"2006", "yyyy"}, {"January", "mmmm"}, {"Jan", "mmm"}, {"01", "mm"},
		{"02", "dd"}, {"06", "yy"}, {"1", "m"}, {"2", "d"},
	}
	var out []byte
next:
	for i := 0; i < len(layout); {
		for _, t := range tokens {
			if len(layout)-i >= len(t.goTok) && layout[i:i+len(t.goTok)] == t.goTok {
				out = append(out, t.excel...)
				i += len(t.goTok)
				continue next
			}
		}
		out = append(out, layout[i])
		i++
	}
	return string(out)
}
