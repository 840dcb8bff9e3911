package readers

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/pipeline/ingest/privacy"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
	"github.com/xuri/excelize/v2"
)

func TestExcelSerialToDate(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		// Expected dates as Excel (and LibreOffice in 1900 mode) display them.
		{"1", day(1900, 1, 1), true},
		{"59", day(1900, 2, 28), true},
		{"60", time.Time{}, false}, // 29 February 1900, which never was
		{"61", day(1900, 3, 1), true},
		{"43173", day(2018, 3, 14), true},
		{"43101", day(2018, 1, 1), true},
		{"43173.75", day(2018, 3, 14), true}, // time of day dropped
		{"2958465", day(9999, 12, 31), true},
		{"2958465.5", day(9999, 12, 31), true},
		{"2958466", time.Time{}, false},
		{"0", time.Time{}, false},
		{"0.5", time.Time{}, false},
		{"-1", time.Time{}, false},
		{"", time.Time{}, false},
		{"4.3173E4", time.Time{}, false},
		{"NaN", time.Time{}, false},
		{"Inf", time.Time{}, false},
		{"0x10", time.Time{}, false},
		{"43173.", time.Time{}, false},
		{".5", time.Time{}, false},
		{"1.2.3", time.Time{}, false},
		{"14/03/2018", time.Time{}, false},
		{" 43173", time.Time{}, false},
	} {
		got, ok := ExcelSerialToDate(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("ExcelSerialToDate(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// The converse of excelize's own writer: a date written as a date cell
// reads back raw as its serial, which ExcelSerialToDate turns back.
func TestExcelSerialRoundTrip(t *testing.T) {
	f := excelize.NewFile()
	defer f.Close()
	dates := []time.Time{
		time.Date(1900, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1987, 3, 14, 0, 0, 0, 0, time.UTC),
		time.Date(2018, 3, 14, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC),
	}
	f.SetCellValue("Sheet1", "A1", "date")
	for i, d := range dates {
		if err := f.SetCellValue("Sheet1", fmt.Sprintf("A%d", i+2), d); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "dates.xlsx")
	saveXLSX(t, f, p)
	r, _, err := OpenExport(p, xlsxSite(""), nil, ReadLimits{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, want := range dates {
		cells, line, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		got, ok := ExcelSerialToDate(cells[0])
		if !ok || !got.Equal(want) {
			t.Errorf("line %d: serial %q → %v, %v; want %v", line, cells[0], got, ok, want)
		}
	}
}

func xlsxSite(sheet string) *schemas.Site {
	return &schemas.Site{Trust: "T", Format: "xlsx", DateLayout: "02/01/2006", Sheet: sheet}
}

// xlsxSheet is one worksheet of a hand-made workbook: its sheetData XML.
type xlsxSheet struct {
	name string
	data string // the inside of <sheetData>, or a whole broken document when raw
	raw  bool
}

// writeRawXLSX writes a minimal workbook by hand, so a test controls every
// byte excelize reads: cached formula values, row numbers, broken parts.
func writeRawXLSX(t *testing.T, path string, sheets []xlsxSheet, sharedStrings []string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	put := func(name, body string) {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	const ns = `xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"`
	var ct, wb, rels strings.Builder
	ct.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>`)
	wb.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook ` + ns + `><sheets>`)
	rels.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`)
	for i, s := range sheets {
		n := i + 1
		fmt.Fprintf(&ct, `<Override PartName="/xl/worksheets/sheet%d.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>`, n)
		fmt.Fprintf(&wb, `<sheet name="%s" sheetId="%d" r:id="rId%d"/>`, s.name, n, n)
		fmt.Fprintf(&rels, `<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet%d.xml"/>`, n, n)
		body := s.data
		if !s.raw {
			body = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet ` + ns + `><sheetData>` + s.data + `</sheetData></worksheet>`
		}
		put(fmt.Sprintf("xl/worksheets/sheet%d.xml", n), body)
	}
	if sharedStrings != nil {
		ct.WriteString(`<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>`)
		fmt.Fprintf(&rels, `<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>`, len(sheets)+1)
		var ss strings.Builder
		fmt.Fprintf(&ss, `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="%d" uniqueCount="%d">`, len(sharedStrings), len(sharedStrings))
		for _, s := range sharedStrings {
			fmt.Fprintf(&ss, `<si><t xml:space="preserve">%s</t></si>`, s)
		}
		ss.WriteString(`</sst>`)
		put("xl/sharedStrings.xml", ss.String())
	}
	ct.WriteString(`</Types>`)
	wb.WriteString(`</sheets></workbook>`)
	rels.WriteString(`</Relationships>`)
	put("[Content_Types].xml", ct.String())
	put("_rels/.rels", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`)
	put("xl/workbook.xml", wb.String())
	put("xl/_rels/workbook.xml.rels", rels.String())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func is(v string) string { return `<is><t xml:space="preserve">` + v + `</t></is>` }

// headerRow is row 1 with inline-string cells A1, B1, ….
func headerRow(names ...string) string {
	var b strings.Builder
	b.WriteString(`<row r="1">`)
	for i, n := range names {
		fmt.Fprintf(&b, `<c r="%c1" t="inlineStr">%s</c>`, 'A'+i, is(n))
	}
	b.WriteString(`</row>`)
	return b.String()
}

type gotRow struct {
	line  int
	cells []string
}

func readXLSXRows(t *testing.T, p string, site *schemas.Site) ([]string, []gotRow, error) {
	t.Helper()
	r, _, err := OpenExport(p, site, nil, ReadLimits{})
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var rows []gotRow
	for {
		cells, line, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return r.Header(), rows, nil
			}
			return r.Header(), rows, err
		}
		rows = append(rows, gotRow{line, slices.Clone(cells)})
	}
}

func TestXLSXRawValues(t *testing.T) {
	p := filepath.Join(t.TempDir(), "raw.xlsx")
	data := headerRow("\ufeff Participant ", "Interview date", "score", "ok", "note") +
		// A date cell (style aside, its value is the serial), a number, a
		// boolean, a shared string.
		`<row r="2"><c r="A2" t="s"><v>0</v></c><c r="B2"><v>43173</v></c><c r="C2"><v>3</v></c><c r="D2" t="b"><v>1</v></c><c r="E2" t="s"><v>1</v></c></row>` +
		// Formulas: the cached values, never evaluated; one has none cached.
		`<row r="3"><c r="A3" t="str"><f>"P"&amp;"002"</f><v>P002</v></c><c r="B3"><f>DATE(2018,3,14)</f><v>43173</v></c><c r="C3"><f>1+1</f><v>7</v></c><c r="D3"><f>2+2</f></c></row>` +
		// A short row (trailing cells absent) and, after two empty rows, a
		// longer one with a gap inside.
		`<row r="4"><c r="A4" t="inlineStr">` + is("P003") + `</c></row>` +
		`<row r="5"></row>` +
		`<row r="7"><c r="A7" t="inlineStr">` + is("P004") + `</c><c r="C7"><v>2</v></c><c r="G7" t="inlineStr">` + is("extra") + `</c></row>`
	writeRawXLSX(t, p, []xlsxSheet{{name: "Export", data: data}}, []string{"P001", "café – ok"})
	header, rows, err := readXLSXRows(t, p, xlsxSite(""))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Participant", "Interview date", "score", "ok", "note"}; !slices.Equal(header, want) {
		t.Errorf("header %q; want %q", header, want)
	}
	want := []gotRow{
		{2, []string{"P001", "43173", "3", "1", "café – ok"}},
		{3, []string{"P002", "43173", "7", "", ""}},
		{4, []string{"P003", "", "", "", ""}},
		{7, []string{"P004", "", "2", "", "", "", "extra"}},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %v; want %v", rows, want)
	}
	for i := range want {
		if rows[i].line != want[i].line || !slices.Equal(rows[i].cells, want[i].cells) {
			t.Errorf("row %d: line %d %q; want line %d %q", i, rows[i].line, rows[i].cells, want[i].line, want[i].cells)
		}
	}
}

func TestXLSXSheetChoice(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sheets.xlsx")
	writeRawXLSX(t, p, []xlsxSheet{
		{name: "Notes", data: headerRow("about") + `<row r="2"><c r="A2" t="inlineStr">` + is("read me") + `</c></row>`},
		{name: "Data", data: headerRow("participant_id") + `<row r="2"><c r="A2" t="inlineStr">` + is("P001") + `</c></row>`},
	}, nil)
	// Two sheets of data and none named: which is the export is not
	// guessed.
	_, _, err := readXLSXRows(t, p, xlsxSite(""))
	wantFileError(t, err, CodeXLSXExtraSheets, 0, 0)
	h, _, err := readXLSXRows(t, p, xlsxSite("data"))
	if err != nil || !slices.Equal(h, []string{"participant_id"}) {
		t.Errorf("sheet data: header %q, %v; want Data's", h, err)
	}
	_, _, err = readXLSXRows(t, p, xlsxSite("Missing"))
	wantFileError(t, err, CodeXLSXNoSheet, 0, 0)
}

func TestXLSXFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name      string
		sheets    []xlsxSheet
		strs      []string
		code      string
		line, col int
	}{
		{"empty sheet", []xlsxSheet{{name: "S", data: ``}}, nil, CodeEmptyFile, 0, 0},
		{"blank row 1", []xlsxSheet{{name: "S", data: `<row r="2"><c r="A2"><v>1</v></c></row>`}}, nil, CodeNoHeader, 1, 0},
		{"duplicate header", []xlsxSheet{{name: "S", data: headerRow("a", "b", " a")}}, nil, CodeDuplicateHeader, 1, 3},
		{"stray BOM", []xlsxSheet{{name: "S", data: headerRow("a") + `<row r="2"><c r="A2" t="inlineStr">` + is("x\ufeffy") + `</c></row>`}}, nil, CodeUndecodable, 2, 1},
		{"broken sheet XML", []xlsxSheet{{name: "S", raw: true, data: `<?xml version="1.0"?><worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c></row><row r="2"><c`}}, nil, CodeXLSXUnreadable, 0, 0},
		{"mismatched tags", []xlsxSheet{{name: "S", raw: true, data: `<?xml version="1.0"?><worksheet><sheetData><row r="1"><c r="A1"><v>1</v></row></c></sheetData></worksheet>`}}, nil, CodeXLSXUnreadable, 0, 0},
		{"row number past Excel's last", []xlsxSheet{{name: "S", data: headerRow("a") + `<row r="2"><c r="A2"><v>1</v></c></row><row r="99999999"><c r="A99999999"><v>1</v></c></row>`}}, nil, CodeXLSXUnreadable, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".xlsx")
			writeRawXLSX(t, p, tc.sheets, tc.strs)
			_, _, err := readXLSXRows(t, p, xlsxSite(""))
			wantFileError(t, err, tc.code, tc.line, tc.col)
		})
	}
}

func TestXLSXDamagedZip(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.xlsx")
	writeContractXLSX(t, good)
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(dir, "trunc.xlsx")
	os.WriteFile(trunc, b[:len(b)/2], 0o644)
	_, _, err = OpenExport(trunc, xlsxSite(""), nil, ReadLimits{})
	wantFileError(t, err, CodeXLSXUnreadable, 0, 0)

	// A flipped byte inside a compressed part: the CRC or the inflater
	// catches it before excelize could stop early without a word.
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var off int64
	for _, e := range zr.File {
		if e.Name == "xl/worksheets/sheet1.xml" {
			off, _ = e.DataOffset()
			off += int64(e.CompressedSize64 / 2)
		}
	}
	bad := slices.Clone(b)
	bad[off] ^= 0xFF
	flipped := filepath.Join(dir, "flipped.xlsx")
	os.WriteFile(flipped, bad, 0o644)
	_, _, err = OpenExport(flipped, xlsxSite(""), nil, ReadLimits{})
	wantFileError(t, err, CodeXLSXUnreadable, 0, 0)
}

func TestXLSXZipBomb(t *testing.T) {
	dir := t.TempDir()
	// 8 MiB of one repeated cell compresses some thousand times.
	var b strings.Builder
	b.WriteString(headerRow("a"))
	for b.Len() < 8<<20 {
		b.WriteString(`<row><c><v>1</v></c></row>`)
	}
	p := filepath.Join(dir, "bomb.xlsx")
	writeRawXLSX(t, p, []xlsxSheet{{name: "S", data: b.String()}}, nil)

	_, _, err := OpenExport(p, xlsxSite(""), nil, ReadLimits{})
	wantFileError(t, err, CodeXLSXTooLarge, 0, 0) // the ratio
	_, _, err = OpenExport(p, xlsxSite(""), nil, ReadLimits{MaxXLSXRatio: 1e6, MaxXLSXUncompressed: 4 << 20})
	wantFileError(t, err, CodeXLSXTooLarge, 0, 0) // the total size
}

// guardBook is a workbook for the privacy sweep: a first sheet "Export"
// with a header and one row, then the sheets extra adds.
func guardBook(t *testing.T, extra func(f *excelize.File)) string {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "Export")
	f.SetSheetRow("Export", "A1", &[]any{"Participant", "Interview date", "score"})
	f.SetSheetRow("Export", "A2", &[]any{"P001", 43173, 3})
	if extra != nil {
		extra(f)
	}
	p := filepath.Join(t.TempDir(), "book.xlsx")
	saveXLSX(t, f, p)
	return p
}

// hiddenSheet adds a hidden sheet of rows.
func hiddenSheet(name string, rows ...[]any) func(*excelize.File) {
	return func(f *excelize.File) {
		f.NewSheet(name)
		for i, r := range rows {
			f.SetSheetRow(name, fmt.Sprintf("A%d", i+1), &r)
		}
		f.SetSheetVisible(name, false)
	}
}

// Issue 12: every sheet of a workbook is guarded, hidden or not, and a
// workbook with several sheets of data is read only from the sheet the site
// mapping names.
func TestXLSXGuardsEverySheet(t *testing.T) {
	site := &schemas.Site{Trust: "T", Format: "xlsx", DateLayout: "02/01/2006",
		Headers: map[string]string{"Participant": "participant_id", "Interview date": "interview_date"}}
	named := *site
	named.Sheet = "Export"
	secrets := []string{"943 476 5919", "9434765919", "Bloggs", "jo.bloggs@example.org", "SW1A 1AA", "14/03/1987"}
	dobStyle := func(f *excelize.File, sheet, cell string) {
		st, _ := f.NewStyle(&excelize.Style{NumFmt: 14})
		f.SetCellStyle(sheet, cell, cell, st)
	}
	for _, tc := range []struct {
		name  string
		site  *schemas.Site
		extra func(*excelize.File)
		code  string
		line  int
		col   int
	}{
		{"hidden sheet with identifiers, sheet named", &named,
			hiddenSheet("Lookup", []any{"ref", "contact", "note"}, []any{"943 476 5919", "Bloggs", "jo.bloggs@example.org"}),
			warehouse.QuarantinePrivacy + string(privacy.RuleNHSNumber), 2, 1},
		{"hidden sheet with identifiers, none named", site,
			hiddenSheet("Lookup", []any{"ref", "contact", "note"}, []any{"x", "Bloggs", "jo.bloggs@example.org"}),
			warehouse.QuarantinePrivacy + string(privacy.RuleEmail), 2, 3},
		{"identifier in another sheet's header", &named,
			hiddenSheet("Lookup", []any{"ref", "SW1A 1AA"}),
			warehouse.QuarantinePrivacy + string(privacy.RulePostcode), 1, 2},
		{"identifying header in another sheet", &named,
			hiddenSheet("Lookup", []any{"ref", "Surname"}, []any{"1", "Bloggs"}),
			warehouse.QuarantinePrivacy + string(privacy.RuleIdentifyingHeader), 1, 2},
		{"a date cell in another sheet", &named, func(f *excelize.File) {
			hiddenSheet("Lookup", []any{"ref", "when"}, []any{"1", 31850})(f)
			dobStyle(f, "Lookup", "B2")
		}, warehouse.QuarantinePrivacy + string(privacy.RuleDateOfBirth), 2, 2},
		{"a no-break space in another sheet", &named,
			hiddenSheet("Lookup", []any{"ref"}, []any{"943\u00a0476\u00a05919"}),
			warehouse.QuarantinePrivacy + string(privacy.RuleNHSNumber), 2, 1},
		{"a comment on the sheet read", &named, func(f *excelize.File) {
			f.AddComment("Export", excelize.Comment{Cell: "C2", Author: "cpi", Text: "call 07700 900123"})
		}, warehouse.QuarantinePrivacy + string(privacy.RulePhone), 2, 3},
		{"a comment on another sheet", &named, func(f *excelize.File) {
			f.NewSheet("Empty")
			f.AddComment("Empty", excelize.Comment{Cell: "B3", Author: "cpi", Text: "NHS 9434765919"})
		}, warehouse.QuarantinePrivacy + string(privacy.RuleNHSNumber), 3, 2},
		{"two sheets of data, none named", site,
			hiddenSheet("Notes", []any{"exported by the research team"}),
			CodeXLSXExtraSheets, 0, 0},
		{"an identifier in the first sheet of two, none named", site, func(f *excelize.File) {
			f.SetCellStr("Export", "D2", "SW1A 1AA")
			hiddenSheet("Notes", []any{"exported by the research team"})(f)
		}, warehouse.QuarantinePrivacy + string(privacy.RulePostcode), 2, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := guardBook(t, tc.extra)
			_, _, err := readXLSXRows(t, p, tc.site)
			wantFileError(t, err, tc.code, tc.line, tc.col)
			for _, s := range secrets {
				if err != nil && strings.Contains(err.Error(), s) {
					t.Errorf("message echoes a value: %v", err)
				}
			}
		})
	}
	// Sheets that pass: a clean other sheet beside the named one, an empty
	// sheet beside the only sheet of data, a declared date column.
	for _, tc := range []struct {
		name  string
		site  *schemas.Site
		extra func(*excelize.File)
	}{
		{"clean hidden sheet, sheet named", &named, hiddenSheet("Lookup", []any{"team", "arm"}, []any{"T-01", "control"})},
		{"empty second sheet, none named", site, func(f *excelize.File) { f.NewSheet("Sheet2") }},
		{"dates in a declared date column of another sheet", &named, func(f *excelize.File) {
			hiddenSheet("Old", []any{"Participant", "Interview date"}, []any{"P000", 43000}, []any{"P001", "14/03/2018"}, []any{"P002", "20180314"})(f)
			dobStyle(f, "Old", "B2")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, rows, err := readXLSXRows(t, guardBook(t, tc.extra), tc.site)
			if err != nil || !slices.Equal(h, []string{"Participant", "Interview date", "score"}) || len(rows) != 1 {
				t.Errorf("header %q rows %v err %v; want the Export sheet read", h, rows, err)
			}
		})
	}
	// With no sheet named, the only sheet of data is read wherever it is.
	f := excelize.NewFile()
	defer f.Close()
	f.NewSheet("Data")
	f.SetSheetRow("Data", "A1", &[]any{"participant_id"})
	f.SetSheetRow("Data", "A2", &[]any{"P001"})
	p := filepath.Join(t.TempDir(), "second.xlsx")
	saveXLSX(t, f, p)
	if h, _, err := readXLSXRows(t, p, site); err != nil || !slices.Equal(h, []string{"participant_id"}) {
		t.Errorf("only sheet of data: header %q, %v", h, err)
	}
}

// addZipParts rewrites the workbook at path with extra parts added.
func addZipParts(t *testing.T, path string, parts map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, e := range zr.File {
		w, _ := zw.Create(e.Name)
		r, _ := e.Open()
		io.Copy(w, r)
		r.Close()
	}
	for name, body := range parts {
		w, _ := zw.Create(name)
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// What a workbook holds outside its cells is guarded too: strings no cell
// uses, page headers and footers, pivot caches (which keep a copy of their
// source after the source sheet is deleted), drawings and charts. An
// identifier there quarantines the file after its rows are read (an
// identifier in a cell is reported first, by its column).
func TestXLSXGuardsPartsOutsideCells(t *testing.T) {
	const ns = `xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"`
	rows := headerRow("participant_id", "note") + `<row r="2"><c r="A2" t="inlineStr">` + is("P001") + `</c><c r="B2" t="s"><v>0</v></c></row>`
	for _, tc := range []struct {
		name   string
		sheet  string
		strs   []string
		parts  map[string]string
		rule   privacy.PrivacyRule
		secret string
	}{
		{"a shared string no cell uses", rows, []string{"fine", "jo.bloggs@example.org"}, nil, privacy.RuleEmail, "jo.bloggs"},
		{"a page header", "", []string{"fine"}, nil, privacy.RulePhone, "07700"},
		{"a pivot cache", rows, []string{"fine"}, map[string]string{
			"xl/pivotCache/pivotCacheRecords1.xml": `<?xml version="1.0"?><pivotCacheRecords ` + ns + ` count="1"><r><s v="943 476 5919"/><n v="3"/></r></pivotCacheRecords>`,
		}, privacy.RuleNHSNumber, "5919"},
		{"a text box", rows, []string{"fine"}, map[string]string{
			"xl/drawings/drawing1.xml": `<?xml version="1.0"?><xdr:wsDr xmlns:xdr="x" xmlns:a="y"><a:t>lives at LS1 4AP</a:t></xdr:wsDr>`,
		}, privacy.RulePostcode, "4AP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "parts.xlsx")
			sheet := xlsxSheet{name: "S", data: rows}
			if tc.sheet == "" {
				sheet = xlsxSheet{name: "S", raw: true, data: `<?xml version="1.0"?><worksheet ` + ns + `><sheetData>` + rows +
					`</sheetData><headerFooter><oddHeader>&amp;CJo Bloggs 07700 900123</oddHeader></headerFooter></worksheet>`}
			}
			writeRawXLSX(t, p, []xlsxSheet{sheet}, tc.strs)
			addZipParts(t, p, tc.parts)
			_, got, err := readXLSXRows(t, p, xlsxSite(""))
			if len(got) != 1 {
				t.Errorf("rows %v: the rows are read before the parts outside cells are reported", got)
			}
			wantFileError(t, err, warehouse.QuarantinePrivacy+string(tc.rule), 0, 0)
			if err != nil && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("message echoes the value: %v", err)
			}
		})
	}
	// A workbook without identifiers outside its cells reads to the end.
	p := filepath.Join(t.TempDir(), "clean.xlsx")
	writeRawXLSX(t, p, []xlsxSheet{{name: "S", data: rows}}, []string{"fine", "14/03/2018"})
	if _, got, err := readXLSXRows(t, p, xlsxSite("")); err != nil || len(got) != 1 {
		t.Errorf("clean workbook: rows %v, %v", got, err)
	}
}
