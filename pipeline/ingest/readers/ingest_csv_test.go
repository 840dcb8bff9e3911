package readers

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/schemas"
)

func csvSite(enc, delim string) *schemas.Site {
	return &schemas.Site{Trust: "T", Format: "csv", Encoding: enc, Delimiter: delim, DateLayout: "2006-01-02"}
}

func writeTemp(t testing.TB, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// drain reads a reader to its end and returns the error that ended it
// (nil at io.EOF) and the rows read.
func drain(r RowReader) (int, error) {
	n := 0
	for {
		_, _, err := r.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

func TestCSVFieldTooLarge(t *testing.T) {
	limits := ReadLimits{MaxFieldBytes: 8}
	p := writeTemp(t, "x.csv", "a,b\n1,12345678\n2,123456789\n")
	r, _, err := OpenExport(p, csvSite("utf-8", ","), nil, limits)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n, err := drain(r)
	if n != 1 {
		t.Errorf("%d rows before the error; want 1", n)
	}
	wantFileError(t, err, CodeFieldTooLarge, 3, 2)

	p = writeTemp(t, "h.csv", "a,bbbbbbbbb\n")
	_, _, err = OpenExport(p, csvSite("utf-8", ","), nil, limits)
	wantFileError(t, err, CodeFieldTooLarge, 1, 2)
}

// An unclosed quote must not read the rest of a large file into memory: it
// runs into MaxRowBytes.
func TestCSVUnclosedQuoteIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("a,b\n1,2\n3,\"never closed\n")
	for b.Len() < 4<<20 {
		b.WriteString("5,6 some more text of a line that goes on\n")
	}
	p := writeTemp(t, "q.csv", b.String())
	r, _, err := OpenExport(p, csvSite("utf-8", ","), nil, ReadLimits{MaxRowBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n, err := drain(r)
	if n != 1 {
		t.Errorf("%d rows before the error; want 1", n)
	}
	wantFileError(t, err, CodeRowTooLarge, 3, 0)

	// The same through the windows-1252 decoder.
	r, _, err = OpenExport(p, csvSite("windows-1252", ","), nil, ReadLimits{MaxRowBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = drain(r)
	wantFileError(t, err, CodeRowTooLarge, 3, 0)
}

func TestCSVLongRowsWithinLimit(t *testing.T) {
	// Many records together far exceed MaxRowBytes; none alone does.
	var b strings.Builder
	b.WriteString("a,b\n")
	for i := 0; i < 20000; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteString(",\"x\ny\"\n")
	}
	p := writeTemp(t, "ok.csv", b.String())
	r, _, err := OpenExport(p, csvSite("utf-8", ","), nil, ReadLimits{MaxRowBytes: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n, err := drain(r); err != nil || n != 20000 {
		t.Errorf("read %d rows, err %v; want 20000, nil", n, err)
	}
}

func TestCSVBOMOverridesWindows1252(t *testing.T) {
	p := writeTemp(t, "b.csv", "\ufeffGender;Note\r\nNot stated – declined;café\r\n")
	r, _, err := OpenExport(p, csvSite("windows-1252", ";"), nil, ReadLimits{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cells, line, err := r.Next()
	if err != nil || line != 2 || !slices.Equal(cells, []string{"Not stated – declined", "café"}) {
		t.Errorf("Next() = %q, %d, %v", cells, line, err)
	}
}

func TestCSVBadDelimiter(t *testing.T) {
	p := writeTemp(t, "d.csv", "a\"b\n")
	_, _, err := OpenExport(p, csvSite("utf-8", `"`), nil, ReadLimits{})
	if _, ok := err.(*FileError); err == nil || ok {
		t.Errorf("err = %v; want a configuration error, not a FileError", err)
	}
}

// genCanonicalCSV writes a canonical-like participants export of at least
// size bytes and returns its path and row count.
func genCanonicalCSV(tb testing.TB, dir string, size int64, comma byte) (string, int) {
	tb.Helper()
	study := testStudy(tb)
	fields := study.ExportFields(schemas.KindParticipants)
	p := filepath.Join(dir, "TEWV_participants_20180601.csv")
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i, fl := range fields {
		if i > 0 {
			w.WriteByte(comma)
		}
		w.WriteString(fl.Name)
	}
	w.WriteString("\r\n")
	var written int64
	rows := 0
	var line []byte
	for written < size {
		line = line[:0]
		for i, fl := range fields {
			if i > 0 {
				line = append(line, comma)
			}
			switch fl.Type {
			case schemas.FieldID:
				line = append(line, 'P')
				line = strconv.AppendInt(line, int64(100000+rows), 10)
			case schemas.FieldCode:
				if len(fl.Codes) > 0 {
					line = append(line, fl.Codes[rows%len(fl.Codes)]...)
				}
			case schemas.FieldDate:
				line = append(line, "2018-03-14"...)
			default:
				if (rows+i)%17 != 0 { // some blanks
					line = strconv.AppendInt(line, int64(fl.Min+(rows+i)%(fl.Max-fl.Min+1)), 10)
				}
			}
		}
		line = append(line, '\r', '\n')
		n, _ := w.Write(line)
		written += int64(n)
		rows++
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return p, rows
}

// TestCSVStreamingMemory reads a 40 MB export and checks the heap stays
// small: memory must not grow with the file.
func TestCSVStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 40 MB file")
	}
	p, rows := genCanonicalCSV(t, t.TempDir(), 40<<20, ',')
	r, _, err := OpenExport(p, csvSite("utf-8", ","), canonicalHeadersOf(testStudy(t)), ReadLimits{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	runtime.GC()
	var ms runtime.MemStats
	var peak uint64
	n := 0
	for {
		_, _, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n++; n%5000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	if n != rows {
		t.Errorf("read %d rows; wrote %d", n, rows)
	}
	if peak > 32<<20 {
		t.Errorf("heap in use reached %d MiB reading a 40 MB file; want it bounded", peak>>20)
	}
}

func benchmarkCSVDecode(b *testing.B, site *schemas.Site, comma byte) {
	p, rows := genCanonicalCSV(b, b.TempDir(), 50<<20, comma)
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	canon := canonicalHeadersOf(testStudy(b))
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		r, _, err := OpenExport(p, site, canon, ReadLimits{})
		if err != nil {
			b.Fatal(err)
		}
		n, err := drain(r)
		if err != nil || n != rows {
			b.Fatalf("read %d rows, err %v; want %d", n, err, rows)
		}
		r.Close()
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkCSVDecode reads a ~50 MB canonical participants export (85
// columns, UTF-8, CRLF).
func BenchmarkCSVDecode(b *testing.B) {
	benchmarkCSVDecode(b, csvSite("utf-8", ","), ',')
}

// BenchmarkCSVDecodeWindows1252 reads the same through the windows-1252
// decoder, with semicolons (not canonical: the site's dialect).
func BenchmarkCSVDecodeWindows1252(b *testing.B) {
	benchmarkCSVDecode(b, csvSite("windows-1252", ";"), ';')
}
