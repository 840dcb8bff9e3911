package readers

import (
	"archive/zip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connectingpeople/cpi/pipeline/ingest/privacy"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
	"github.com/xuri/excelize/v2"
)

// CodeXLSXExtraSheets is the FileError code of a workbook with several
// sheets holding data whose site mapping names none (see openXLSX). Stable,
// like the codes in ingest_reader.go.
const CodeXLSXExtraSheets = "xlsx_extra_sheets"

// xlsxReader streams one worksheet of a workbook through excelize's row
// iterator, with raw cell values: a date cell yields its serial number
// ("43173"), a number its stored digits, a formula its cached value (never
// evaluated). See openXLSX.
type xlsxReader struct {
	path   string
	f      *excelize.File
	rows   *excelize.Rows
	header []string
	limits ReadLimits
	line   int   // the sheet row the iterator is on (1-based)
	err    error // sticky: io.EOF or the *FileError that ended the file
	sheet  string
	dates  map[int]bool // style index → has a date number format
	// outside is the privacy quarantine of an identifier the preflight
	// found in the workbook's XML outside the cells read (see
	// preflightXLSX), returned by Next at the end of the rows: an
	// identifier in a cell is reported first, by its column.
	outside *FileError
}

// DateFormatted reports whether the cell at a 0-based column of a sheet row
// carries a date number format: a raw value like "31850" is then a date,
// which the privacy guard must see as one outside declared date columns.
func (r *xlsxReader) DateFormatted(col, line int) bool {
	return r.dateFormattedIn(r.sheet, col, line)
}

// dateFormattedIn is DateFormatted for any sheet of the workbook.
func (r *xlsxReader) dateFormattedIn(sheet string, col, line int) (date bool) {
	defer func() {
		if recover() != nil {
			date = false
		}
	}()
	cell, err := excelize.CoordinatesToCellName(col+1, line)
	if err != nil {
		return false
	}
	id, err := r.f.GetCellStyle(sheet, cell)
	if err != nil {
		return false
	}
	if d, ok := r.dates[id]; ok {
		return d
	}
	st, err := r.f.GetStyle(id)
	d := err == nil && isDateNumFmt(st.NumFmt, st.CustomNumFmt)
	if r.dates == nil {
		r.dates = map[int]bool{}
	}
	r.dates[id] = d
	return d
}

// isDateNumFmt reports whether an Excel number format shows a date: the
// built-in date and time formats, or a custom code with day or year
// placeholders outside quoted text and [..] sections.
func isDateNumFmt(builtin int, custom *string) bool {
	if custom == nil || *custom == "" {
		return (builtin >= 14 && builtin <= 22) || (builtin >= 27 && builtin <= 36) || (builtin >= 45 && builtin <= 47) || (builtin >= 50 && builtin <= 58)
	}
	quoted, bracket := false, false
	for _, c := range strings.ToLower(*custom) {
		switch {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '[':
			bracket = true
		case c == ']':
			bracket = false
		case bracket:
		case c == 'd' || c == 'y':
			return true
		}
	}
	return false
}

// xlsxLargePart is the uncompressed size from which a single zip entry's
// compression ratio is checked on its own (small parts compress wildly and
// harmlessly: empty styles, repeated XML).
const xlsxLargePart = 1 << 20

// openXLSX opens the workbook at path and reads its header row.
//
// Before excelize sees the file, the zip central directory is checked
// against limits (total uncompressed size, and the compression ratio of the
// whole and of each part over 1 MiB), and every worksheet and the shared
// strings are read through once as XML: excelize's row iterator stops
// silently at a corrupt part, which would lose rows without a word.
//
// The sheet read is the site's Sheet (matched case-insensitively, as Excel
// does); with none configured, the only sheet holding data (the first
// sheet when none does). A workbook with several sheets of data and no
// Sheet configured is set aside as xlsx_extra_sheets: which sheet holds the
// export is the site mapping's to say, not a guess.
//
// The privacy guard reads everything else the workbook holds before any row
// is returned (see chooseSheet): every other sheet, hidden or not, every
// sheet's cell comments and every sheet's name. An identifier there is a
// *FileError with the privacy code (privacy_<rule>), its line and column
// those of the cell and its message naming the sheet by position. The
// sheet read is guarded row by row by the caller (rowChecker.privacy).
//
// Rows: line is the sheet row number (the header is row 1). A row with no
// values (absent from the sheet or all empty) is skipped, like an empty
// line of a CSV file: a workbook cannot tell the two apart. excelize drops
// trailing empty cells, so a short row is padded with "" up to the header
// width; a longer row is returned longer.
func openXLSX(path string, size int64, site *schemas.Site, limits ReadLimits) (r *xlsxReader, err error) {
	outside, err := preflightXLSX(path, size, limits)
	if err != nil {
		return nil, err
	}
	xr := &xlsxReader{path: path, limits: limits, outside: outside}
	defer func() {
		// excelize has panicked on crafted workbooks before (shared string
		// indexes, row numbers): a panic here is the file's fault.
		if p := recover(); p != nil {
			xr.Close()
			r, err = nil, xr.unreadable(0, "the workbook could not be read")
		}
	}()
	f, err := excelize.OpenFile(path, excelize.Options{
		RawCellValue:   true,
		UnzipSizeLimit: limits.MaxXLSXUncompressed,
	})
	if err != nil {
		if errors.Is(err, excelize.ErrWorkbookFileFormat) || errors.Is(err, zip.ErrFormat) {
			return nil, xr.unreadable(0, "not a workbook")
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("open workbook: %w", err)
		}
		return nil, xr.unreadable(0, "the workbook could not be opened")
	}
	xr.f = f
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		f.Close()
		return nil, &FileError{File: path, Code: CodeXLSXNoSheet, Msg: "the workbook has no sheets"}
	}
	sheet, fe := xr.chooseSheet(sheets, site)
	if fe != nil {
		f.Close()
		return nil, fe
	}
	xr.sheet = sheet
	rows, err := f.Rows(sheet)
	if err != nil {
		f.Close()
		return nil, xr.unreadable(0, "the sheet could not be read")
	}
	xr.rows = rows
	cells, line, err := xr.next()
	switch {
	case err == io.EOF:
		xr.Close()
		return nil, &FileError{File: path, Code: CodeEmptyFile, Msg: "the sheet has no rows"}
	case err != nil:
		xr.Close()
		return nil, err
	case line != 1:
		xr.Close()
		return nil, &FileError{File: path, Code: CodeNoHeader, Line: 1, Msg: "row 1 is empty"}
	}
	h, fe := makeHeader(path, cells, limits)
	if fe != nil {
		xr.Close()
		return nil, fe
	}
	xr.header = h
	return xr, nil
}

// chooseSheet picks the sheet to read (see openXLSX) and guards the rest of
// the workbook: the other sheets cell by cell (all sheets of data when it
// sets the workbook aside for extra sheets, so that an identifier is
// reported as such), every sheet's comments and name.
func (r *xlsxReader) chooseSheet(sheets []string, site *schemas.Site) (string, *FileError) {
	sheet := sheets[0]
	named := site != nil && site.Sheet != ""
	if named {
		sheet = ""
		for _, s := range sheets {
			if strings.EqualFold(s, site.Sheet) {
				sheet = s
				break
			}
		}
		if sheet == "" {
			return "", &FileError{File: r.path, Code: CodeXLSXNoSheet, Msg: "the workbook has no sheet named as the site mapping says"}
		}
	}
	var sweep []int // sheets guarded here, cell by cell
	extra := 0
	if len(sheets) > 1 {
		if named {
			for i, s := range sheets {
				if s != sheet {
					sweep = append(sweep, i)
				}
			}
		} else {
			for i, s := range sheets {
				has, fe := r.sheetHasData(s)
				if fe != nil {
					return "", fe
				}
				if has {
					sweep = append(sweep, i)
				}
			}
			switch len(sweep) {
			case 0:
			case 1:
				sheet, sweep = sheets[sweep[0]], nil
			default:
				extra = len(sweep)
			}
		}
	}
	for i := range sheets {
		if rule, bad := privacy.CheckCell(sheets[i], true); bad {
			return "", r.privacyError(rule, 0, 0, fmt.Sprintf("sheet %d's name", i+1))
		}
	}
	for _, i := range sweep {
		if fe := r.guardSheet(i, sheets[i], site); fe != nil {
			return "", fe
		}
	}
	for i, s := range sheets {
		if fe := r.guardComments(i, s); fe != nil {
			return "", fe
		}
	}
	if extra > 0 {
		return "", &FileError{File: r.path, Code: CodeXLSXExtraSheets,
			Msg: fmt.Sprintf("the workbook has %d sheets holding data and the site mapping names none: name the export's sheet (sheet:) or send one sheet", extra)}
	}
	return sheet, nil
}

// privacyError is the quarantine of an identifier found outside the rows
// read: where, by sheet position, row and column, and which rule; never
// the value.
func (r *xlsxReader) privacyError(rule privacy.PrivacyRule, line, col int, where string) *FileError {
	return &FileError{File: r.path, Code: warehouse.QuarantinePrivacy + string(rule), Line: line, Column: col,
		Msg: fmt.Sprintf("%s looks like a direct identifier (%s): exports must be anonymised, every sheet of them", where, rule)}
}

// sheetLabel names a sheet by its position, and says when it is hidden.
func (r *xlsxReader) sheetLabel(i int, name string) string {
	if visible, err := r.f.GetSheetVisible(name); err == nil && !visible {
		return fmt.Sprintf("sheet %d (hidden)", i+1)
	}
	return fmt.Sprintf("sheet %d", i+1)
}

// sheetHasData reports whether a sheet holds any cell with a value.
func (r *xlsxReader) sheetHasData(sheet string) (bool, *FileError) {
	rows, err := r.f.Rows(sheet)
	if err != nil {
		return false, r.unreadable(0, "a sheet could not be read")
	}
	defer rows.Close()
	for n := 1; rows.Next(); n++ {
		if n > excelize.TotalRows {
			return false, r.unreadable(0, "a row number beyond Excel's last row")
		}
		cells, err := rows.Columns(excelize.Options{RawCellValue: true})
		if err != nil {
			return false, r.unreadable(0, "a row could not be read")
		}
		for _, c := range cells {
			if c != "" {
				return true, nil
			}
		}
	}
	if rows.Error() != nil {
		return false, r.unreadable(0, "a row could not be read")
	}
	return false, nil
}

// guardSheet checks every cell of a sheet that is not read as the export.
// Its first row with a value is taken as a header: its cells are checked as
// cells and as header names (CheckHeader), and a column whose header the
// site maps to (or names) a declared date column may hold full dates, as
// text or as date cells. Elsewhere a number formatted as a date counts as
// a full date, as in the sheet read.
func (r *xlsxReader) guardSheet(i int, sheet string, site *schemas.Site) *FileError {
	rows, err := r.f.Rows(sheet)
	if err != nil {
		return r.unreadable(0, "a sheet could not be read")
	}
	defer rows.Close()
	var dateCol []bool
	header := true
	for line := 1; rows.Next(); line++ {
		if line > excelize.TotalRows {
			return r.unreadable(0, "a row number beyond Excel's last row")
		}
		cells, err := rows.Columns(excelize.Options{RawCellValue: true})
		if err != nil {
			return r.unreadable(line, "a row could not be read")
		}
		if fe := checkCells(r.path, cells, line, r.limits); fe != nil {
			return fe
		}
		if len(cells) == 0 {
			continue
		}
		for j, c := range cells {
			if c == "" {
				continue
			}
			date := !header && j < len(dateCol) && dateCol[j]
			if rule, bad := privacy.CheckCell(c, date); bad {
				return r.privacyError(rule, line, j+1, fmt.Sprintf("a cell of %s", r.sheetLabel(i, sheet)))
			}
			if header {
				name := strings.TrimSpace(c)
				if site != nil && site.Headers[name] != "" {
					continue // a column of the site's dialect
				}
				if rule, bad := privacy.CheckHeader(name); bad {
					return r.privacyError(rule, line, j+1, fmt.Sprintf("a header of %s", r.sheetLabel(i, sheet)))
				}
			} else if !date && IsSerial(c) && r.dateFormattedIn(sheet, j, line) {
				return r.privacyError(privacy.RuleDateOfBirth, line, j+1, fmt.Sprintf("a date cell of %s", r.sheetLabel(i, sheet)))
			}
		}
		if header {
			header = false
			dateCol = make([]bool, len(cells))
			for j, c := range cells {
				name := strings.TrimSpace(c)
				if site != nil {
					if alias, ok := site.Headers[name]; ok {
						name = alias
					}
				}
				dateCol[j] = slices.Contains(schemas.DateFields(), name)
			}
		}
	}
	if rows.Error() != nil {
		return r.unreadable(0, "a row could not be read")
	}
	return nil
}

// guardComments checks the text and author of every cell comment of a
// sheet, as free text outside any declared date column.
func (r *xlsxReader) guardComments(i int, sheet string) *FileError {
	comments, err := r.f.GetComments(sheet)
	if err != nil {
		return r.unreadable(0, "a sheet's comments could not be read")
	}
	for _, cm := range comments {
		col, line, err := excelize.CellNameToCoordinates(cm.Cell)
		if err != nil {
			col, line = 0, 0
		}
		texts := []string{cm.Text, cm.Author}
		var runs strings.Builder
		for _, p := range cm.Paragraph {
			runs.WriteString(p.Text)
		}
		texts = append(texts, runs.String())
		for k, text := range texts {
			if fe := checkCells(r.path, []string{text}, line, r.limits); fe != nil {
				return fe
			}
			if rule, bad := privacy.CheckCell(text, k == 1); bad {
				return r.privacyError(rule, line, col, fmt.Sprintf("a comment on %s", r.sheetLabel(i, sheet)))
			}
		}
	}
	return nil
}

// preflightXLSX checks a workbook's zip container before anything
// decompresses it for keeps: sizes and ratios from the central directory,
// then a streaming read of the worksheets and shared strings as XML (the
// zip reader enforces the declared sizes and the CRCs as it goes).
//
// The same read guards the text of every part that may hold what a person
// typed, whether or not a cell shows it (xlsxTextPart): worksheets (cell
// values, page headers and footers, parts no sheet of the workbook lists),
// shared strings (those no cell uses too), comments, pivot caches (which
// keep a copy of their source data after the source sheet is gone),
// drawings and charts, external link caches and the workbook part (defined
// names). Text and pivot cache values are checked with CheckCell as in a
// declared date column (without knowing the column, a date is no
// evidence). The first identifier found is returned as outside, a privacy
// *FileError naming the kind of part, never its name or the value; such
// a part damaged as XML is unreadable.
func preflightXLSX(path string, size int64, limits ReadLimits) (outside *FileError, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open workbook: %w", err)
	}
	defer f.Close()
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return nil, &FileError{File: path, Code: CodeXLSXUnreadable, Msg: "not a readable zip container (truncated or damaged?)"}
	}
	var total, packed uint64
	for _, e := range zr.File {
		total += e.UncompressedSize64
		packed += e.CompressedSize64
		if total > uint64(limits.MaxXLSXUncompressed) || total < e.UncompressedSize64 {
			return nil, &FileError{File: path, Code: CodeXLSXTooLarge,
				Msg: fmt.Sprintf("over %d bytes uncompressed", limits.MaxXLSXUncompressed)}
		}
		if e.UncompressedSize64 > xlsxLargePart && float64(e.UncompressedSize64) > limits.MaxXLSXRatio*float64(max(e.CompressedSize64, 1)) {
			return nil, &FileError{File: path, Code: CodeXLSXTooLarge,
				Msg: fmt.Sprintf("a part compressed over %g times", limits.MaxXLSXRatio)}
		}
	}
	if total > xlsxLargePart && float64(total) > limits.MaxXLSXRatio*float64(max(packed, 1)) {
		return nil, &FileError{File: path, Code: CodeXLSXTooLarge,
			Msg: fmt.Sprintf("compressed over %g times", limits.MaxXLSXRatio)}
	}
	for _, e := range zr.File {
		kind := xlsxTextPart(strings.ToLower(e.Name))
		if kind == "" {
			continue
		}
		rule, err := scanXMLPart(e, outside == nil)
		if err != nil {
			return nil, &FileError{File: path, Code: CodeXLSXUnreadable, Msg: "a damaged " + kind + " part"}
		}
		if rule != "" && outside == nil {
			outside = &FileError{File: path, Code: warehouse.QuarantinePrivacy + string(rule),
				Msg: fmt.Sprintf("a %s part of the workbook holds what looks like a direct identifier (%s) outside the cells read: exports must be anonymised, every part of them", kind, rule)}
		}
	}
	return outside, nil
}

// xlsxTextPart names the kind of a workbook part (its lower-case zip name)
// whose text the preflight reads, or "" for the rest (styles, themes,
// relationships, properties).
func xlsxTextPart(name string) string {
	if !strings.HasSuffix(name, ".xml") {
		return ""
	}
	switch {
	case strings.HasPrefix(name, "xl/worksheets/") && !strings.HasPrefix(name, "xl/worksheets/_rels/"):
		return "worksheet"
	case name == "xl/sharedstrings.xml":
		return "shared strings"
	case strings.HasPrefix(name, "xl/comments"), strings.HasPrefix(name, "xl/threadedcomments/"):
		return "comments"
	case strings.HasPrefix(name, "xl/pivotcache/"):
		return "pivot cache"
	case strings.HasPrefix(name, "xl/drawings/") && !strings.HasPrefix(name, "xl/drawings/_rels/"):
		return "drawing"
	case strings.HasPrefix(name, "xl/charts/") && !strings.HasPrefix(name, "xl/charts/_rels/"):
		return "chart"
	case strings.HasPrefix(name, "xl/externallinks/") && !strings.HasPrefix(name, "xl/externallinks/_rels/"):
		return "external link cache"
	case name == "xl/workbook.xml":
		return "workbook"
	}
	return ""
}

// scanXMLPart reads a zip entry through as well-formed XML and, with
// guard, returns the first privacy rule broken by a run of its text or a
// value attribute (v="…", as pivot caches store their items), checked as
// in a declared date column.
func scanXMLPart(e *zip.File, guard bool) (privacy.PrivacyRule, error) {
	rc, err := e.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	d := xml.NewDecoder(rc)
	var found privacy.PrivacyRule
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				return found, nil
			}
			return "", err
		}
		if !guard || found != "" {
			continue
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(t) < 5 { // as CheckCell, without the copy
				continue
			}
			if rule, bad := privacy.CheckCell(string(t), true); bad {
				found = rule
			}
		case xml.StartElement:
			for _, a := range t.Attr {
				if a.Name.Local == "v" {
					if rule, bad := privacy.CheckCell(a.Value, true); bad {
						found = rule
					}
				}
			}
		}
	}
}

// next reads the sheet's next row that has a value. It returns the cells
// as excelize gives them (trailing empty cells dropped), unchecked.
func (r *xlsxReader) next() (cells []string, line int, err error) {
	defer func() {
		if p := recover(); p != nil {
			cells, line, err = nil, 0, r.unreadable(r.line, "a row could not be read")
		}
	}()
	for r.rows.Next() {
		r.line++
		if r.line > excelize.TotalRows {
			return nil, 0, r.unreadable(0, "a row number beyond Excel's last row")
		}
		cells, err := r.rows.Columns(excelize.Options{RawCellValue: true})
		if err != nil {
			return nil, 0, r.unreadable(r.line, "a row could not be read")
		}
		if len(cells) == 0 {
			continue
		}
		return cells, r.line, nil
	}
	if err := r.rows.Error(); err != nil {
		return nil, 0, r.unreadable(r.line+1, "a row could not be read")
	}
	return nil, 0, io.EOF
}

func (r *xlsxReader) unreadable(line int, msg string) *FileError {
	return &FileError{File: r.path, Code: CodeXLSXUnreadable, Line: line, Msg: msg}
}

// Header implements RowReader.
func (r *xlsxReader) Header() []string { return r.header }

// Next implements RowReader.
func (r *xlsxReader) Next() ([]string, int, error) {
	if r.err != nil {
		return nil, 0, r.err
	}
	cells, line, err := r.next()
	if err == io.EOF && r.outside != nil {
		err = r.outside
	}
	if err != nil {
		r.err = err
		return nil, 0, err
	}
	if fe := checkCells(r.path, cells, line, r.limits); fe != nil {
		r.err = fe
		return nil, 0, fe
	}
	for len(cells) < len(r.header) {
		cells = append(cells, "")
	}
	return cells, line, nil
}

// Close implements RowReader: it closes the row iterator and removes
// excelize's temporary files.
func (r *xlsxReader) Close() error {
	if r.err == nil {
		r.err = errors.New("reader closed")
	}
	var errs []error
	if r.rows != nil {
		if err := r.rows.Close(); err != nil {
			errs = append(errs, err)
		}
		r.rows = nil
	}
	if r.f != nil {
		if err := r.f.Close(); err != nil {
			errs = append(errs, err)
		}
		r.f = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close workbook %s: %w", r.path, err)
	}
	return nil
}

// Excel's serial day numbers (1900 date system) that are dates: 1 is
// 1900-01-01, 2958465 is 9999-12-31.
const (
	excelSerialMin = 1
	excelSerialMax = 2958465
)

// ExcelSerialToDate converts an Excel serial day number in the 1900 date
// system, as an XLSX date cell stores it ("43173"), to the date it shows
// (2018-03-14), at midnight UTC.
//
// Serial 1 is 1900-01-01. Excel counts a 29 February 1900 that never was
// (serial 60, after Lotus 1-2-3): serial 60 is rejected and serials above it
// are one day behind the plain count. A fraction is a time of day and is
// dropped. Rejected (false): anything but a plain decimal number (no sign,
// exponent, hex, Inf or NaN), serials below 1 or above 2958465
// (9999-12-31). The 1904 date system (old Mac workbooks) is not handled.
func ExcelSerialToDate(s string) (time.Time, bool) {
	if s == "" || len(s) > 32 {
		return time.Time{}, false
	}
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c == '.' && !dot && i > 0 && i+1 < len(s):
			dot = true
		default:
			return time.Time{}, false
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || v < excelSerialMin || v >= excelSerialMax+1 {
		return time.Time{}, false
	}
	days := int(math.Floor(v))
	switch {
	case days == 60:
		return time.Time{}, false
	case days < 60:
		return time.Date(1899, 12, 31+days, 0, 0, 0, 0, time.UTC), true
	default:
		return time.Date(1899, 12, 30+days, 0, 0, 0, 0, time.UTC), true
	}
}
