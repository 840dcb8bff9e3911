package pipeline

import (
	"bytes"
	"context"
	"html"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/pipeline/fidelity"
	fidelityreport "github.com/connectingpeople/cpi/pipeline/report/fidelity"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// reportFidelityTestRatings is a small study: TEWV-01 rated in both periods,
// the other intervention teams in month6 only (BDCT-01 also in month3),
// HPFT-01 not at all, and one control team.
//
// Worked out by hand:
//   - TEWV-01 month3: totals 24 and 25 → 24.5 = 51.0%, moderate.
//   - TEWV-01 month6: totals 30, 33, 33 → 32 = 66.7%, moderate; lowest
//     components cpf05 (4/3) and cpf11 (4/3), tied and so in code order, then
//     cpf03 (2).
//   - Other intervention teams in month6: BDCT-01 36 (75%), EPUT-01 24 (50%),
//     AWP-01 9 × 3 + 3 × 2 = 33 (68.75%); median 68.75% → "68.8%", and TEWV-01
//     is 66.67 − 68.75 = −2.08 → "−2.1 points" below it.
//   - month3: only BDCT-01 of the other intervention teams: no comparison.
func reportFidelityTestRatings() []fidelityTestRating {
	c := fidelityTestConst
	month3b := c(2)
	month3b[0] = 3
	awp := c(3)
	awp[9], awp[10], awp[11] = 2, 2, 2
	return []fidelityTestRating{
		{"TEWV-01", "month3", "R01", "researcher", c(2)},
		{"TEWV-01", "month3", "R02", "practitioner", month3b},
		{"TEWV-01", "month6", "R01", "researcher", []int{3, 3, 2, 3, 1, 3, 3, 2, 3, 3, 1, 3}},
		{"TEWV-01", "month6", "R02", "practitioner", []int{3, 4, 2, 3, 1, 3, 3, 3, 3, 3, 2, 3}},
		{"TEWV-01", "month6", "R03", "practitioner", []int{4, 3, 2, 3, 2, 3, 3, 2, 3, 4, 1, 3}},
		{"TEWV-02", "month3", "R09", "researcher", c(1)},
		{"BDCT-01", "month3", "R11", "researcher", c(3)},
		{"BDCT-01", "month6", "R11", "researcher", c(3)},
		{"EPUT-01", "month6", "R21", "researcher", c(2)},
		{"AWP-01", "month6", "R31", "researcher", awp},
	}
}

// reportFidelityTestWarehouse commits a warehouse holding the ratings and
// what Fidelity made of them, and returns the env and its generation folder.
func reportFidelityTestWarehouse(t *testing.T) (warehouse.Env, string) {
	t.Helper()
	env := fidelityTestEnv(t)
	w, err := warehouse.OpenWarehouse(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	fidelityTestWriteRatings(t, env, tx, reportFidelityTestRatings())
	if err := fidelity.Fidelity(context.Background(), env, tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	gen, err := w.CurrentDir()
	if err != nil {
		t.Fatal(err)
	}
	return env, gen
}

func reportFidelityTestRender(t *testing.T, env warehouse.Env, gen, team string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := fidelityreport.Report(context.Background(), env, gen, team, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// reportFidelityTestSection is the text of the section with the given id,
// tags removed and entities decoded.
func reportFidelityTestSection(t *testing.T, page, id string) string {
	t.Helper()
	start := strings.Index(page, `id="`+id+`"`)
	if start < 0 {
		t.Fatalf("section %s missing", id)
	}
	rest := page[start:]
	end := strings.Index(rest, "</section>")
	if id == "summary" {
		end = strings.Index(rest, "</header>")
	}
	if end < 0 {
		t.Fatalf("section %s not closed", id)
	}
	text := regexp.MustCompile(`<[^>]*>`).ReplaceAllString(rest[:end], " ")
	return strings.Join(strings.Fields(html.UnescapeString(text)), " ")
}

var reportFidelitySections = []string{"summary", "periods", "components", "change", "comparison", "focus", "raters", "how-to-read"}

func TestFidelityReportContent(t *testing.T) {
	env, gen := reportFidelityTestWarehouse(t)
	page := reportFidelityTestRender(t, env, gen, "TEWV-01")

	for _, id := range reportFidelitySections {
		reportFidelityTestSection(t, page, id)
	}
	// Nothing from another team: no other team's code anywhere in the bytes
	// (text, attributes or chart), and no rater ids.
	for _, code := range env.Study.TeamCodes() {
		if code != "TEWV-01" && strings.Contains(page, code) {
			t.Errorf("the report of TEWV-01 mentions team %s", code)
		}
	}
	for _, id := range []string{"R01", "R02", "R03", "R11"} {
		if strings.Contains(page, id) {
			t.Errorf("the report shows rater id %s", id)
		}
	}

	checks := map[string][]string{
		"summary": {"Team TEWV-01", "Tees, Esk and Wear Valleys NHS FT (TEWV)", "Arm intervention"}, // The latest period's headline.

		"periods": {
			// 2 and 3 raters: both ICCs flagged.
			"† From fewer than 5 raters: too few for a stable estimate of agreement",
			"month3 24.5 of 48 51.0% moderate", // totals 24 and 25
			"month6 32 of 48 66.7% moderate",   // totals 30, 33, 33
			"0% 50% 75% 100%",                  // the thresholds marked on the bar
		},
		"components": {
			// cpf05: month3 2, month6 (1 + 1 + 2) / 3 = 1.3; median of the other
			// intervention teams' cpf05 in month6: 3, 2, 3 → 3.
			"cpf05 Exposure to new ideas and interests 2.0 1.3 ▼ −0.7 3.0",
			// cpf01: month3 (2 + 3) / 2 = 2.5, month6 (3 + 3 + 4) / 3 = 3.3;
			// others 3, 2, 3 → 3.
			"cpf01 Person-centred goals 2.5 3.3 ▲ +0.8 3.0",
			// cpf10: others 3, 2, 2 → median 2.
			"cpf10 Hope, motivation and responsibility 2.0 3.3 ▲ +1.3 2.0",
		},
		// 32 / 48 − 24.5 / 48 = 7.5 / 48 = 15.625 points, shown as 15.6.
		"change": {"the total went from 24.5 to 32 (+7.5)", "51.0% to 66.7% of the maximum (+15.6 points)",
			"The band stayed the same: moderate → moderate",
		},
		"comparison": {
			"month3 51.0% not available —", "Not available: fewer than two other intervention teams were rated in that period.",
			"month6 66.7% 68.8% −2.1 points",
		},
		"focus": {"Exposure to new ideas and interests (cpf05, mean 1.3 of 4)",
			"Links with community assets (cpf11, mean 1.3 of 4)",
			"Assessing social connections (cpf03, mean 2.0 of 4)",
			"Try: Keep an up-to-date list of local activities"},
		"raters": {
			// 1 researcher, 1 practitioner in month3; 1 and 2 in month6:
			// every count small, said in words, not a table of <5.
			"month3 : fewer than 5 raters (researcher and practitioner), each role and in all; fewer than 5 scored.",
			"month6 : fewer than 5 raters (researcher and practitioner), each role and in all; fewer than 5 scored.",
			"“Fewer than 5” means from 1 to 4 people",
		},
		"how-to-read": {"high 75% or more (a total of 36 or more)", "moderate 50% to under 75% (a total from 24 to under 36)", "low under 50% (a total under 24)"},
	}
	for id, wants := range checks {
		text := reportFidelityTestSection(t, page, id)
		for _, want := range wants {
			if !strings.Contains(text, want) {
				t.Errorf("section %s lacks %q:\n%s", id, want, text)
			}
		}
	}
	if !strings.Contains(page, "&lt;5") {
		t.Error(`no "<5" (escaped) in the page`)
	}
	// The headline names the latest period.
	if text := reportFidelityTestSection(t, page, "summary"); strings.Contains(text, "month3 the team") {
		t.Errorf("headline not about the latest period: %s", text)
	}
	if !strings.Contains(page, "In month6 the team scored 32 of 48 (66.7% of the maximum):") {
		t.Error("headline missing")
	}
	// The focus list is in order: lowest first, ties by code.
	focus := reportFidelityTestSection(t, page, "focus")
	if i, j, k := strings.Index(focus, "cpf05"), strings.Index(focus, "cpf11"), strings.Index(focus, "cpf03"); !(i < j && j < k) {
		t.Errorf("focus order wrong: %s", focus)
	}
	// Components up/down between periods: month3 is all 2 but cpf01 2.5; in
	// month6 cpf03 stays at 2, cpf05 and cpf11 fall to 4/3, the other nine
	// are 7/3 or more.
	if text := reportFidelityTestSection(t, page, "change"); !strings.Contains(text, "Components: 9 up , 2 down , 1 the same") {
		t.Errorf("component changes: %s", text)
	}

	if n := strings.Count(page, "<svg"); n != 1 {
		t.Errorf("%d charts, want 1", n)
	}
	if strings.Contains(page, "<?xml") || strings.Contains(page, "<script") || strings.Contains(page, "http://") && !strings.Contains(page, "http://www.w3.org/") {
		t.Error("page has an XML prologue, a script or a link")
	}
	for _, want := range []string{`<meta name="viewport"`, "@page { size: A4", "@media print"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if again := reportFidelityTestRender(t, env, gen, "TEWV-01"); again != page {
		t.Error("two renderings of the same tables differ")
	}
}

func TestFidelityReportOtherTeams(t *testing.T) {
	env, gen := reportFidelityTestWarehouse(t)
	// Not rated at all.
	page := reportFidelityTestRender(t, env, gen, "HPFT-01")
	if strings.Contains(page, "<svg") {
		t.Error("a team without ratings has a chart")
	}
	if text := reportFidelityTestSection(t, page, "periods"); !strings.Contains(text, "month3 not rated — not rated 0") {
		t.Errorf("not-rated periods: %s", text)
	}
	// HPFT-01's comparison in month6 uses the other three rated intervention
	// teams (TEWV-01 66.67, BDCT-01 75, EPUT-01 50, AWP-01 68.75 → median of
	// four = (66.67 + 68.75) / 2 = 67.7%).
	if text := reportFidelityTestSection(t, page, "comparison"); !strings.Contains(text, "month6 not rated 67.7% —") {
		t.Errorf("comparison for an unrated team: %s", text)
	}
	for _, code := range env.Study.TeamCodes() {
		if code != "HPFT-01" && strings.Contains(page, code) {
			t.Errorf("the report of HPFT-01 mentions team %s", code)
		}
	}
	// A control team, rated once: contamination monitoring only — its own
	// scores against the thresholds, its components and raters; no change
	// narrative, no comparison with the intervention teams, no practice or
	// suggestion.
	page = reportFidelityTestRender(t, env, gen, "TEWV-02")
	if text := reportFidelityTestSection(t, page, "periods"); !strings.Contains(text, "month3 12 of 48 25.0% low") {
		t.Errorf("control team periods: %s", text)
	}
	if text := reportFidelityTestSection(t, page, "components"); !strings.Contains(text, "cpf01 Person-centred goals 1.0") {
		t.Errorf("control team components: %s", text)
	}
	for _, id := range []string{"summary", "raters", "how-to-read"} {
		reportFidelityTestSection(t, page, id)
	}
	for _, id := range []string{"change", "comparison", "focus"} {
		if strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("a control team's report has section %s", id)
		}
	}
	text := html.UnescapeString(page)
	for _, bad := range []string{"Try:", "Where to focus", "Compared with", "median", "Others", env.Study.Fidelity.Components[0].Suggestion, env.Study.Fidelity.Components[0].Practice} {
		if strings.Contains(text, bad) {
			t.Errorf("a control team's report holds %q", bad)
		}
	}
	if !strings.Contains(page, "<strong>For the study team only: contamination monitoring.</strong> TEWV-02 is a control team.") {
		t.Error("a control team's report does not say it is for the study team only")
	}
	for _, code := range env.Study.TeamCodes() {
		if code != "TEWV-02" && strings.Contains(page, code) {
			t.Errorf("the report of TEWV-02 mentions team %s", code)
		}
	}

	var buf bytes.Buffer
	err := fidelityreport.Report(context.Background(), env, gen, "XYZ-09", &buf)
	if err == nil || !strings.Contains(err.Error(), "TEWV-01") {
		t.Errorf("unknown team: %v", err)
	}
}

func TestFidelityReportNeedsTables(t *testing.T) {
	env := fidelityTestEnv(t)
	err := fidelityreport.Report(context.Background(), env, t.TempDir(), "TEWV-01", &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "cpi fidelity") {
		t.Errorf("report without the fidelity tables: %v", err)
	}
}

func TestWriteFidelityReports(t *testing.T) {
	env := fidelityTestEnv(t)
	tx := testTx(t)
	fidelityTestWriteRatings(t, env, tx, reportFidelityTestRatings())
	if err := fidelity.Fidelity(context.Background(), env, tx); err != nil {
		t.Fatal(err)
	}
	// Reports of a team the study no longer has, and of a control team
	// (an earlier run's), are removed: only a report that may go to its
	// team stays in the reports folder.
	stale := []string{tx.Path("reports", "fidelity-OLD-01.html"), tx.Path("reports", "fidelity-TEWV-02.html")}
	for _, p := range stale {
		if err := os.WriteFile(p, []byte("old"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := fidelityreport.WriteReports(context.Background(), env, tx); err != nil {
		t.Fatal(err)
	}
	teams := fidelityreport.ReportTeams(env.Study, false)
	if want := []string{"TEWV-01", "BDCT-01", "EPUT-01", "AWP-01", "HPFT-01"}; strings.Join(teams, " ") != strings.Join(want, " ") {
		t.Errorf("reports written for %v, want the intervention teams %v", teams, want)
	}
	if all := fidelityreport.ReportTeams(env.Study, true); len(all) != 10 {
		t.Errorf("with control: %v", all)
	}
	for _, team := range teams {
		p := tx.Path("reports", "fidelity-"+team+".html")
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o640 {
			t.Errorf("%s has mode %v, want 0640", p, st.Mode().Perm())
		}
		b, _ := os.ReadFile(p)
		var want bytes.Buffer
		if err := fidelityreport.Report(context.Background(), env, tx.Dir, team, &want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want.Bytes()) {
			t.Errorf("%s differs from fidelityreport.Report's output", p)
		}
	}
	for _, p := range append(stale, tx.Path("reports", "fidelity-AWP-02.html")) {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s is in the reports folder: %v", p, err)
		}
	}
}

// TestFidelityReportRaters: 8 raters (5 researchers, 3 practitioners), 6
// of them scored. The practitioners are <5 and the researchers hidden with
// them; the raters who could not be scored (2) are not printed, so the
// total and the scored, printed twice (periods and raters tables), are not
// both shown.
func TestFidelityReportRaters(t *testing.T) {
	env := fidelityTestEnv(t)
	k := fidelityreport.Key{Team: "TEWV-01", Period: "month3"}
	d := &fidelityreport.ReportData{
		Summary: map[fidelityreport.Key]fidelityreport.Summary{k: {NRaters: 6, Total: 30, Max: 48, Pct: 62.5, Band: "moderate", TotalOK: true, PctOK: true}},
		Comps:   map[fidelityreport.Key][]float64{},
		Roles:   map[fidelityreport.Key]map[string]int{k: {"researcher": 5, "practitioner": 3}},
	}
	v, err := fidelityreport.BuildView(env, d, "TEWV-01")
	if err != nil {
		t.Fatal(err)
	}
	r := v.Raters[0]
	if got := strings.Join(r.Roles, " "); got != "[c] <5" {
		t.Errorf("roles shown %s, want [c] <5", got)
	}
	if r.Total != "[c]" && r.Scored != "[c]" {
		t.Errorf("8 raters and 6 scored both shown: %s, %s", r.Total, r.Scored)
	}
	if v.Periods[0].NRaters != r.Scored {
		t.Errorf("scored raters shown as %s in the periods table and %s in the raters table", v.Periods[0].NRaters, r.Scored)
	}
}

// The rating axis has at most 11 ticks however wide the scale: a study
// definition's range of a billion once made report writing run without end.
func TestFidelityTicksBounded(t *testing.T) {
	for _, c := range []struct {
		lo, hi int
		want   string
	}{
		{0, 4, "0 1 2 3 4"},
		{1, 5, "1 2 3 4 5"},
		{0, 10, "0 1 2 3 4 5 6 7 8 9 10"},
		{0, 100, "0 10 20 30 40 50 60 70 80 90 100"},
		{0, 30, "0 5 10 15 20 25 30"},
		{0, 1_000_000_000, "0 100000000 200000000 300000000 400000000 500000000 600000000 700000000 800000000 900000000 1000000000"},
		{math.MinInt, math.MaxInt, ""},
		{4, 0, ""},
	} {
		ticks := fidelityreport.Ticks(c.lo, c.hi)
		if len(ticks) > 11 {
			t.Fatalf("%d..%d: %d ticks", c.lo, c.hi, len(ticks))
		}
		if c.want == "" {
			continue
		}
		var got []string
		for _, tk := range ticks {
			got = append(got, tk.Label)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%d..%d: ticks %v, want %s", c.lo, c.hi, got, c.want)
		}
	}
}

// TestFidelityReportMeasured measures the fidelity report in Chromium at a
// true 390 px phone viewport and printed on A4: nothing scrolls sideways,
// no console error, every section in the DOM (an intervention and a
// control team's), the chart is there with role="img" and text of 11 px
// or more, and it prints on at most 3 pages (DESIGN §10, issue 17).
func TestFidelityReportMeasured(t *testing.T) {
	env, gen := reportFidelityTestWarehouse(t)
	for team, sections := range map[string][]string{
		"TEWV-01": reportFidelitySections,
		"TEWV-02": {"summary", "periods", "components", "raters", "how-to-read"},
	} {
		t.Run(team, func(t *testing.T) {
			m := browserMeasure(t, reportFidelityTestRender(t, env, gen, team), "fidelity-"+team)
			browserAssert(t, m, 1, 3)
			browserSections(t, m, sections...)
		})
	}
}

// TestFidelityReportTiesAndICC: EPUT-01 was rated 2 on every component in
// month6, so the three lowest listed are tied with the nine others, which
// the report names rather than cutting them silently; TEWV-01's list
// (cpf05, cpf11 at 4/3, cpf03 at 2) has no tie at its cut (cpf08 is 7/3).
// The ICC of 3 raters carries the caveat, and the chart is labelled with
// the components' names, not their codes.
func TestFidelityReportTiesAndICC(t *testing.T) {
	env, gen := reportFidelityTestWarehouse(t)
	page := reportFidelityTestRender(t, env, gen, "EPUT-01")
	focus := reportFidelityTestSection(t, page, "focus")
	f := env.Study.Fidelity
	listed := 0
	var tied []string
	for _, c := range f.Components {
		if strings.Contains(focus, "("+c.Code+", mean 2.0 of 4)") {
			listed++
			continue
		}
		tied = append(tied, c.Name+" ("+c.Code+")")
	}
	if listed != f.Lowest || len(tied) != len(f.Components)-f.Lowest {
		t.Fatalf("%d listed, want %d: %s", listed, f.Lowest, focus)
	}
	if want := "Tied with the last of these at a mean of 2.0, and so just as much a place to focus: " + strings.Join(tied, "; ") + "."; !strings.Contains(focus, want) {
		t.Errorf("focus lacks %q:\n%s", want, focus)
	}
	if text := reportFidelityTestSection(t, reportFidelityTestRender(t, env, gen, "TEWV-01"), "focus"); strings.Contains(text, "Tied") {
		t.Errorf("TEWV-01 has no tie at its cut: %s", text)
	}

	tewv := reportFidelityTestRender(t, env, gen, "TEWV-01")
	if n := strings.Count(reportFidelityTestSection(t, tewv, "periods"), "†"); n != 3 {
		t.Errorf("%d daggers in periods, want 3 (two ICCs and the note)", n)
	}
	chart := tewv[strings.Index(tewv, "<svg"):strings.Index(tewv, "</svg>")]
	for _, c := range f.Components {
		if !strings.Contains(chart, ">"+html.EscapeString(c.Name)+"</text>") {
			t.Errorf("chart lacks the name %q", c.Name)
		}
		if strings.Contains(chart, c.Code) {
			t.Errorf("chart shows the code %s", c.Code)
		}
	}
	// The latest means at the right of the bars: cpf05 4/3 → 1.3.
	if !strings.Contains(chart, `text-anchor="end" fill="#1b1b1b">1.3</text>`) {
		t.Error("chart lacks cpf05's month6 mean 1.3")
	}
}

// With 5 scored raters there is no caveat, with 4 there is.
func TestFidelityReportICCCaveat(t *testing.T) {
	env := fidelityTestEnv(t)
	for _, n := range []int{4, 5} {
		k := fidelityreport.Key{Team: "TEWV-01", Period: "month3"}
		d := &fidelityreport.ReportData{
			Summary: map[fidelityreport.Key]fidelityreport.Summary{k: {NRaters: n, Total: 30, Max: 48, Pct: 62.5, Band: "moderate", TotalOK: true, PctOK: true}},
			Comps:   map[fidelityreport.Key][]float64{},
			Roles:   map[fidelityreport.Key]map[string]int{k: {"researcher": n}},
		}
		fidelityreport.SetICC(d, k, 0.24)
		v, err := fidelityreport.BuildView(env, d, "TEWV-01")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := v.Periods[0].ICCFew, n < 5; got != want || v.Periods[0].ICC != "0.24" {
			t.Errorf("%d raters: ICC %s flagged %v, want 0.24 flagged %v", n, v.Periods[0].ICC, got, want)
		}
	}
}
