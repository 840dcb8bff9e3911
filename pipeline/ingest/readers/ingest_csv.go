package readers

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"golang.org/x/text/encoding/charmap"
)

// csvBufferSize is the read buffer of a CSV export, and the most the first
// look at a file (empty? binary? BOM?) reads.
const csvBufferSize = 64 << 10

// dialect is how a CSV export is written.
type dialect struct {
	encoding  string // utf-8, utf-8-bom or windows-1252
	delimiter rune
}

// errRowTooLarge is what rowLimiter returns through encoding/csv.
var errRowTooLarge = errors.New("record too large")

// rowLimiter stops encoding/csv from reading an unbounded record (a quote
// that is never closed would otherwise pull the rest of the file into
// memory). It counts the bytes handed to the csv.Reader's buffer; base is
// the offset, in the same bytes, where the record being read starts.
type rowLimiter struct {
	r    io.Reader
	n    int64
	base int64
	max  int64
}

func (l *rowLimiter) Read(p []byte) (int, error) {
	if l.n-l.base > l.max {
		return 0, errRowTooLarge
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

// csvReader streams a delimited text export. Memory is bounded by the
// buffer size and ReadLimits.MaxRowBytes, not by the file.
type csvReader struct {
	path   string
	f      *os.File
	lim    *rowLimiter
	skip   int64       // bytes before what the csv.Reader sees (a BOM), when lim counts raw bytes
	r      *csv.Reader // the general path: every record, or those the fast path hands over
	src    *bufio.Reader
	header []string
	limits ReadLimits
	// fast reads lines without a quote itself (most lines of an export)
	// and hands a line with one, with the lines its record spans, to r
	// through feed; general (tests) sends every record through r.
	fast   bool
	feed   *lineFeeder
	comma  string // the delimiter, UTF-8
	nLines int    // lines read so far (the fast path's count; r's lines are added to it)
	offset int64  // bytes of src consumed so far (csv.Reader.InputOffset on the general path)
	raw    []byte // a line longer than src's buffer, put together
	rec    []string
	fbuf   *bufio.Reader // the general path's buffer over feed
	delim  rune
	// prevLine is the line the last record read ended on (its last field's
	// start), for failures found before the next record has a position.
	prevLine int
	err      error // sticky: io.EOF or the *FileError that ended the file
}

// newCSVReader reads the header of the CSV export f and returns a reader
// positioned at the first data row. It takes ownership of f only when it
// succeeds.
//
// Encoding: UTF-8 (a leading BOM is stripped, and selects UTF-8 even for a
// windows-1252 dialect) or windows-1252 (decoded to UTF-8). Line ends LF or
// CRLF. Lines are those of the file: a quoted field may span lines, and a
// row's line is the one it starts on; empty lines are skipped.
//
// general sends every record through encoding/csv, as the fast path's
// tests compare.
func newCSVReader(path string, f *os.File, d dialect, limits ReadLimits, general bool) (*csvReader, error) {
	switch d.delimiter {
	case '"', '\r', '\n', 0, 0xFFFD:
		return nil, fmt.Errorf("read %s: the site's delimiter cannot delimit CSV", path)
	}
	cr := &csvReader{path: path, f: f, limits: limits}
	maxBytes := int64(limits.MaxRowBytes) + csvBufferSize
	first := &rowLimiter{r: f, max: maxBytes}
	buf := bufio.NewReaderSize(first, csvBufferSize)
	head, err := buf.Peek(csvBufferSize)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if fe := sniff(path, head, err == io.EOF); fe != nil {
		return nil, fe
	}
	src := buf
	if bom := bytes.HasPrefix(head, utf8BOM); bom || d.encoding != "windows-1252" {
		// The csv.Reader reads the file's bytes as they are: count those.
		cr.lim = first
		if bom {
			if _, err := buf.Discard(len(utf8BOM)); err != nil {
				return nil, fmt.Errorf("read %s: %w", path, err)
			}
			cr.skip = int64(len(utf8BOM))
		}
	} else {
		// Count decoded bytes, as the csv.Reader's offsets do.
		first.max = math.MaxInt64
		cr.lim = &rowLimiter{r: charmap.Windows1252.NewDecoder().Reader(buf), max: maxBytes}
		src = bufio.NewReaderSize(cr.lim, csvBufferSize)
	}
	cr.src, cr.fast, cr.comma, cr.delim = src, !general, string(d.delimiter), d.delimiter
	if general {
		cr.r = newGeneralCSV(src, d.delimiter)
	} else {
		cr.feed = &lineFeeder{src: src}
		cr.fbuf = bufio.NewReaderSize(cr.feed, csvBufferSize)
	}

	rec, line, last, err := cr.read()
	if err != nil {
		if err == io.EOF {
			return nil, &FileError{File: path, Code: CodeEmptyFile, Msg: "no rows"}
		}
		return nil, cr.mapErr(err)
	}
	if line != 1 {
		return nil, &FileError{File: path, Code: CodeNoHeader, Line: 1, Msg: "line 1 is empty"}
	}
	h, fe := makeHeader(path, rec, limits)
	if fe != nil {
		return nil, fe
	}
	cr.header = h
	cr.prevLine = last
	cr.lim.base = cr.offset + cr.skip
	return cr, nil
}

// newGeneralCSV is encoding/csv as the exports are read: any number of
// fields a record, strict quotes, the record's slice reused.
func newGeneralCSV(src io.Reader, comma rune) *csv.Reader {
	r := csv.NewReader(src)
	r.Comma = comma
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	r.LazyQuotes = false
	return r
}

// read returns the next record, the line it starts on and the line its
// last field starts on. Errors are encoding/csv's (mapErr maps them).
//
// The fast path splits a line without a double quote at the delimiter
// itself: encoding/csv does exactly that with such a line (a line ending
// CRLF loses the CR; an empty line is skipped; a CR before the end of the
// file is dropped), at a fraction of the cost. A line with a quote may
// start a quoted field that spans lines, so it goes to encoding/csv with
// the lines after it through feed, which hands over one line at a time,
// only when asked: the csv.Reader consumes exactly the lines of the
// record, and the fast path goes on after them. Its line numbers count
// from the record's start.
func (r *csvReader) read() ([]string, int, int, error) {
	if !r.fast {
		rec, err := r.r.Read()
		if err != nil {
			return nil, 0, 0, err
		}
		first, _ := r.r.FieldPos(0)
		last, _ := r.r.FieldPos(len(rec) - 1)
		r.offset = r.r.InputOffset()
		return rec, first, last, nil
	}
	for {
		line, err := r.src.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			r.raw = append(r.raw[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = r.src.ReadSlice('\n')
				r.raw = append(r.raw, line...)
			}
			line = r.raw
		}
		if (err != nil && err != io.EOF) || bytes.IndexByte(line, '"') >= 0 {
			return r.readGeneral(line, err)
		}
		n := len(line)
		if n == 0 { // io.EOF
			return nil, 0, 0, io.EOF
		}
		r.nLines++
		r.offset += int64(n)
		if line[n-1] == '\n' {
			n--
		}
		if n > 0 && line[n-1] == '\r' && (n < len(line) || err == io.EOF) {
			n--
		}
		if n == 0 {
			if err == io.EOF {
				return nil, 0, 0, io.EOF
			}
			continue // an empty line
		}
		r.rec = splitLine(r.rec[:0], string(line[:n]), r.comma)
		return r.rec, r.nLines, r.nLines, nil
	}
}

// splitLine appends the fields of s, split at every comma, to dst. Fields
// are short: a loop over the bytes beats a search per field.
func splitLine(dst []string, s, comma string) []string {
	if len(comma) == 1 {
		c, start := comma[0], 0
		for i := 0; i < len(s); i++ {
			if s[i] == c {
				dst = append(dst, s[start:i])
				start = i + 1
			}
		}
		return append(dst, s[start:])
	}
	for {
		i := strings.Index(s, comma)
		if i < 0 {
			return append(dst, s)
		}
		dst = append(dst, s[:i])
		s = s[i+len(comma):]
	}
}

// readGeneral reads the record that starts with line (and err, what
// reading it returned) through encoding/csv.
func (r *csvReader) readGeneral(line []byte, err error) ([]string, int, int, error) {
	r.feed.start(line, err)
	r.r = newGeneralCSV(r.fbuf, r.delim)
	rec, rerr := r.r.Read()
	base := r.nLines
	r.nLines += r.feed.lines
	r.offset += r.feed.bytes
	if rerr != nil {
		var pe *csv.ParseError
		if errors.As(rerr, &pe) {
			pe.StartLine += base
			pe.Line += base
		}
		return nil, 0, 0, rerr
	}
	first, _ := r.r.FieldPos(0)
	last, _ := r.r.FieldPos(len(rec) - 1)
	return rec, base + first, base + last, nil
}

// sniff looks at the start of a file for what makes it no CSV at all.
func sniff(path string, head []byte, atEOF bool) *FileError {
	if len(head) == 0 {
		return &FileError{File: path, Code: CodeEmptyFile, Msg: "0 bytes"}
	}
	if bytes.HasPrefix(head, []byte{0xFF, 0xFE}) || bytes.HasPrefix(head, []byte{0xFE, 0xFF}) {
		return &FileError{File: path, Code: CodeUndecodable, Line: 1, Msg: "UTF-16 text: save the export as UTF-8"}
	}
	if i := bytes.IndexByte(head, 0); i >= 0 {
		return &FileError{File: path, Code: CodeUndecodable, Line: 1 + bytes.Count(head[:i], []byte{'\n'}),
			Msg: "a NUL byte: binary data, not text"}
	}
	if atEOF && len(bytes.TrimLeft(bytes.TrimPrefix(head, utf8BOM), " \t\r\n\v\f")) == 0 {
		return &FileError{File: path, Code: CodeEmptyFile, Msg: "only white space"}
	}
	return nil
}

// Header implements RowReader.
func (r *csvReader) Header() []string { return r.header }

// Next implements RowReader. A record that breaks the CSV syntax, or a
// field too large or undecodable, ends the file with a *FileError.
func (r *csvReader) Next() ([]string, int, error) {
	if r.err != nil {
		return nil, 0, r.err
	}
	rec, line, last, err := r.read()
	if err != nil {
		r.err = r.mapErr(err)
		return nil, 0, r.err
	}
	if fe := checkCells(r.path, rec, line, r.limits); fe != nil {
		r.err = fe
		return nil, 0, fe
	}
	r.prevLine = last
	r.lim.base = r.offset + r.skip
	return rec, line, nil
}

// mapErr turns what encoding/csv returns into a *FileError when the file is
// at fault; io.EOF stays io.EOF.
func (r *csvReader) mapErr(err error) error {
	if err == io.EOF {
		return io.EOF
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, errRowTooLarge) {
			return r.tooLarge()
		}
		// The place is the record's first line, as for rows; the column
		// only when the fault is on that line.
		fe := &FileError{File: r.path, Code: CodeMalformedCSV, Line: pe.StartLine, Column: pe.Column, Msg: pe.Err.Error()}
		if pe.StartLine != pe.Line {
			fe.Column = 0
			fe.Msg = fmt.Sprintf("%s, found on line %d (a quote never closed?)", fe.Msg, pe.Line)
		}
		return fe
	}
	if errors.Is(err, errRowTooLarge) {
		return r.tooLarge()
	}
	return fmt.Errorf("read %s after line %d: %w", r.path, r.prevLine, err)
}

func (r *csvReader) tooLarge() *FileError {
	return &FileError{File: r.path, Code: CodeRowTooLarge, Line: r.prevLine + 1,
		Msg: fmt.Sprintf("a record over %d bytes (a quote never closed?)", r.limits.MaxRowBytes)}
}

// lineFeeder hands encoding/csv the record the fast path could not split:
// first the line that has a quote (and the error reading it gave), then
// one line of src at a time as the csv.Reader asks for more, so that it
// never reads past the end of its record.
type lineFeeder struct {
	src     *bufio.Reader
	pending []byte
	err     error // after pending: what reading src returned
	lines   int   // newlines handed over since start
	bytes   int64 // bytes handed over since start
}

// start begins a record with line, which reading src ended with err.
func (f *lineFeeder) start(line []byte, err error) {
	f.pending, f.err, f.lines, f.bytes = line, err, 0, 0
}

func (f *lineFeeder) Read(p []byte) (int, error) {
	if len(f.pending) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		line, err := f.src.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			err = nil // the rest of the line comes with the next read
		}
		f.pending, f.err = line, err
		if len(line) == 0 {
			return 0, err
		}
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	f.lines += bytes.Count(p[:n], []byte{'\n'})
	f.bytes += int64(n)
	return n, nil
}

// Close implements RowReader.
func (r *csvReader) Close() error {
	if r.err == nil {
		r.err = errors.New("reader closed")
	}
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", r.path, err)
	}
	return nil
}
