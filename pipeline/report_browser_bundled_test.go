package pipeline

import (
	"bytes"
	"context"
	"testing"

	fidelityreport "github.com/connectingpeople/cpi/pipeline/report/fidelity"
	"github.com/connectingpeople/cpi/pipeline/report/study"
)

// TestReportsOfBundledStudyMeasured runs every stage on the bundled study
// and measures its reports in Chromium (browserMeasure): every fidelity
// report fits 3 A4 pages with nothing scrolling sideways at 390 px and
// has its sections; the study report has its sections (the summary,
// flow, methods and checklist among them), its chart with text of 11 px
// or more, no console error, no sideways scroll, and prints on at most 12
// A4 pages. $CPI_SCREENSHOT_DIR keeps each page's phone screenshot and
// PDF for a person to look at.
func TestReportsOfBundledStudyMeasured(t *testing.T) {
	chromiumPath(t)
	env := ingestTestEnv(t)
	_, gen := runBundled(t, env)
	for _, team := range fidelityreport.ReportTeams(env.Study, false) {
		t.Run("fidelity-"+team, func(t *testing.T) {
			var buf bytes.Buffer
			if err := fidelityreport.Report(context.Background(), env, gen, team, &buf); err != nil {
				t.Fatal(err)
			}
			m := browserMeasure(t, buf.String(), "bundled-fidelity-"+team)
			browserAssert(t, m, 1, 3)
			browserSections(t, m, reportFidelitySections...)
		})
	}
	t.Run("study", func(t *testing.T) {
		var buf bytes.Buffer
		if err := study.Report(context.Background(), env, gen, &buf); err != nil {
			t.Fatal(err)
		}
		m := browserMeasure(t, buf.String(), "bundled-study")
		browserAssert(t, m, 1, 12)
		browserSections(t, m, append([]string{"summary", "methods", "checklist"}, reportStudySections...)...)
		t.Logf("study report: %s", fmtPages(m))
	})
}
