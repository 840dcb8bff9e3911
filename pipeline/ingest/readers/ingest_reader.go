package readers

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/connectingpeople/cpi/schemas"
)

// RowReader reads an export's rows as decoded text cells. It is the one
// interface the CSV and XLSX readers share; the rest of ingest never knows
// which it has.
//
// A reader never alters a value beyond decoding it to UTF-8: data cells are
// returned untrimmed, blank cells as "". A row with more or fewer cells than
// the header is returned as it is (the validator rejects it); only the XLSX
// reader pads a short row, up to the header width, because a workbook does
// not store trailing empty cells. Errors that end the file are *FileError;
// after one, Next keeps returning it.
type RowReader interface {
	// Header returns the header cells (line 1), trimmed of surrounding
	// white space, byte order mark removed. The slice is the reader's own:
	// do not modify it.
	Header() []string
	// Next returns the next data row's cells and the 1-based line (row) it
	// starts on; io.EOF at the end. Lines increase strictly from call to
	// call. The returned slice may be reused by the next call (callers copy
	// what they keep).
	Next() (cells []string, line int, err error)
	// Close releases the file and any temporary files.
	Close() error
}

var (
	_ RowReader = (*csvReader)(nil)
	_ RowReader = (*xlsxReader)(nil)
)

// Stable codes of file-level failures (FileError.Code). They are part of the
// ledger and problem-list contract: never rename one.
const (
	CodeEmptyFile       = "empty_file"       // 0 bytes, or only white space
	CodeNoHeader        = "no_header"        // line 1 is missing or blank
	CodeUndecodable     = "undecodable"      // bad UTF-8, NUL bytes, UTF-16, a stray byte order mark
	CodeMalformedCSV    = "malformed_csv"    // unbalanced or bare quotes
	CodeDuplicateHeader = "duplicate_header" // two columns with one name
	CodeFieldTooLarge   = "field_too_large"  // a field over ReadLimits.MaxFieldBytes
	CodeRowTooLarge     = "row_too_large"    // a record over ReadLimits.MaxRowBytes (often an unclosed quote)
	CodeXLSXUnreadable  = "xlsx_unreadable"  // not a workbook excelize can read, or a corrupt part
	CodeXLSXTooLarge    = "xlsx_too_large"   // over the uncompressed size or compression ratio limits
	CodeXLSXNoSheet     = "xlsx_no_sheet"    // the configured sheet is missing, or there are none
)

// FileError is a failure that quarantines a whole export. It carries the
// place and a stable Code, never a cell value: Msg is fixed text plus
// numbers. Line is 1-based (0 when the failure has no line). Column is the
// 1-based field number, except for malformed_csv where it is the 1-based
// byte position within the line as encoding/csv reports it; 0 when n/a.
type FileError struct {
	File   string
	Code   string
	Line   int
	Column int
	Msg    string
}

// Error formats the place, code and message as
// "file: line L, column C: code: msg", leaving out what is unknown.
func (e *FileError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(", column ")
			b.WriteString(strconv.Itoa(e.Column))
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Code)
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	return b.String()
}

// ReadLimits bounds what a reader accepts, so a hostile or broken export
// costs bounded memory. Zero fields take the defaults.
type ReadLimits struct {
	// MaxFieldBytes is the largest cell, in decoded bytes (default 64 KiB).
	MaxFieldBytes int
	// MaxRowBytes is the largest CSV record, in decoded bytes (default
	// 1 MiB; enforced with the slack of the 64 KiB read buffer). A quote
	// that is never closed runs into this limit rather than reading the
	// rest of the file into memory.
	MaxRowBytes int
	// MaxXLSXUncompressed is the largest total uncompressed size of a
	// workbook's parts, from the zip central directory (default 512 MiB).
	MaxXLSXUncompressed int64
	// MaxXLSXRatio is the largest uncompressed/compressed ratio of the
	// whole workbook and of any part over 1 MiB (default 200).
	MaxXLSXRatio float64
}

// Default read limits.
const (
	DefaultMaxFieldBytes       = 64 << 10
	DefaultMaxRowBytes         = 1 << 20
	DefaultMaxXLSXUncompressed = 512 << 20
	DefaultMaxXLSXRatio        = 200
)

func (l ReadLimits) withDefaults() ReadLimits {
	if l.MaxFieldBytes <= 0 {
		l.MaxFieldBytes = DefaultMaxFieldBytes
	}
	if l.MaxRowBytes <= 0 {
		l.MaxRowBytes = DefaultMaxRowBytes
	}
	if l.MaxXLSXUncompressed <= 0 {
		l.MaxXLSXUncompressed = DefaultMaxXLSXUncompressed
	}
	if l.MaxXLSXRatio <= 0 {
		l.MaxXLSXRatio = DefaultMaxXLSXRatio
	}
	return l
}

var (
	zipMagic = []byte("PK\x03\x04")
	// oleMagic starts a Compound File: a legacy .xls or an encrypted workbook.
	oleMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}
	utf8BOM  = []byte{0xEF, 0xBB, 0xBF}
)

// canonicalProbeBytes bounds how much of a file is read to compare its first
// line with the canonical headers.
const canonicalProbeBytes = 64 << 10

// OpenExport opens the export at path and returns a reader positioned after
// its header.
//
// Which reader:
//   - a file that starts with the zip magic "PK\x03\x04" is read as XLSX
//     (see openXLSX: sheet choice, size limits);
//   - else, a file whose first line, read as UTF-8 CSV with commas (BOM
//     tolerated, cells trimmed), names distinct columns of one of
//     canonicalHeaders, in any order, its key columns (the header's first
//     three) among them, is read as canonical CSV whatever the site says,
//     and the bool result is true (see matchesAny);
//   - else it is read as CSV in the site's dialect (encoding, delimiter). A
//     site whose format is xlsx but whose file is not a workbook is read as
//     UTF-8 CSV with commas. A file that starts with a UTF-8 byte order mark
//     is read as UTF-8 even from a windows-1252 site: the mark is
//     unambiguous, and Excel's "CSV UTF-8" writes it. A nil site reads as
//     UTF-8 CSV with commas.
//
// Data problems in the file are returned as *FileError (here or later from
// Next); an error of any other type (the file cannot be opened, an I/O
// failure) is an operational failure, not the export's fault.
func OpenExport(path string, site *schemas.Site, canonicalHeaders [][]string, limits ReadLimits) (RowReader, bool, error) {
	limits = limits.withDefaults()
	f, err := os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("open export: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("open export: %w", err)
	}
	head := make([]byte, 8)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		f.Close()
		return nil, false, fmt.Errorf("read export %s: %w", path, err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, zipMagic):
		f.Close()
		r, err := openXLSX(path, fi.Size(), site, limits)
		return r, false, err
	case bytes.HasPrefix(head, oleMagic):
		f.Close()
		return nil, false, &FileError{File: path, Code: CodeXLSXUnreadable, Msg: "a legacy .xls or password-protected workbook: save it as an unprotected .xlsx"}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("read export %s: %w", path, err)
	}
	canonical, err := isCanonical(f, canonicalHeaders)
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("read export %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("read export %s: %w", path, err)
	}
	d := dialect{encoding: "utf-8", delimiter: ','}
	if !canonical && site != nil && site.Format == "csv" {
		d.encoding = site.Encoding
		if r, size := utf8.DecodeRuneInString(site.Delimiter); size > 0 && r != utf8.RuneError {
			d.delimiter = r
		}
	}
	r, err := newCSVReader(path, f, d, limits, false)
	if err != nil {
		f.Close()
		return nil, false, err
	}
	return r, canonical, nil
}

// isCanonical reports whether the first line of r, read as UTF-8 CSV with
// commas, is a canonical header (matchesAny; cells trimmed, a BOM
// tolerated). It
// reads at most canonicalProbeBytes; a line that does not fit is not
// canonical.
func isCanonical(r io.Reader, headers [][]string) (bool, error) {
	if len(headers) == 0 {
		return false, nil
	}
	buf := make([]byte, canonicalProbeBytes)
	n, err := io.ReadFull(r, buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return false, err
	}
	buf = bytes.TrimPrefix(buf[:n], utf8BOM)
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		if n == canonicalProbeBytes {
			return false, nil
		}
		i = len(buf)
	}
	line := bytes.TrimSuffix(buf[:i], []byte("\r"))
	if !utf8.Valid(line) {
		return false, nil
	}
	rec, err := csv.NewReader(bytes.NewReader(line)).Read()
	if err != nil {
		return false, nil
	}
	return matchesAny(rec, headers), nil
}

// canonicalKeys is how many of a canonical header's first columns are its
// key columns (participant_id, team_code, wave; team_code, period,
// rater_id): a canonical file names them all.
const canonicalKeys = 3

// matchesAny reports whether rec is a canonical header by its column
// names: for one of headers, its cells (trimmed) are distinct columns of
// that header, in any order, including the header's key columns. Columns
// may be missing (an export of last year's format, without an instrument
// added since: ingest warns and takes them as blank); a column the header
// does not have makes the line not canonical.
func matchesAny(rec []string, headers [][]string) bool {
next:
	for _, h := range headers {
		if len(rec) > len(h) || len(rec) < min(canonicalKeys, len(h)) {
			continue
		}
		seen := make(map[string]bool, len(rec))
		for _, c := range rec {
			c = strings.TrimSpace(c)
			if seen[c] || !slices.Contains(h, c) {
				continue next
			}
			seen[c] = true
		}
		for _, k := range h[:min(canonicalKeys, len(h))] {
			if !seen[k] {
				continue next
			}
		}
		return true
	}
	return false
}

// cellProblem checks one decoded cell: it returns "" or the code of what is
// wrong with it. In one pass and without allocating it looks for invalid
// UTF-8, NUL bytes and a byte order mark (U+FEFF) anywhere in the cell.
func cellProblem(s string) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == 0 {
				return CodeUndecodable
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\uFEFF' {
			return CodeUndecodable
		}
		i += size
	}
	return ""
}

// checkCells applies the per-cell checks every reader shares: size and
// decoding. Column numbers are 1-based field numbers.
func checkCells(path string, cells []string, line int, limits ReadLimits) *FileError {
	for j, c := range cells {
		if len(c) > limits.MaxFieldBytes {
			return &FileError{File: path, Code: CodeFieldTooLarge, Line: line, Column: j + 1,
				Msg: fmt.Sprintf("a field over %d bytes", limits.MaxFieldBytes)}
		}
		if cellProblem(c) != "" {
			return &FileError{File: path, Code: CodeUndecodable, Line: line, Column: j + 1,
				Msg: "invalid UTF-8, a NUL byte or a stray byte order mark"}
		}
	}
	return nil
}

// makeHeader checks and trims the header cells (a byte order mark at the
// start of the first is dropped) and checks for a blank header and
// duplicate names. Blank header cells are kept (they are not duplicates of
// each other): the caller decides what an unnamed column means.
func makeHeader(path string, raw []string, limits ReadLimits) ([]string, *FileError) {
	h := make([]string, len(raw))
	copy(h, raw)
	if len(h) > 0 {
		h[0] = strings.TrimPrefix(h[0], "\uFEFF")
	}
	if fe := checkCells(path, h, 1, limits); fe != nil {
		return nil, fe
	}
	blank := true
	for i, c := range h {
		h[i] = strings.TrimSpace(c)
		if h[i] != "" {
			blank = false
		}
	}
	if blank {
		return nil, &FileError{File: path, Code: CodeNoHeader, Line: 1, Msg: "the first row is blank"}
	}
	seen := make(map[string]int, len(h))
	for i, name := range h {
		if name == "" {
			continue
		}
		if first, dup := seen[name]; dup {
			return nil, &FileError{File: path, Code: CodeDuplicateHeader, Line: 1, Column: i + 1,
				Msg: fmt.Sprintf("the header of column %d repeats column %d's", i+1, first+1)}
		}
		seen[name] = i
	}
	return h, nil
}

// IsSerial reports whether s is an Excel date serial: digits, with at most
// one decimal point (a time of day).
func IsSerial(s string) bool {
	whole, frac, _ := strings.Cut(s, ".")
	return IsDigits(whole) && (frac == "" || IsDigits(frac))
}

func IsDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
