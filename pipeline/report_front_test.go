package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/compare"
	"github.com/connectingpeople/cpi/pipeline/report"
	"github.com/connectingpeople/cpi/pipeline/report/study"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// frontTestEffect is an effects row as this test reads it, straight from
// the table (not through the report).
type frontTestEffect struct {
	est, lo, hi, p float64
	n, m           int64
}

// frontTestEffects reads the effects rows of the primary outcome at the
// primary wave by analysis/method.
func frontTestEffects(t *testing.T, gen, outcome, wave string) map[string]frontTestEffect {
	t.Helper()
	out := map[string]frontTestEffect{}
	err := warehouse.ScanTable(context.Background(), gen, "effects", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "analysis", "outcome", "wave", "method", "term", "estimate", "ci_low", "ci_high", "p_value", "n_obs", "m")
		if err != nil {
			return err
		}
		str := func(c, i int) string { return cols[c].(*array.String).Value(i) }
		num := func(c, i int) float64 {
			a := cols[c].(*array.Float64)
			if a.IsNull(i) {
				return math.NaN()
			}
			return a.Value(i)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if str(1, i) != outcome || str(2, i) != wave || str(4, i) != compare.TermArm {
				continue
			}
			m := cols[10].(*array.Int32)
			var mv int64
			if m.IsValid(i) {
				mv = int64(m.Value(i))
			}
			out[str(0, i)+"/"+str(3, i)] = frontTestEffect{est: num(5, i), lo: num(6, i), hi: num(7, i), p: num(8, i), n: int64(cols[9].(*array.Int32).Value(i)), m: mv}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStudyReportFrontBundled runs the bundled study and checks the study
// report's front against the tables, read here independently:
//
//   - the flow table's analysed stage, summed over trusts, is the primary
//     analysis's n_obs of the primary outcome at the primary wave, and
//     analysed_itt is itt_mi's; per trust × arm, analysed is at most the
//     primary wave's count and analysed_itt is the primary wave's + lost;
//   - the summary's counts are the flow table's (recruited and at
//     baseline over both arms, analysed per arm), its estimate, interval
//     and p the primary effects row's, its ITT n and M itt_mi's;
//   - the CONSORT diagram has per arm the teams allocated and the
//     analysed boxes with the flow's counts;
//   - the methods name M and every analysis of the effects table;
//   - every checklist item pointing into the page points at an id that
//     is there, and the items not covered say so.
func TestStudyReportFrontBundled(t *testing.T) {
	env := ingestTestEnv(t)
	s := env.Study
	_, gen := runBundled(t, env)
	flow, err := compare.ReadFlowTable(context.Background(), s, gen)
	if err != nil {
		t.Fatal(err)
	}
	eff := frontTestEffects(t, gen, s.Analysis.PrimaryOutcome, s.PrimaryWave())
	primary, itt := eff["primary/cr2"], eff["itt_mi/cr2_mi"]
	arm := map[string]compare.FlowCounts{}
	var all compare.FlowCounts
	for k, c := range flow {
		if c.Analysed > c.Followup {
			t.Errorf("%v: %d analysed of %d followed up", k, c.Analysed, c.Followup)
		}
		if c.AnalysedITT != c.Followup+c.Lost {
			t.Errorf("%v: ITT %d, want followed up %d + lost %d", k, c.AnalysedITT, c.Followup, c.Lost)
		}
		a := arm[k.Arm]
		a.Add(c)
		arm[k.Arm] = a
		all.Add(c)
	}
	if all.Analysed != primary.n || all.Analysed == 0 {
		t.Errorf("analysed over trusts %d, primary n_obs %d", all.Analysed, primary.n)
	}
	if all.AnalysedITT != itt.n || all.AnalysedITT == 0 {
		t.Errorf("analysed_itt over trusts %d, itt_mi n_obs %d", all.AnalysedITT, itt.n)
	}

	var buf bytes.Buffer
	if err := study.Report(context.Background(), env, gen, &buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	summary := html.UnescapeString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(reportStudyTestSection(t, page, "summary"), ""))
	// Every count of the bundled summary is at least the threshold: shown.
	f2 := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	i, c := s.Arms[0], s.Arms[1]
	for _, want := range []string{
		fmt.Sprintf("5 %s and 5 %s community mental health teams in 5 NHS trusts", i, c),
		fmt.Sprintf("%d people were recruited and %d interviewed at baseline; %d were in the primary analysis of", all.Recruited, all.Baseline, primary.n),
		fmt.Sprintf("at followup (%d %s, %d %s)", arm[i].Analysed, i, arm[c].Analysed, c),
		fmt.Sprintf("was %s higher in the %s arm", f2(primary.est), i),
		fmt.Sprintf("(adjusted difference %s, 95%% CI %s to %s; p = %.3f)", f2(primary.est), f2(primary.lo), f2(primary.hi), primary.p),
		fmt.Sprintf("(%d imputations), %d people were analysed and the adjusted difference was %s (95%% CI %s to %s)", itt.m, itt.n, f2(itt.est), f2(itt.lo), f2(itt.hi)),
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("the summary lacks %q:\n%s", want, summary)
		}
	}
	if primary.lo < 0 && primary.hi > 0 && !strings.Contains(summary, "the interval includes zero") {
		t.Errorf("the summary does not say the interval includes zero:\n%s", summary)
	}

	flowHTML := reportStudyTestSection(t, page, "flow")
	for _, a := range []string{i, c} {
		for _, want := range []string{
			fmt.Sprintf(`Analysed, primary (complete cases) <b>%d</b><span class="teams">5 teams</span>`, arm[a].Analysed),
			`Withdrew <b>`, `<span class="reason">reason not recorded</span>`,
		} {
			if !strings.Contains(flowHTML, want) {
				t.Errorf("the diagram lacks %s", want)
			}
		}
	}
	if !strings.Contains(flowHTML, "10 teams in 5 trusts") {
		t.Error("the diagram lacks the allocation box")
	}

	methods := html.UnescapeString(reportStudyTestSection(t, page, "methods"))
	for _, want := range []string{fmt.Sprintf("%d imputations (seed %d)", itt.m, s.Analysis.ImputationSeed),
		"CR2 cluster-robust standard errors by team and Satterthwaite degrees of freedom", "study definition " + s.Hash[:12]} {
		if !strings.Contains(methods, want) {
			t.Errorf("the methods lack %q", want)
		}
	}
	for _, a := range s.Analysis.Analyses {
		if a != "primary" && a != "cost_effectiveness" && !strings.Contains(methods, "("+a+")") {
			t.Errorf("the methods do not list %s", a)
		}
	}

	check := reportStudyTestSection(t, page, "checklist")
	rows := regexp.MustCompile(`<tr><td data-label="Item">([^<]*)</td><td data-label="Topic">[^<]*</td><td data-label="Where">(.*?)</td></tr>`).FindAllStringSubmatch(check, -1)
	if len(rows) < 37 {
		t.Errorf("%d checklist items, want CONSORT's 37 or more", len(rows))
	}
	linked := 0
	for _, r := range rows {
		if m := regexp.MustCompile(`<a href="#([^"]+)">`).FindStringSubmatch(r[2]); m != nil {
			linked++
			if !strings.Contains(page, `id="`+m[1]+`"`) {
				t.Errorf("item %s points at #%s, not in the page", r[1], m[1])
			}
		} else if !strings.Contains(r[2], "not in this report") && !strings.Contains(r[2], "not applicable") {
			t.Errorf("item %s has no place and does not say why: %s", r[1], r[2])
		}
	}
	if linked < 12 {
		t.Errorf("%d items point into the page, want the 12 or more it covers", linked)
	}
}

// TestStudyReportAnalysedSmallArm: an arm with 3 people analysed, beside
// an arm of 100 and the model's n of 103 (shown: a model result), is
// shown as <5, and the other arm's 100 is hidden too ([c]), or 103 − 100
// would give the 3; with 30 analysed both arms are shown. The bounds (the
// followed up, the outcomes' n) are all shown in both cases.
func TestStudyReportAnalysedSmallArm(t *testing.T) {
	s := synthStudy(t)
	env := warehouse.Env{Study: s, Version: "test"}
	for _, c := range []struct {
		small      int64
		want, ctrl string
	}{{3, "&lt;5", "[c]"}, {30, "30", "100"}} {
		flow := map[study.FlowKey]study.FlowCounts{}
		desc := map[study.DescKey]study.DescStat{}
		for _, team := range s.Teams {
			an := int64(20)
			if team.Arm == s.Arms[0] {
				an = 0
				if team.Trust == s.Trusts[0].Code {
					an = c.small
				}
			}
			flow[study.FlowKey{Trust: team.Trust, Arm: team.Arm}] = study.FlowCounts{"recruited": 20, s.BaselineWave(): 20, s.PrimaryWave(): 20,
				"withdrawn": 0, "lost": 0, "analysed": an, "analysed_itt": 20}
		}
		for _, a := range s.Arms[:2] {
			for _, w := range []string{s.BaselineWave(), s.PrimaryWave()} {
				desc[study.DescKey{Outcome: s.Analysis.PrimaryOutcome, Wave: w, Arm: a}] = study.DescStat{N: 100, Mean: 10, SD: 2}
			}
		}
		base := study.NewBaselineCounts(s, s.Arms[:2])
		for _, a := range s.Arms[:2] {
			for range 100 {
				base.Add(a, make([]string, len(s.DemographicFields())))
			}
		}
		pg := study.NewPage(env)
		if err := pg.LayoutCountsWith(s, flow, base, desc); err != nil {
			t.Fatal(err)
		}
		pg.LayoutOutcomes(s, []study.EffectsLine{{Analysis: "primary", Outcome: s.Analysis.PrimaryOutcome, Wave: s.PrimaryWave(), Method: "cr2", Term: compare.TermArm,
			Estimate: 1, Se: 1, Df: 4, Lo: -1, Hi: 3, P: 0.5, Es: math.NaN(), NObs: int32(c.small + 100), NClusters: 10}})
		var buf bytes.Buffer
		if err := study.Render(&buf, pg); err != nil {
			t.Fatal(err)
		}
		page := buf.String()
		for arm, want := range map[string]string{s.Arms[0]: c.want, s.Arms[1]: c.ctrl} {
			box := fmt.Sprintf(`<h3>%s</h3>(?s:.*?)Analysed, primary \(complete cases\) <b>([^<]*)</b>`, arm)
			m := regexp.MustCompile(box).FindStringSubmatch(page)
			if m == nil || m[1] != want {
				t.Errorf("%d analysed: %s's box %v, want %s", c.small, arm, m, want)
			}
		}
		if !strings.Contains(page, fmt.Sprintf("%d were in the primary analysis", c.small+100)) {
			t.Errorf("%d analysed: the summary lacks the model's n %d", c.small, c.small+100)
		}
	}
}

// TestStudyReportITTModelN: the ITT section printed itt_mi's n_obs as a
// model's n (ShowModelN), outside the page's disclosure control. That
// population is the interviewed at the primary wave plus the lost, an
// implied cell of the flow: ITTModelN prints it only as the ITT analysed
// box is printed (when the counts shown determine it), and never a value
// that disagrees with the flow.
func TestStudyReportITTModelN(t *testing.T) {
	s := synthStudy(t)
	env := warehouse.Env{Study: s, Version: "test"}
	for _, lost := range []int64{0, 3, 30} {
		flow := map[study.FlowKey]study.FlowCounts{}
		var n int64
		for i, team := range s.Teams {
			l := int64(0)
			if i == 0 {
				l = lost
			}
			flow[study.FlowKey{Trust: team.Trust, Arm: team.Arm}] = study.FlowCounts{"recruited": 20 + l, s.BaselineWave(): 20 + l, s.PrimaryWave(): 20,
				"withdrawn": 0, "lost": l, "analysed": 20, "analysed_itt": 20 + l}
			n += 20 + l
		}
		base := study.NewBaselineCounts(s, s.Arms[:2])
		for k, f := range flow {
			for range f[s.BaselineWave()] {
				base.Add(k.Arm, make([]string, len(s.DemographicFields())))
			}
		}
		pg := study.NewPage(env)
		if err := pg.LayoutCountsWith(s, flow, base, map[study.DescKey]study.DescStat{}); err != nil {
			t.Fatal(err)
		}
		if got := pg.ITTModelN(s, n); got != strconv.FormatInt(n, 10) {
			t.Errorf("lost %d: ITT n %q, want %d (the flow's baseline and withdrawn are shown, so it is public)", lost, got, n)
		}
		// A population the flow does not confirm is not printed: ShowModelN
		// printed any n of at least the threshold.
		if got := pg.ITTModelN(s, n+1); got == strconv.FormatInt(n+1, 10) || report.ShowModelN(n+1, s.Disclosure) != strconv.FormatInt(n+1, 10) {
			t.Errorf("lost %d: an ITT n that disagrees with the flow is printed (%s)", lost, got)
		}
		if got := pg.ITTModelN(s, 3); got != s.Disclosure.SmallSymbol() {
			t.Errorf("lost %d: a small ITT n that disagrees with the flow is %q, want the small symbol", lost, got)
		}
	}
}
