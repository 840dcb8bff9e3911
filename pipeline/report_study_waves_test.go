package pipeline

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// reportWavesTestWrite writes one table file of rows (column name → value:
// string, int32, int64, float64 (NaN null), bool; a date as a
// reportWavesDate) with warehouse.NewRowWriter; a column a row lacks is
// null.
func reportWavesTestWrite(t *testing.T, tx *warehouse.Tx, schema *arrow.Schema, table string, rows []map[string]any) {
	t.Helper()
	tf, err := tx.CreateTableFile(schema, table, "", "", "data")
	if err != nil {
		t.Fatal(err)
	}
	rw := warehouse.NewRowWriter(schema, tf)
	for _, row := range rows {
		for i, f := range schema.Fields() {
			v, ok := row[f.Name]
			if !ok {
				rw.Null(i)
				continue
			}
			switch x := v.(type) {
			case string:
				rw.Str(i, x)
			case int32:
				rw.Int32(i, x, true)
			case int64:
				rw.Int64(i, x)
			case float64:
				rw.Float64(i, x, !math.IsNaN(x))
			case bool:
				rw.Bool(i, x)
			case reportWavesDate:
				rw.Date(i, int32(x), true)
			default:
				t.Fatalf("%s.%s: unexpected %T", table, f.Name, v)
			}
		}
		if err := rw.RowDone(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
}

// reportWavesDate is a date column's value: days since 1970-01-01.
type reportWavesDate int32

// TestStudyReportThreeWaves renders the study report of a three-wave study
// (baseline, month6, month12; month12 primary) from flow, participants and
// effects tables the test writes itself: the flow diagram has a box per
// wave with the counts the test made, the flow table a column per wave,
// Table 1 counts the participants interviewed at baseline, and the
// outcomes are grouped by wave with the primary wave first, its CR2
// estimate the forest plot's pooled diamond.
//
// Each team has the same plan (a participant's number j decides it):
// intervention, 26 recruited: j < 6 not interviewed at baseline, 6–10
// withdrew, 11–15 lost (11–13 seen at month6), 16–25 seen at both waves;
// control, 20 recruited: j < 5 not interviewed, 5–10 lost (5–7 seen at
// month6), 11–19 seen at both.
func TestStudyReportThreeWaves(t *testing.T) {
	env := ingestTestEnv(t)
	st := *env.Study
	st.Waves = []string{"baseline", "month6", "month12"}
	env.Study = &st
	if st.PrimaryWave() != "month12" {
		t.Fatalf("primary wave %s, want month12", st.PrimaryWave())
	}
	tx := testTx(t)
	defer tx.Rollback()
	dir := tx.Dir

	type person struct {
		trust, team, arm       string
		j                      int
		base, m6, m12, wd, rec bool
	}
	var people []person
	for _, team := range st.Teams {
		n := 20
		if team.Arm == st.InterventionArm() {
			n = 26
		}
		for j := range n {
			p := person{trust: team.Trust, team: team.Code, arm: team.Arm, j: j, rec: true}
			if team.Arm == st.InterventionArm() {
				p.base = j >= 6
				p.wd = j >= 6 && j <= 10
				p.m6 = j >= 11 && j <= 13 || j >= 16
				p.m12 = j >= 16
			} else {
				p.base = j >= 5
				p.m6 = j >= 5 && j <= 7 || j >= 11
				p.m12 = j >= 11
			}
			people = append(people, p)
		}
	}

	// The flow, counted here as the flow table defines it: a wave counts
	// those interviewed at baseline and at the wave, not withdrawn; lost:
	// interviewed at baseline, not withdrawn, not at the primary wave.
	type key struct{ trust, arm string }
	flow := map[key]map[string]int64{}
	var keys []key
	for _, p := range people {
		k := key{p.trust, p.arm}
		if flow[k] == nil {
			flow[k] = map[string]int64{}
			keys = append(keys, k)
		}
		c := flow[k]
		c["recruited"]++
		if !p.base {
			continue
		}
		c["baseline"]++
		if p.wd {
			c["withdrawn"]++
			continue
		}
		if p.m6 {
			c["month6"]++
		}
		if p.m12 {
			c["month12"]++
		} else {
			c["lost"]++
		}
	}
	var flowRows []map[string]any
	for _, k := range keys {
		for _, stage := range []string{"baseline", "lost", "month12", "month6", "recruited", "withdrawn"} {
			flowRows = append(flowRows, map[string]any{"trust": k.trust, "arm": k.arm, "stage": stage, "n": flow[k][stage]})
		}
	}
	reportWavesTestWrite(t, tx, warehouse.ArrowSchema(env, "flow", nil), "flow", flowRows)

	var partRows []map[string]any
	for _, p := range people {
		pick := func(field string) string { return st.Demographics[field][p.j%2] }
		row := map[string]any{
			"study_id": fmt.Sprintf("%s-P%03d", p.team, p.j), "trust": p.trust, "team": p.team, "arm": p.arm,
			"age_band": pick("age_band"), "gender": pick("gender"), "ethnicity": st.Demographics["ethnicity"][0],
			"living_alone": int32(p.j % 2), "diagnosis_group": pick("diagnosis_group"),
			"withdrawn": p.wd, "interviewed_baseline": p.base, "interviewed_followup": p.base && p.m12 && !p.wd,
		}
		if p.base {
			row["baseline_date"] = reportWavesDate(20000)
		}
		partRows = append(partRows, row)
	}
	reportWavesTestWrite(t, tx, warehouse.ArrowSchema(env, "participants", nil), "participants", partRows)

	// effects with a wave column (added to the schema when tables.yaml
	// does not have it yet).
	eff := warehouse.ArrowSchema(env, "effects", nil)
	if len(eff.FieldIndices("wave")) == 0 {
		md := eff.Metadata()
		eff = arrow.NewSchema(append(eff.Fields(), arrow.Field{Name: "wave", Type: arrow.BinaryTypes.String}), &md)
	}
	effect := func(wave, method string, est float64) map[string]any {
		return map[string]any{"analysis": "primary", "outcome": st.Analysis.PrimaryOutcome, "wave": wave, "method": method, "term": "arm_intervention",
			"estimate": est, "std_error": 0.5, "df": 4.0, "ci_low": est - 1, "ci_high": est + 1, "p_value": 0.2,
			"n_obs": int32(95), "n_clusters": int32(10), "effect_size": math.NaN()}
	}
	reportWavesTestWrite(t, tx, eff, "effects", []map[string]any{
		effect("month12", "cr1", 1.25), effect("month12", "cr2", 1.5), effect("month6", "cr1", 0.625), effect("month6", "cr2", 0.75),
	})

	page := reportStudyTestRender(t, env, dir)
	flowHTML := reportStudyTestSection(t, page, "flow")

	// A box per wave in each arm's diagram, in wave order, withdrawn and
	// lost beside the primary wave's.
	arms := regexp.MustCompile(`(?s)<div class="arm">\s*<h3>([^<]*)</h3>(.*?)\n</div>\n`).FindAllStringSubmatch(flowHTML, -1)
	if len(arms) != 2 {
		t.Fatalf("%d arm diagrams, want 2:\n%s", len(arms), flowHTML)
	}
	box := regexp.MustCompile(`<div class="(?:box|side)[^"]*">([^<]*) <b>([^<]*)</b>`)
	want := map[string]string{
		"intervention": "Recruited 130; Not interviewed at baseline 30; Interviewed at baseline 100; Interviewed at month6 65; Withdrew 25; Lost to follow-up 25; Interviewed at month12 50",
		"control":      "Recruited 100; Not interviewed at baseline 25; Interviewed at baseline 75; Interviewed at month6 60; Withdrew 0; Lost to follow-up 30; Interviewed at month12 45",
	}
	for _, a := range arms {
		var got []string
		for _, m := range box.FindAllStringSubmatch(a[2], -1) {
			got = append(got, m[1]+" "+m[2])
		}
		if g := strings.Join(got, "; "); g != want[a[1]] {
			t.Errorf("%s's diagram:\n got %s\nwant %s", a[1], g, want[a[1]])
		}
	}
	// The test's own counts add up as the page's note says.
	for k, c := range flow {
		if c["baseline"] != c["month12"]+c["withdrawn"]+c["lost"] || c["month6"] > c["baseline"]-c["withdrawn"] {
			t.Fatalf("%v: the plan's counts %v do not add up", k, c)
		}
	}

	// The table: a column per wave; a trust's row and the totals.
	for _, w := range []string{
		`<th class="num">Baseline</th><th class="num">month6</th><th class="num">month12</th><th class="num">Withdrew</th>`,
		`<tr><td>TEWV</td><td>intervention</td><td class="num">26</td><td class="num">6</td><td class="num">20</td><td class="num">13</td><td class="num">10</td><td class="num">5</td><td class="num">5</td></tr>`,
		`<tr><td>TEWV</td><td>control</td><td class="num">20</td><td class="num">5</td><td class="num">15</td><td class="num">12</td><td class="num">9</td><td class="num">0</td><td class="num">6</td></tr>`,
		`<tr class="total"><td>All trusts</td><td>both arms</td><td class="num">230</td><td class="num">55</td><td class="num">175</td><td class="num">125</td><td class="num">95</td><td class="num">25</td><td class="num">55</td></tr>`,
		`interviewed at baseline = interviewed at month12 (the primary wave) + withdrew + lost.`,
	} {
		if !strings.Contains(flowHTML, w) {
			t.Errorf("flow lacks %s:\n%s", w, flowHTML)
		}
	}

	// Table 1: the participants interviewed at baseline (even j: the first
	// level; intervention j 6–25 gives 10 + 10 a team, control j 5–19 7 + 8).
	base := reportStudyTestSection(t, page, "baseline")
	for _, w := range []string{
		`<th class="num">intervention (n = 100)</th><th class="num">control (n = 75)</th>`,
		// Labels from the study's code lists, capitalised; a total column.
		`<tr><td>` + strings.ToUpper(st.Demographics["gender"][0][:1]) + strings.ReplaceAll(st.Demographics["gender"][0][1:], "_", " ") + `</td><td class="num">50 (50.0%)</td><td class="num">35 (46.7%)</td><td class="num">85 (48.6%)</td></tr>`,
		`<tr><td>Yes</td><td class="num">50 (50.0%)</td><td class="num">40 (53.3%)</td><td class="num">90 (51.4%)</td></tr>`,
		`<th class="num">Total (n = 175)</th>`,
	} {
		if !strings.Contains(base, w) {
			t.Errorf("baseline table lacks %s:\n%s", w, base)
		}
	}

	// Outcomes: the primary analysis beside each follow-up wave in the
	// study's order, the primary wave marked; the sensitivity table has
	// the primary wave first.
	out := reportStudyTestSection(t, page, "outcomes")
	row := regexp.MustCompile(`<td data-label="Wave">([^<]*)</td>.*?data-label="Difference \(95% CI\)">([^ <]*)`)
	var got []string
	for _, m := range row.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1]+" "+m[2])
	}
	if g := strings.Join(got, ", "); !strings.HasPrefix(g, "month6 0.75, month12 (primary) 1.50") {
		t.Errorf("outcome rows by wave: %s", g)
	}
	sens := regexp.MustCompile(`<td data-label="Wave">([^<]*)</td><td data-label="Analysis">primary \(cr1\)</td><td class="num" data-label="Difference \(95% CI\)">([^ <]*)`)
	got = nil
	for _, m := range sens.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1]+" "+m[2])
	}
	if g := strings.Join(got, ", "); g != "month12 1.25, month6 0.62" && g != "month12 1.25, month6 0.63" {
		t.Errorf("sensitivity rows by wave: %s", g)
	}
	forest := reportStudyTestSection(t, page, "forest")
	if !strings.Contains(forest, `<tr><td>Pooled (CR2)</td><td class="num">1.50</td><td class="num">0.50 to 2.50</td>`) {
		t.Errorf("the pooled estimate is not the primary wave's CR2:\n%s", forest)
	}
	if !strings.Contains(forest, `<figcaption>`+st.Analysis.PrimaryOutcome+` at month12: adjusted difference`) {
		t.Errorf("the forest plot does not say its wave:\n%s", forest)
	}
}
