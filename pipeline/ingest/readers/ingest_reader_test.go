package readers

import (
	"bytes"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/connectingpeople/cpi/schemas"
	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/charmap"
)

var updateIngest = flag.Bool("update-ingest", false, "rewrite testdata/ingest/*/want.txt from the readers' output")

const ingestFixtures = "../../../testdata/ingest"

func testStudy(t testing.TB) *schemas.Study {
	t.Helper()
	s, err := schemas.Default()
	if err != nil {
		t.Fatalf("load default study: %v", err)
	}
	return s
}

// canonicalHeadersOf lists the canonical header of each export kind.
func canonicalHeadersOf(s *schemas.Study) [][]string {
	var out [][]string
	for _, kind := range []string{schemas.KindParticipants, schemas.KindFidelity} {
		var h []string
		for _, f := range s.ExportFields(kind) {
			h = append(h, f.Name)
		}
		out = append(out, h)
	}
	return out
}

// readAll reads an export through OpenExport and describes what came out,
// one line per fact: the golden format of testdata/ingest/*/want.txt.
func readAll(path string, site *schemas.Site, canon [][]string, limits ReadLimits) (string, error) {
	var b strings.Builder
	r, isCanon, err := OpenExport(path, site, canon, limits)
	if err != nil {
		var fe *FileError
		if !errors.As(err, &fe) {
			return "", err
		}
		fmt.Fprintf(&b, "open error %s line %d column %d\n", fe.Code, fe.Line, fe.Column)
		return b.String(), nil
	}
	defer r.Close()
	fmt.Fprintf(&b, "canonical %v\nheader %q\n", isCanon, r.Header())
	for {
		cells, line, err := r.Next()
		if err == io.EOF {
			b.WriteString("eof\n")
			break
		}
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				return "", err
			}
			fmt.Fprintf(&b, "error %s line %d column %d\n", fe.Code, fe.Line, fe.Column)
			break
		}
		fmt.Fprintf(&b, "%d %q\n", line, cells)
	}
	return b.String(), nil
}

// TestReadFixtures reads every testdata/ingest/<case>/input.* with the
// site named in site.txt (TEWV when absent) and compares with want.txt.
func TestReadFixtures(t *testing.T) {
	study := testStudy(t)
	canon := canonicalHeadersOf(study)
	dirs, err := os.ReadDir(ingestFixtures)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		t.Run(d.Name(), func(t *testing.T) {
			dir := filepath.Join(ingestFixtures, d.Name())
			inputs, _ := filepath.Glob(filepath.Join(dir, "input.*"))
			if len(inputs) != 1 {
				t.Fatalf("want one input.* in %s, have %d", dir, len(inputs))
			}
			trust := "TEWV"
			if b, err := os.ReadFile(filepath.Join(dir, "site.txt")); err == nil {
				trust = strings.TrimSpace(string(b))
			}
			site := study.Sites[trust]
			if site == nil {
				t.Fatalf("no site %s", trust)
			}
			got, err := readAll(inputs[0], site, canon, ReadLimits{})
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			wantFile := filepath.Join(dir, "want.txt")
			if *updateIngest {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("%v (run with -update-ingest to create it)", err)
			}
			if got != string(want) {
				t.Errorf("read %s:\ngot:\n%s\nwant:\n%s", inputs[0], got, want)
			}
		})
	}
}

// contractRow is a row of the contract table: its line and cells.
type contractRow struct {
	line  int
	cells []string
}

var contractHeader = []string{"\ufeff participant_id ", "team_code", "score", "note"}

var contractRows = []contractRow{
	{2, []string{"P001", "TEWV-01", "3", "café – ok"}},
	{3, []string{"P002", "", "4", "x"}},             // a blank cell
	{4, []string{"P003", "TEWV-02", "5", "y", "z"}}, // longer than the header
	{5, []string{"P004", "TEWV-01", "1", `a, "quoted"; semi`}},
	{6, []string{"P005", "TEWV-01", "2"}}, // shorter than the header
	{9, []string{"P006", "TEWV-02", "0", "after a gap"}},
	{10, []string{"P007", "BDCT-01", "  padded  ", "multi\nline"}},
	{12, []string{"P008", "AWP-01", "4", "last"}},
}

// writeContractCSV writes the contract table as CSV: lines that no row has
// are empty lines (encoding/csv skips them), a row's embedded newline
// moves the next row down, so lines are chosen to allow for it.
func writeContractCSV(t *testing.T, path string, comma rune, crlf, bom, cp1252 bool) {
	t.Helper()
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Comma = comma
	w.UseCRLF = crlf
	nl := "\n"
	if crlf {
		nl = "\r\n"
	}
	if err := w.Write(contractHeader); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	line := 2
	for _, r := range contractRows {
		for ; line < r.line; line++ {
			buf.WriteString(nl)
		}
		if err := w.Write(r.cells); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		for _, c := range r.cells {
			line += strings.Count(c, "\n")
		}
		line++
	}
	data := buf.Bytes()
	if cp1252 {
		s, err := charmap.Windows1252.NewEncoder().String(strings.TrimPrefix(string(data), "\ufeff"))
		if err != nil {
			t.Fatal(err)
		}
		data = []byte(s)
	} else {
		data = bytes.Replace(data, []byte("\ufeff"), nil, 1)
	}
	if bom {
		data = append([]byte{0xEF, 0xBB, 0xBF}, data...)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeContractXLSX(t *testing.T, path string) {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	put := func(line int, cells []string) {
		row := make([]any, len(cells))
		for i, c := range cells {
			row[i] = c
		}
		if err := f.SetSheetRow("Sheet1", fmt.Sprintf("A%d", line), &row); err != nil {
			t.Fatal(err)
		}
	}
	put(1, contractHeader)
	for _, r := range contractRows {
		put(r.line, r.cells)
	}
	saveXLSX(t, f, path)
}

// saveXLSX writes a workbook to path whatever its extension.
func saveXLSX(t *testing.T, f *excelize.File, path string) {
	t.Helper()
	buf, err := f.WriteToBuffer()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRowReaderContract runs the RowReader contract over every reader and
// dialect: the same table written each way reads back the same.
func TestRowReaderContract(t *testing.T) {
	site := func(format, enc, delim string) *schemas.Site {
		return &schemas.Site{Trust: "T", Format: format, Encoding: enc, Delimiter: delim, DateLayout: "2006-01-02"}
	}
	for _, tc := range []struct {
		name  string
		site  *schemas.Site
		write func(t *testing.T, path string)
	}{
		{"csv utf-8", site("csv", "utf-8", ","), func(t *testing.T, p string) { writeContractCSV(t, p, ',', false, false, false) }},
		{"csv utf-8-bom crlf", site("csv", "utf-8-bom", ","), func(t *testing.T, p string) { writeContractCSV(t, p, ',', true, true, false) }},
		{"csv windows-1252 semicolon", site("csv", "windows-1252", ";"), func(t *testing.T, p string) { writeContractCSV(t, p, ';', true, false, true) }},
		{"csv tab", site("csv", "utf-8", "\t"), func(t *testing.T, p string) { writeContractCSV(t, p, '\t', false, false, false) }},
		{"xlsx", site("xlsx", "", ""), writeContractXLSX},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "export")
			tc.write(t, path)
			r, canon, err := OpenExport(path, tc.site, [][]string{{"x"}}, ReadLimits{})
			if err != nil {
				t.Fatalf("OpenExport: %v", err)
			}
			defer r.Close()
			if canon {
				t.Error("canonical = true; want false")
			}
			if want := []string{"participant_id", "team_code", "score", "note"}; !slices.Equal(r.Header(), want) {
				t.Errorf("Header() = %q; want %q", r.Header(), want)
			}
			_, xlsx := r.(*xlsxReader)
			prev := 1
			for i := 0; ; i++ {
				cells, line, err := r.Next()
				if err == io.EOF {
					if i != len(contractRows) {
						t.Errorf("EOF after %d rows; want %d", i, len(contractRows))
					}
					break
				}
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				if i >= len(contractRows) {
					t.Fatalf("row %d beyond the table: line %d %q", i, line, cells)
				}
				want := contractRows[i]
				if line != want.line || line <= prev {
					t.Errorf("row %d: line %d; want %d (after %d)", i, line, want.line, prev)
				}
				prev = line
				got := slices.Clone(cells)
				if xlsx && len(want.cells) < len(contractHeader) {
					// Only the XLSX reader pads a short row, to the header width.
					for len(want.cells) < len(contractHeader) {
						want.cells = append(slices.Clone(want.cells), "")
					}
				}
				if !slices.Equal(got, want.cells) {
					t.Errorf("row %d: cells %q; want %q", i, got, want.cells)
				}
			}
			if _, _, err := r.Next(); err != io.EOF {
				t.Errorf("Next after EOF: %v; want io.EOF", err)
			}
			if err := r.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

func TestOpenExportDispatch(t *testing.T) {
	study := testStudy(t)
	canon := canonicalHeadersOf(study)
	dir := t.TempDir()

	t.Run("canonical header beats the site dialect", func(t *testing.T) {
		p := filepath.Join(dir, "canon.csv")
		body := strings.Join(canon[1], ",") + "\nBDCT-01,month3,R01,researcher,2018-06-01,1,2,3,4,0,1,2,3,4,0,1,2\n"
		os.WriteFile(p, []byte(body), 0o644)
		r, isCanon, err := OpenExport(p, study.Sites["BDCT"], canon, ReadLimits{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		cells, _, err := r.Next()
		if !isCanon || err != nil || len(cells) != len(canon[1]) {
			t.Errorf("canonical %v, %d cells, err %v; want true, %d cells", isCanon, len(cells), err, len(canon[1]))
		}
	})
	t.Run("a header that is not exactly canonical", func(t *testing.T) {
		p := filepath.Join(dir, "almost.csv")
		h := slices.Clone(canon[1])
		h = h[:len(h)-1]
		os.WriteFile(p, []byte(strings.Join(h, ";")+"\n"), 0o644)
		r, isCanon, err := OpenExport(p, study.Sites["BDCT"], canon, ReadLimits{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if isCanon || len(r.Header()) != len(h) {
			t.Errorf("canonical %v, header of %d; want false, %d (semicolons)", isCanon, len(r.Header()), len(h))
		}
	})
	t.Run("zip magic is XLSX whatever the site", func(t *testing.T) {
		p := filepath.Join(dir, "book.csv")
		writeContractXLSX(t, p)
		r, _, err := OpenExport(p, study.Sites["TEWV"], canon, ReadLimits{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, ok := r.(*xlsxReader); !ok {
			t.Errorf("reader %T; want *xlsxReader", r)
		}
	})
	t.Run("an xlsx site sending CSV", func(t *testing.T) {
		p := filepath.Join(dir, "hpft.csv")
		os.WriteFile(p, []byte("Participant,Wave\nP1,BL\n"), 0o644)
		r, _, err := OpenExport(p, study.Sites["HPFT"], canon, ReadLimits{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if !slices.Equal(r.Header(), []string{"Participant", "Wave"}) {
			t.Errorf("header %q", r.Header())
		}
	})
	t.Run("legacy xls", func(t *testing.T) {
		p := filepath.Join(dir, "old.xls")
		os.WriteFile(p, append(slices.Clone(oleMagic), make([]byte, 512)...), 0o644)
		_, _, err := OpenExport(p, study.Sites["HPFT"], canon, ReadLimits{})
		wantFileError(t, err, CodeXLSXUnreadable, 0, 0)
	})
	t.Run("missing file is not a FileError", func(t *testing.T) {
		_, _, err := OpenExport(filepath.Join(dir, "nope.csv"), study.Sites["TEWV"], canon, ReadLimits{})
		var fe *FileError
		if err == nil || errors.As(err, &fe) || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v; want a wrapped os.ErrNotExist", err)
		}
	})
}

// wantFileError checks err is a *FileError with code, line and column.
func wantFileError(t *testing.T, err error, code string, line, col int) {
	t.Helper()
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v; want a *FileError %s", err, code)
	}
	if fe.Code != code || fe.Line != line || fe.Column != col {
		t.Errorf("FileError %s line %d column %d; want %s line %d column %d", fe.Code, fe.Line, fe.Column, code, line, col)
	}
}

func TestFileErrorMessage(t *testing.T) {
	e := &FileError{File: "x.csv", Code: CodeMalformedCSV, Line: 3, Column: 7, Msg: "bare quote"}
	if got, want := e.Error(), "x.csv: line 3, column 7: malformed_csv: bare quote"; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	e = &FileError{Code: CodeEmptyFile}
	if got := e.Error(); got != "empty_file" {
		t.Errorf("Error() = %q", got)
	}
}

// FuzzOpenExport feeds bytes through OpenExport as a CSV file in three
// dialects (and as XLSX when they start with the zip magic). It asserts no
// panic, that every error is a *FileError, that lines increase, cells are
// valid UTF-8 and within the field limit, and that an error is final.
func FuzzOpenExport(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(ingestFixtures, "*", "input.*"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, uint8(0))
			f.Add(b, uint8(1))
		}
	}
	f.Add([]byte("a,b\n1,2\n"), uint8(2))
	book := excelize.NewFile()
	book.SetSheetRow("Sheet1", "A1", &[]any{"a", "b"})
	book.SetSheetRow("Sheet1", "A2", &[]any{1, "x"})
	book.SetSheetRow("Sheet1", "A4", &[]any{"y"})
	if buf, err := book.WriteToBuffer(); err == nil {
		f.Add(buf.Bytes(), uint8(2))
	}
	book.Close()
	f.Add([]byte("a;b\r\n\"x\"\"y\";2\r\n"), uint8(1))
	sites := []*schemas.Site{
		{Trust: "A", Format: "csv", Encoding: "utf-8", Delimiter: ",", DateLayout: "2006-01-02"},
		{Trust: "B", Format: "csv", Encoding: "windows-1252", Delimiter: ";", DateLayout: "2006-01-02"},
		{Trust: "C", Format: "xlsx", DateLayout: "2006-01-02"},
	}
	canon := [][]string{{"a", "b"}, {"team_code", "period"}}
	limits := ReadLimits{MaxFieldBytes: 256, MaxRowBytes: 1024}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		path := filepath.Join(t.TempDir(), "export")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r, _, err := OpenExport(path, sites[int(which)%len(sites)], canon, limits)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("OpenExport: %v is no *FileError", err)
			}
			return
		}
		defer r.Close()
		for _, h := range r.Header() {
			if !utf8.ValidString(h) || strings.ContainsRune(h, '\uFEFF') {
				t.Fatalf("header cell not clean UTF-8")
			}
		}
		prev := 1
		for n := 0; ; n++ {
			if n > len(data)+1 {
				t.Fatalf("more rows than bytes")
			}
			cells, line, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var fe *FileError
				if !errors.As(err, &fe) {
					t.Fatalf("Next: %v is no *FileError", err)
				}
				if _, _, again := r.Next(); again != err {
					t.Fatalf("Next after %v: %v; want the same error", err, again)
				}
				break
			}
			if line <= prev {
				t.Fatalf("line %d after line %d", line, prev)
			}
			prev = line
			for _, c := range cells {
				if !utf8.ValidString(c) || len(c) > limits.MaxFieldBytes {
					t.Fatalf("line %d: a cell invalid UTF-8 or over the field limit", line)
				}
			}
		}
	})
}

// A canonical export is recognised by its column names (DESIGN §5, §13):
// last year's participants export without the service-use columns, and
// this year's with them, are both canonical from a trust whose own
// dialect is semicolons in Windows-1252 (read in the dialect, either would
// be one column and quarantined).
func TestOpenExportCanonicalByColumnNames(t *testing.T) {
	study := testStudy(t)
	canon := canonicalHeadersOf(study)
	if !slices.Contains(canon[0], "su_gp") {
		t.Fatal("the default study has no service-use columns")
	}
	var without []string
	for _, c := range canon[0] {
		if !strings.HasPrefix(c, "su_") {
			without = append(without, c)
		}
	}
	if len(canon[0])-len(without) != 9 {
		t.Fatalf("%d service-use columns, want 9", len(canon[0])-len(without))
	}
	reordered := slices.Clone(canon[0])
	reordered[0], reordered[len(reordered)-1] = reordered[len(reordered)-1], reordered[0]
	for _, tc := range []struct {
		name   string
		header []string
		want   bool
	}{
		{"without service use", without, true},
		{"with service use", canon[0], true},
		{"columns in another order", reordered, true},
		{"a column twice", append(slices.Clone(without), "su_gp", "su_gp"), false},
		{"a column the study does not have", append(slices.Clone(without), "su_dentist"), false},
		{"no participant_id", without[1:], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "BDCT_participants_20190329.csv")
			if err := os.WriteFile(p, []byte(strings.Join(tc.header, ",")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			r, isCanon, err := OpenExport(p, study.Sites["BDCT"], canon, ReadLimits{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			wantCols := len(tc.header)
			if !tc.want {
				wantCols = 1 // read with semicolons: one column
			}
			if isCanon != tc.want || len(r.Header()) != wantCols {
				t.Errorf("canonical %v with %d columns; want %v with %d", isCanon, len(r.Header()), tc.want, wantCols)
			}
		})
	}
}
