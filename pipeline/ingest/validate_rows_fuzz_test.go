package ingest

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/schemas"
)

// FuzzSiteMapping feeds arbitrary rows through a site's header and value
// mapping and the row checks (AWP's dialect: aliases, Y/N codes, glob value
// maps, 02-Jan-2006 dates). Properties: no panic; every problem has a known
// code and the row's line; a rejected row has a problem; and no message
// repeats a cell value (values with characters no message uses are looked
// for in every message).
func FuzzSiteMapping(f *testing.F) {
	study, err := schemas.Default()
	if err != nil {
		f.Fatal(err)
	}
	site := study.Sites["AWP"]
	alias := map[string]string{}
	for k, v := range site.Headers {
		alias[v] = k
	}
	var header []string
	for _, fd := range study.ExportFields(schemas.KindParticipants) {
		h := fd.Name
		if a, ok := alias[fd.Name]; ok {
			h = a
		}
		header = append(header, h)
	}
	h, _, q := MapHeader(study, site, false, header)
	if q != "" {
		f.Fatalf("AWP header quarantined: %s", q)
	}
	rc := NewRowChecker(study, site, false, "AWP", time.Date(2019, 3, 29, 0, 0, 0, 0, time.UTC), h)
	known := map[string]bool{}
	for _, c := range []string{CodeRaggedRow, CodeBlankRow, CodeMissingValue, CodeBadID, CodeUnknownTeam, CodeWrongTrust, CodeBadCode,
		CodeNotInteger, CodeOutOfRange, CodeBadDate, CodeFutureDate, CodeFormula, CodeBadCharacter} {
		known[c] = true
	}
	f.Add("P00001\x1fAWP-01\x1fBaseline\x1f14-Mar-2018\x1f25-34\x1ffemale\x1fwhite\x1fY\x1fpsychosis\x1fN")
	f.Add("P0#1$\x1fAWP-9{9}\x1f6 months\x1f31-Feb-2018\x1f=HYPERLINK(\"x\")\x1f~~~~\x1f@@@@\x1f2\x1f\x1f")
	f.Add(strings.Repeat("\x1f", len(header)-1))
	f.Fuzz(func(t *testing.T, row string) {
		cells := strings.Split(row, "\x1f")
		if len(cells) < len(header) && len(cells) > len(header)/2 {
			cells = append(cells, make([]string, len(header)-len(cells))...)
		}
		var p parsedRow
		rc.check(cells, 7, &p)
		for _, pr := range p.errors {
			if !known[pr.Code] {
				t.Fatalf("unknown code %q", pr.Code)
			}
			if pr.Line != 7 {
				t.Fatalf("problem on line %d, want 7", pr.Line)
			}
			for _, c := range cells {
				if len(c) >= 4 && strings.ContainsAny(c, "#$%^&*~|{}!?") && strings.Contains(pr.Message, strings.TrimSpace(c)) {
					t.Fatalf("message %q repeats a cell value", pr.Message)
				}
			}
		}
	})
}

// trimSpace and parseInt32 agree with strings.TrimSpace and
// strconv.ParseInt on any cell.
func FuzzCellShortcuts(f *testing.F) {
	for _, s := range []string{"", "3", "03", "10", "99", "-1", " 4", "4 ", "\u00a04", "x", "1\u00a0", "+5", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := trimSpace(s), strings.TrimSpace(s); got != want {
			t.Errorf("trimSpace(%q) = %q, want %q", s, got, want)
		}
		got, gerr := parseInt32(s)
		want, werr := strconv.ParseInt(s, 10, 32)
		if got != want || (gerr == nil) != (werr == nil) {
			t.Errorf("parseInt32(%q) = %d, %v; strconv %d, %v", s, got, gerr, want, werr)
		}
	})
}
