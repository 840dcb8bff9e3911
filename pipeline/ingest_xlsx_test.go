package pipeline

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
	h, _, err := readXLSXRows(t, p, xlsxSite(""))
	if err != nil || !slices.Equal(h, []string{"about"}) {
		t.Errorf("no sheet configured: header %q, %v; want the first sheet's", h, err)
	}
	h, _, err = readXLSXRows(t, p, xlsxSite("data"))
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
