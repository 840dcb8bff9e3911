package readers

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// csvTrace reads the CSV file at path in dialect d to its end and
// describes what the reader gave: the header or the error opening it,
// then every record with its line, and the error that ended the file.
func csvTrace(t testing.TB, path string, d dialect, limits ReadLimits, general bool) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newCSVReader(path, f, d, limits.withDefaults(), general)
	if err != nil {
		f.Close()
		return []string{"open: " + describeErr(err)}
	}
	defer r.Close()
	out := []string{fmt.Sprintf("header %q", r.Header())}
	for n := 0; n < 1<<20; n++ {
		cells, line, err := r.Next()
		if err == io.EOF {
			return append(out, "EOF")
		}
		if err != nil {
			out = append(out, describeErr(err))
			if _, _, again := r.Next(); again != err {
				out = append(out, "a second error: "+describeErr(again))
			}
			return out
		}
		out = append(out, fmt.Sprintf("line %d %q", line, cells))
	}
	t.Fatal("no end")
	return nil
}

func describeErr(err error) string {
	var fe *FileError
	if errors.As(err, &fe) {
		return fmt.Sprintf("FileError %s line %d column %d: %s", fe.Code, fe.Line, fe.Column, fe.Msg)
	}
	return "error: " + err.Error()
}

// fastPathDialects are the dialects the fast path is compared in: commas,
// semicolons in windows-1252, tabs, and a delimiter of two UTF-8 bytes.
var fastPathDialects = []dialect{
	{encoding: "utf-8", delimiter: ','},
	{encoding: "windows-1252", delimiter: ';'},
	{encoding: "utf-8", delimiter: '\t'},
	{encoding: "utf-8", delimiter: '¦'},
}

// compareFastPath checks that the fast path gives what encoding/csv alone
// gives for body, in every dialect, and returns the fast path's trace in
// the first dialect.
func compareFastPath(t *testing.T, body []byte, limits ReadLimits) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.csv")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	var first []string
	for i, d := range fastPathDialects {
		fast := csvTrace(t, path, d, limits, false)
		general := csvTrace(t, path, d, limits, true)
		if strings.Join(fast, "\n") != strings.Join(general, "\n") {
			t.Fatalf("dialect %s %q, input %q:\nfast path:\n  %s\nencoding/csv:\n  %s", d.encoding, d.delimiter, body,
				strings.Join(fast, "\n  "), strings.Join(general, "\n  "))
		}
		if i == 0 {
			first = fast
		}
	}
	return first
}

// The fast path splits lines without quotes itself and hands the rest to
// encoding/csv: records, lines and errors (code, line, column) must be
// the same as encoding/csv's alone, line by line, for tricky input.
func TestCSVFastPathSameAsGeneral(t *testing.T) {
	long := strings.Repeat("x", 70<<10) // longer than the read buffer
	cases := []struct {
		name, body string
		want       []string // the trace in the first dialect (commas, UTF-8)
	}{
		{"plain", "a,b\n1,2\n3,4\n", []string{`header ["a" "b"]`, `line 2 ["1" "2"]`, `line 3 ["3" "4"]`, "EOF"}},
		{"crlf", "a,b\r\n1,2\r\n3,4\r\n", []string{`header ["a" "b"]`, `line 2 ["1" "2"]`, `line 3 ["3" "4"]`, "EOF"}},
		{"no final newline", "a,b\n1,2", []string{`header ["a" "b"]`, `line 2 ["1" "2"]`, "EOF"}},
		{"CR at the end of the file", "a,b\n1,2\r", []string{`header ["a" "b"]`, `line 2 ["1" "2"]`, "EOF"}},
		{"CR CR LF", "a,b\n1,2\r\r\n", []string{`header ["a" "b"]`, "line 2 [\"1\" \"2\\r\"]", "EOF"}},
		{"bare CR inside", "a,b\n1\r2,3\n", []string{`header ["a" "b"]`, "line 2 [\"1\\r2\" \"3\"]", "EOF"}},
		{"empty lines", "a,b\n\n1,2\r\n\r\n\n3,4\n\n", []string{`header ["a" "b"]`, `line 3 ["1" "2"]`, `line 6 ["3" "4"]`, "EOF"}},
		{"empty fields", "a,b,c\n,,\n1,,\n,,3\n", []string{`header ["a" "b" "c"]`, `line 2 ["" "" ""]`, `line 3 ["1" "" ""]`, `line 4 ["" "" "3"]`, "EOF"}},
		{"ragged", "a,b\n1\n1,2,3\n", []string{`header ["a" "b"]`, `line 2 ["1"]`, `line 3 ["1" "2" "3"]`, "EOF"}},
		{"quoted", "a,b\n\"1\",\"x,y\"\n3,4\n", []string{`header ["a" "b"]`, `line 2 ["1" "x,y"]`, `line 3 ["3" "4"]`, "EOF"}},
		{"doubled quote", "a,b\n1,\"say \"\"hi\"\"\"\n3,4\n", []string{`header ["a" "b"]`, `line 2 ["1" "say \"hi\""]`, `line 3 ["3" "4"]`, "EOF"}},
		{"embedded newline", "a,b\n1,\"x\ny\"\n3,4\n5,\"p\r\nq\"\r\n6,7\n", []string{`header ["a" "b"]`, "line 2 [\"1\" \"x\\ny\"]", `line 4 ["3" "4"]`, "line 5 [\"5\" \"p\\nq\"]", `line 7 ["6" "7"]`, "EOF"}},
		{"quote spans an empty line", "a,b\n1,\"x\n\ny\"\n3,4\n", []string{`header ["a" "b"]`, "line 2 [\"1\" \"x\\n\\ny\"]", `line 5 ["3" "4"]`, "EOF"}},
		{"quoted header", "\"a\",b\n1,2\n", []string{`header ["a" "b"]`, `line 2 ["1" "2"]`, "EOF"}},
		{"bare quote", "a,b\n1,2\n3,x\"y\n5,6\n", []string{`header ["a" "b"]`, `line 2 ["1" "2"]`, `FileError malformed_csv line 3 column 4: bare " in non-quoted-field`}},
		{"text after a closing quote", "a,b\n1,\"x\"y\n", []string{`header ["a" "b"]`, `FileError malformed_csv line 2 column 5: extraneous or missing " in quoted-field`}},
		{"quote never closed", "a,b\n1,2\n3,\"x\n5,6\n", []string{`header ["a" "b"]`, `line 2 ["1" "2"]`, `FileError malformed_csv line 3 column 0: extraneous or missing " in quoted-field, found on line 4 (a quote never closed?)`}},
		{"quote at the end of the file", "a,b\n1,\"x\"", []string{`header ["a" "b"]`, `line 2 ["1" "x"]`, "EOF"}},
		{"error after quoted lines", "a,b\n1,\"x\ny\"\n2,3\n4,\"z\"w\n", []string{`header ["a" "b"]`, "line 2 [\"1\" \"x\\ny\"]", `line 4 ["2" "3"]`, `FileError malformed_csv line 5 column 5: extraneous or missing " in quoted-field`}},
		{"BOM", "\ufeffa,b\n1,2\n", []string{`header ["a" "b"]`, `line 2 ["1" "2"]`, "EOF"}},
		{"windows-1252 bytes", "a,b\n1,caf\xe9 \x96 \x80\n", []string{`header ["a" "b"]`, "FileError undecodable line 2 column 2: invalid UTF-8, a NUL byte or a stray byte order mark"}},
		{"empty first line", "\na,b\n1,2\n", []string{"open: FileError no_header line 1 column 0: line 1 is empty"}},
		{"header only", "a,b\n", []string{`header ["a" "b"]`, "EOF"}},
		{"long line", "a,b\n1," + long + "\n2,3\n", []string{`header ["a" "b"]`, fmt.Sprintf("line 2 [\"1\" %q]", long), `line 3 ["2" "3"]`, "EOF"}},
		{"long quoted line", "a,b\n1,\"" + long + "\"\n2,3\n", []string{`header ["a" "b"]`, fmt.Sprintf("line 2 [\"1\" %q]", long), `line 3 ["2" "3"]`, "EOF"}},
		{"too large", "a,b\n1,2\n3," + strings.Repeat("y", 300<<10) + "\n5,6\n", []string{`header ["a" "b"]`, `line 2 ["1" "2"]`, "FileError row_too_large line 3 column 0: a record over 65536 bytes (a quote never closed?)"}},
		{"too large, quoted", "a,b\n1,2\n3,\"" + strings.Repeat("y\n", 150<<10) + "\n5,6\n", []string{`header ["a" "b"]`, `line 2 ["1" "2"]`, "FileError row_too_large line 3 column 0: a record over 65536 bytes (a quote never closed?)"}},
	}
	limits := ReadLimits{MaxRowBytes: 64 << 10, MaxFieldBytes: 128 << 10}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := compareFastPath(t, []byte(c.body), limits)
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
		})
	}
}

// FuzzCSVFastPath compares the fast path with encoding/csv alone on any
// bytes, in four dialects: the same records, lines and errors.
func FuzzCSVFastPath(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n", "a;b\r\n\"x\"\"y\";2\r\n", "a,b\n1,\"x\ny\"\n3,4\n", "a,b\n1,2\r", "a\tb\n1\t\"2\"\"\"\n",
		"a¦b\n1¦2\n\"3\"¦4\n", "a,b\n\n\r\n1,x\"y\n", "\ufeffa,b\n1,\"2\n", "a,b\n1,caf\xe9\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		compareFastPath(t, data, ReadLimits{MaxFieldBytes: 256, MaxRowBytes: 1024})
	})
}
