package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/report/study"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

var reportStudySections = []string{"flow", "baseline", "outcomes", "forest", "balance", "fidelity"}

// reportStudyTestWarehouse is the reference data set (158 participants)
// plus a few who withdrew, were lost or were never interviewed, one with a
// gender level carrying markup, with Compare run over it.
func reportStudyTestWarehouse(t *testing.T) (warehouse.Env, string) {
	t.Helper()
	env := compareTestEnv(t)
	ps, high := compareTestAncova(t)
	ps = append(ps,
		compareTestParticipant{id: "TEWV-X01", trust: "TEWV", team: "TEWV-01", arm: "intervention", ageBand: "18-24", gender: "male", diagnosis: "other", withdrawn: true, interviewedB: true, yBase: 3, yFU: math.NaN()},
		compareTestParticipant{id: "EPUT-X02", trust: "EPUT", team: "EPUT-02", arm: "control", ageBand: "65+", gender: "<b>x</b>", diagnosis: "anxiety", interviewedB: true, yBase: 10, yFU: math.NaN()},
		compareTestParticipant{id: "HPFT-X03", trust: "HPFT", team: "HPFT-02", arm: "control", yBase: math.NaN(), yFU: math.NaN()},
	)
	dir := compareTestRun(t, env, ps, compareTestBands(high))
	return env, dir
}

func reportStudyTestRender(t *testing.T, env warehouse.Env, dir string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := study.Report(context.Background(), env, dir, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// reportStudyTestSection returns the markup of the section with the id.
func reportStudyTestSection(t *testing.T, page, id string) string {
	t.Helper()
	start := strings.Index(page, `<section id="`+id+`">`)
	if start < 0 {
		t.Fatalf("no section %s", id)
	}
	end := strings.Index(page[start:], "</section>")
	return page[start : start+end]
}

func TestStudyReportContent(t *testing.T) {
	env, dir := reportStudyTestWarehouse(t)
	page := reportStudyTestRender(t, env, dir)
	if again := reportStudyTestRender(t, env, dir); again != page {
		t.Error("two renderings of the same tables differ")
	}
	for _, id := range reportStudySections {
		reportStudyTestSection(t, page, id)
	}
	if strings.Contains(page, "<b>x</b>") || !strings.Contains(page, "&lt;b&gt;x&lt;/b&gt;") {
		t.Error("a level from the data is not escaped")
	}

	// Flow: TEWV intervention has 15 recruited, all interviewed at
	// baseline; 14 followed up, 1 withdrew: the withdrawal is <5, and
	// baseline is hidden with it ([c]) so that 15 − 14 cannot give it away
	// (and recruited, which equals it, too).
	flow := reportStudyTestSection(t, page, "flow")
	if !strings.Contains(flow, `<td>TEWV</td><td>intervention</td><td class="num">[c]</td><td class="num">0</td><td class="num">[c]</td><td class="num">14</td><td class="num">&lt;5</td><td class="num">0</td>`) {
		t.Errorf("TEWV intervention flow row wrong:\n%s", flow)
	}
	// Control, all trusts: 82 recruited, 1 not interviewed at baseline (<5),
	// 81 at baseline, 80 followed up, 1 lost (<5): recruited and followed up
	// are hidden beside them. Intervention: 79 recruited and at baseline
	// (Table 1's n), 78 followed up, 1 withdrew: followed up is hidden. Both
	// arms: 160 at baseline, 158 followed up; recruited (161) is hidden, or
	// 161 − 79 − 81 would give the control arm's 1 not interviewed.
	for _, row := range []string{
		`<td>All trusts</td><td>intervention</td><td class="num">79</td><td class="num">0</td><td class="num">79</td><td class="num">[c]</td><td class="num">&lt;5</td><td class="num">0</td>`,
		`<td>All trusts</td><td>control</td><td class="num">[c]</td><td class="num">&lt;5</td><td class="num">81</td><td class="num">[c]</td><td class="num">0</td><td class="num">&lt;5</td>`,
		`<td>All trusts</td><td>both arms</td><td class="num">[c]</td><td class="num">&lt;5</td><td class="num">160</td><td class="num">158</td><td class="num">&lt;5</td><td class="num">&lt;5</td>`,
	} {
		if !strings.Contains(flow, row) {
			t.Errorf("flow lacks %s", row)
		}
	}
	// No sum of the table may have exactly one hidden cell: checked on the
	// rows and arm columns as shown.
	rows := regexp.MustCompile(`<tr[^>]*><td>[^<]*</td><td>[^<]*</td>((?:<td class="num">[^<]*</td>){6})</tr>`).FindAllStringSubmatch(flow, -1)
	if len(rows) != 13 {
		t.Errorf("flow table has %d rows, want 10 trust x arm + 2 arm totals + 1 overall", len(rows))
	}
	for _, m := range rows {
		cells := regexp.MustCompile(`<td class="num">([^<]*)</td>`).FindAllStringSubmatch(m[1], -1)
		hid := func(i int) bool { return cells[i][1] == "&lt;5" || cells[i][1] == "[c]" }
		n1, n2 := 0, 0
		for _, i := range []int{0, 1, 2} {
			if hid(i) {
				n1++
			}
		}
		for _, i := range []int{2, 3, 4, 5} {
			if hid(i) {
				n2++
			}
		}
		if n1 == 1 || n2 == 1 {
			t.Errorf("flow row %s has a recoverable cell", m[0])
		}
	}

	// Baseline: age band 18-24 has 14 participants in the reference data,
	// plus TEWV-X01 (intervention). Counted independently from the CSV.
	ps, _ := compareTestAncova(t)
	var n, young [2]int
	for _, p := range ps {
		a := 0
		if p.arm == "control" {
			a = 1
		}
		n[a]++
		if p.ageBand == "18-24" {
			young[a]++
		}
	}
	n[0]++
	young[0]++
	n[1]++ // EPUT-X02 interviewed at baseline; HPFT-X03 was not
	base := reportStudyTestSection(t, page, "baseline")
	for a, arm := range []string{"intervention", "control"} {
		if !strings.Contains(base, fmt.Sprintf("%s (n = %d)", arm, n[a])) {
			t.Errorf("baseline header lacks %s (n = %d)", arm, n[a])
		}
	}
	want := fmt.Sprintf(`<td>18-24</td><td class="num">%d (%.1f%%)</td><td class="num">%d (%.1f%%)</td>`,
		young[0], 100*float64(young[0])/float64(n[0]), young[1], 100*float64(young[1])/float64(n[1]))
	if !strings.Contains(base, want) {
		t.Errorf("baseline lacks %s", want)
	}
	// The markup gender is one person in control: <5, with a complementary
	// suppression ([c]) of the smallest other gender count in control, male.
	if !strings.Contains(base, `<td>&lt;b&gt;x&lt;/b&gt;</td><td class="num">0</td><td class="num">&lt;5</td>`) ||
		!regexp.MustCompile(`<td>Male</td><td class="num">\d+ \([0-9.]+%\)</td><td class="num">\[c\]</td>`).MatchString(base) {
		t.Errorf("baseline gender suppression wrong:\n%s", base)
	}

	// Outcomes: the primary CR2 estimate with R's numbers (expected.json,
	// as TestCompareAgainstR) rounded for display, the mixed model's ICC
	// and Hedges' g beside it; the other analyses in the compact table.
	out := reportStudyTestSection(t, page, "outcomes")
	if !strings.Contains(out, `<td class="num" data-label="Difference (95% CI)">0.96 (-1.31 to 3.23)</td><td class="num" data-label="p">0.307</td><td class="num" data-label="ICC">0.119</td><td class="num" data-label="g">0.19</td><td class="num" data-label="n analysed">158</td>`) {
		t.Errorf("outcomes lack the primary analysis beside the arms:\n%s", out)
	}
	// Per arm n and mean (SD) at baseline, recomputed from the participants
	// (not withdrawn, with a score; EPUT-X02 counts in control, the
	// withdrawn TEWV-X01 nowhere); the same mean (SD) in Table 1.
	extra := []compareTestParticipant{{arm: "control", interviewedB: true, yBase: 10}}
	for _, arm := range []string{"intervention", "control"} {
		var xs []float64
		for _, p := range append(append([]compareTestParticipant(nil), ps...), extra...) {
			if p.arm == arm && p.interviewedB && !p.withdrawn && !math.IsNaN(p.yBase) {
				xs = append(xs, p.yBase)
			}
		}
		var sum, ss float64
		for _, x := range xs {
			sum += x
		}
		mean := sum / float64(len(xs))
		for _, x := range xs {
			ss += (x - mean) * (x - mean)
		}
		cell := fmt.Sprintf(`<td class="num" data-label="%s: n">%d</td><td class="num" data-label="mean (SD)">%.1f (%.1f)</td>`, arm, len(xs), mean, math.Sqrt(ss/float64(len(xs)-1)))
		if !strings.Contains(out, `<td data-label="Wave">baseline</td>`) || !strings.Contains(out, cell) {
			t.Errorf("outcomes lack %s's baseline %s", arm, cell)
		}
		if !strings.Contains(base, fmt.Sprintf(`%.1f (%.1f)</td>`, mean, math.Sqrt(ss/float64(len(xs)-1)))) {
			t.Errorf("Table 1 lacks %s's baseline score", arm)
		}
	}
	for _, want := range []string{`<td data-label="Analysis">primary (cr1)</td>`, `<td data-label="Analysis">wild_bootstrap (wild_webb)</td>`, `<td data-label="Analysis">mixed (reml)</td>`} {
		if !strings.Contains(out, want) {
			t.Errorf("sensitivity table lacks %s", want)
		}
	}
	if strings.Contains(out, `<td data-label="Analysis">primary (cr2)</td>`) {
		t.Error("the primary analysis is repeated among the sensitivity analyses")
	}
	// Forest: an svg, five trusts and the pooled CR2 estimate.
	forest := reportStudyTestSection(t, page, "forest")
	if !regexp.MustCompile(`<figure class="chart">\s*<svg role="img"`).MatchString(forest) {
		t.Error("forest section has no inline svg")
	}
	if !strings.Contains(forest, `<td>Pooled (CR2)</td><td class="num">0.96</td><td class="num">-1.31 to 3.23</td>`) {
		t.Error("forest table lacks the pooled estimate")
	}
	for _, tr := range env.Study.TrustCodes() {
		if !strings.Contains(forest, "<td>"+tr+"</td>") {
			t.Errorf("forest table lacks %s", tr)
		}
	}

	bal := reportStudyTestSection(t, page, "balance")
	if !strings.Contains(bal, `<td>living_alone</td><td class="num">0.201</td><td class="num">0.003</td>`) {
		t.Error("balance lacks living_alone's SMDs (R: 0.2008 and 0.0028)")
	}
	fid := reportStudyTestSection(t, page, "fidelity")
	if !strings.Contains(fid, `<td>TEWV-01</td><td>TEWV</td><td>intervention</td><td><span class="badge band-moderate">moderate</span> 60%</td><td><span class="badge band-high">high</span> 80%</td>`) {
		t.Errorf("fidelity lacks TEWV-01's bands:\n%s", fid)
	}
}

func TestWriteStudyReport(t *testing.T) {
	env, dir := reportStudyTestWarehouse(t)
	tx := &warehouse.Tx{Dir: dir}
	if err := study.WriteReport(context.Background(), env, tx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "reports", "study-report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != reportStudyTestRender(t, env, dir) {
		t.Error("written report differs from the rendered one")
	}
	st, _ := os.Stat(filepath.Join(dir, "reports", "study-report.html"))
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
}

// TestStudyReportForestFromTrustEffects: the forest plot's per-trust rows
// are the trust_effects rows of the primary outcome at the primary wave
// (cr2_by_trust: one model, CR2 by team), in the study's trust order, and
// its pooled row the primary CR2 estimate: the report fits nothing.
func TestStudyReportForestFromTrustEffects(t *testing.T) {
	env, dir := reportStudyTestWarehouse(t)
	s := env.Study
	pg, err := study.Load(context.Background(), env, dir)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ est, lo, hi float64 }
	want := map[string]row{}
	err = warehouse.ScanTable(context.Background(), dir, "trust_effects", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "outcome", "wave", "trust", "method", "estimate", "ci_low", "ci_high")
		if err != nil {
			return err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			str := func(c int) string { return cols[c].(*array.String).Value(i) }
			num := func(c int) float64 { return cols[c].(*array.Float64).Value(i) }
			if str(0) == s.Analysis.PrimaryOutcome && str(1) == s.PrimaryWave() && str(3) == "cr2_by_trust" {
				want[str(2)] = row{num(4), num(5), num(6)}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != len(s.Trusts) {
		t.Fatalf("trust_effects has %d trusts for the primary outcome, want %d", len(want), len(s.Trusts))
	}
	if len(pg.ForestRows) != len(s.Trusts)+1 {
		t.Fatalf("%d forest rows, want %d trusts + pooled", len(pg.ForestRows), len(s.Trusts))
	}
	for i, code := range s.TrustCodes() {
		got, w := pg.ForestRows[i], want[code]
		if got.Trust != code {
			t.Errorf("forest row %d is %s, want %s (the study's order)", i, got.Trust, code)
		}
		if e, ci := fmt.Sprintf("%.2f", w.est), fmt.Sprintf("%.2f to %.2f", w.lo, w.hi); got.Estimate != e || got.CI != ci {
			t.Errorf("%s: forest shows %s (%s), trust_effects has %s (%s)", code, got.Estimate, got.CI, e, ci)
		}
	}
	pooled := pg.ForestRows[len(s.Trusts)]
	if !strings.HasPrefix(pooled.Trust, "Pooled") || pooled.Estimate == "—" {
		t.Errorf("pooled row %+v", pooled)
	}
}
