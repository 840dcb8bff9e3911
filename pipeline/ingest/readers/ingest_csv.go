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
	skip   int64 // bytes before what the csv.Reader sees (a BOM), when lim counts raw bytes
	r      *csv.Reader
	header []string
	limits ReadLimits
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
func newCSVReader(path string, f *os.File, d dialect, limits ReadLimits) (*csvReader, error) {
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
	cr.r = csv.NewReader(src)
	cr.r.Comma = d.delimiter
	cr.r.FieldsPerRecord = -1
	cr.r.ReuseRecord = true
	cr.r.LazyQuotes = false

	rec, err := cr.r.Read()
	if err != nil {
		if err == io.EOF {
			return nil, &FileError{File: path, Code: CodeEmptyFile, Msg: "no rows"}
		}
		return nil, cr.mapErr(err)
	}
	if line, _ := cr.r.FieldPos(0); line != 1 {
		return nil, &FileError{File: path, Code: CodeNoHeader, Line: 1, Msg: "line 1 is empty"}
	}
	h, fe := makeHeader(path, rec, limits)
	if fe != nil {
		return nil, fe
	}
	cr.header = h
	cr.prevLine, _ = cr.r.FieldPos(len(rec) - 1)
	cr.lim.base = cr.r.InputOffset() + cr.skip
	return cr, nil
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
	rec, err := r.r.Read()
	if err != nil {
		r.err = r.mapErr(err)
		return nil, 0, r.err
	}
	line, _ := r.r.FieldPos(0)
	if fe := checkCells(r.path, rec, line, r.limits); fe != nil {
		r.err = fe
		return nil, 0, fe
	}
	r.prevLine, _ = r.r.FieldPos(len(rec) - 1)
	r.lim.base = r.r.InputOffset() + r.skip
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
