package pipeline

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"html"
	"math"
	"math/big"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/pipeline/report/study"
	"github.com/connectingpeople/cpi/pipeline/synth"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

var disclosureStudies = flag.Int("disclosure.studies", 240, "synthetic studies rendered by TestStudyReportDisclosureSynthetic")

// TestStudyReportDisclosureSynthetic renders the study report's counts (the
// flow diagram and table, the baseline table and the outcomes' n) for
// many synthetic studies — seeds, sizes from 8 to 400 participants, one
// trust cut to 1–4 participants in some, and three disclosure rules — and
// proves from the HTML alone that no suppressed count is determined by the
// published ones.
//
// The test knows the report's layout, not its code: it parses every
// number and symbol of the page, writes down the relations a reader knows
// (each flow row: recruited = baseline + not interviewed, baseline =
// followed up + withdrew + lost; each flow column: the trusts add up to the
// arm, the arms to both; the diagram's boxes are the arm's totals; each
// baseline variable's levels add up to the arm's n in Table 1's header,
// and that n is the flow's arm at baseline), substitutes the published
// numbers, and decides with exact rational Gauss–Jordan elimination
// (math/big) whether each suppressed value's unit vector lies in the row
// space of the relations over the suppressed values: if it did, adding and
// subtracting published numbers would give it. It also checks every
// published count and percentage against counts it makes itself from the
// synthetic participants, that the small symbol marks exactly the counts
// from 1 to min−1, and that a model's n is shown exactly when it is at
// least the threshold.
func TestStudyReportDisclosureSynthetic(t *testing.T) {
	s := synthStudy(t)
	sizes := []int{8, 12, 20, 30, 45, 70, 120, 159, 250, 400}
	rules := []schemas.Disclosure{{MinCount: 5}, {MinCount: 8, Symbol: "*"}, {MinCount: 10}}
	var hidden, shown, cut int
	for k := range *disclosureStudies {
		opts := synth.SynthOptions{Seed: uint64(1000 + k), Participants: sizes[k%len(sizes)]}
		rule := rules[k%len(rules)]
		// Every third study has one trust cut to 1–4 participants.
		small, keep := "", 0
		if k%3 == 1 {
			small, keep = s.Trusts[k%len(s.Trusts)].Code, 1+k%4
			cut++
		}
		name := fmt.Sprintf("seed %d, %d participants, min %d %q", opts.Seed, opts.Participants, rule.MinCount, rule.Symbol)
		if small != "" {
			name += fmt.Sprintf(", %s cut to %d", small, keep)
		}
		parts := disclosureTestParticipants(t, s, opts, small, keep)
		page := disclosureTestRender(t, s, rule, parts)
		h, n := disclosureTestCheck(t, name, s, rule, parts, page)
		hidden += h
		shown += n
	}
	t.Logf("%d studies (%d with a trust cut small): %d counts published, %d suppressed, none determined", *disclosureStudies, cut, shown, hidden)
	if *disclosureStudies >= 200 && hidden < 1000 {
		t.Errorf("only %d suppressed counts over the studies: the test proves little", hidden)
	}
}

// disclosureTestPart is one synthetic participant as the report counts them.
type disclosureTestPart struct {
	Id, Trust, Team, Arm                  string
	AgeBand, Gender, Ethnicity, Diagnosis string  // "" when null
	LivingAlone                           float64 // NaN when null
	Withdrawn, InterviewedBaseline        bool
	interviewedFollowup                   bool
}

// Covariate returns a demographic field's value: a coded one as its level
// ("" when missing), living_alone as a number (NaN when missing).
func (p *disclosureTestPart) Covariate(name string) (level string, num float64) {
	switch name {
	case "age_band":
		return p.AgeBand, math.NaN()
	case "gender":
		return p.Gender, math.NaN()
	case "ethnicity":
		return p.Ethnicity, math.NaN()
	case "diagnosis_group":
		return p.Diagnosis, math.NaN()
	case "living_alone":
		return "", p.LivingAlone
	}
	return "", math.NaN()
}

// disclosureTestFlowCounts is one trust × arm's flow as DESIGN §7 defines it.
type disclosureTestFlowCounts struct {
	Recruited, Baseline, Followup, Withdrawn, Lost int64
}

func (c disclosureTestFlowCounts) NotBaseline() int64 { return c.Recruited - c.Baseline }

func (c *disclosureTestFlowCounts) Add(o disclosureTestFlowCounts) {
	c.Recruited += o.Recruited
	c.Baseline += o.Baseline
	c.Followup += o.Followup
	c.Withdrawn += o.Withdrawn
	c.Lost += o.Lost
}

// disclosureTestParticipants generates a study in memory and folds its rows
// into participants (a participant's demographics are those of their
// baseline row); with small set, that trust keeps its first keep only.
func disclosureTestParticipants(t *testing.T, s *schemas.Study, opts synth.SynthOptions, small string, keep int) []disclosureTestPart {
	t.Helper()
	var out []disclosureTestPart
	index := map[string]int{}
	perTrust := map[string]int{}
	err := synth.Synthesize(context.Background(), s, opts, func(trust string, r *synth.SynthInterview) error {
		i, ok := index[r.ParticipantID]
		if !ok {
			if trust == small && perTrust[trust] >= keep {
				return nil
			}
			perTrust[trust]++
			i = len(out)
			index[r.ParticipantID] = i
			out = append(out, disclosureTestPart{Id: r.ParticipantID, Trust: trust, Team: r.Team, Arm: r.Arm, LivingAlone: math.NaN()})
		}
		p := &out[i]
		p.Withdrawn = p.Withdrawn || r.Withdrawn
		if r.Wave == s.BaselineWave() {
			p.InterviewedBaseline = r.Interviewed()
			p.AgeBand, p.Gender, p.Ethnicity, p.Diagnosis = synthDemo(s, r, "age_band"), synthDemo(s, r, "gender"), synthDemo(s, r, "ethnicity"), synthDemo(s, r, "diagnosis_group")
			if v := r.Flags[slices.Index(s.BinaryDemographics(), "living_alone")]; v.Valid {
				p.LivingAlone = float64(v.Value)
			}
		} else if r.Interviewed() {
			p.interviewedFollowup = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// disclosureTestFlow counts the flow as DESIGN §7 defines it.
func disclosureTestFlow(s *schemas.Study, parts []disclosureTestPart) map[study.FlowKey]disclosureTestFlowCounts {
	flow := map[study.FlowKey]disclosureTestFlowCounts{}
	for _, t := range s.Teams {
		flow[study.FlowKey{Trust: t.Trust, Arm: t.Arm}] = disclosureTestFlowCounts{}
	}
	for _, p := range parts {
		k := study.FlowKey{Trust: p.Trust, Arm: p.Arm}
		c := flow[k]
		c.Recruited++
		if p.InterviewedBaseline {
			c.Baseline++
			switch {
			case p.Withdrawn:
				c.Withdrawn++
			case p.interviewedFollowup:
				c.Followup++
			default:
				c.Lost++
			}
		}
		flow[k] = c
	}
	return flow
}

// disclosureTestNs are the model sizes the outcomes table is given: around
// the threshold and the study's own sizes.
func disclosureTestNs(rule schemas.Disclosure, parts []disclosureTestPart) []int32 {
	m := int32(rule.MinCount)
	return []int32{0, 1, m - 1, m, m + 1, int32(len(parts)), int32(len(parts)) - 1}
}

// disclosureTestRender lays the page's counts out as study.Report does and
// renders it.
func disclosureTestRender(t *testing.T, s *schemas.Study, rule schemas.Disclosure, parts []disclosureTestPart) string {
	t.Helper()
	st := *s
	st.Disclosure = rule
	env := warehouse.Env{Study: &st, Version: "test"}
	pg := study.NewPage(env)
	base := study.NewBaselineCounts(&st, st.Arms[:2])
	fields := st.DemographicFields()
	for i := range parts {
		p := &parts[i]
		if !p.InterviewedBaseline {
			continue
		}
		values := make([]string, len(fields))
		for f, field := range fields {
			lv, num := p.Covariate(field.Name)
			switch {
			case field.Binary && !math.IsNaN(num):
				values[f] = strconv.Itoa(int(num))
			case !field.Binary:
				values[f] = lv
			}
		}
		base.Add(p.Arm, values)
	}
	flow := map[study.FlowKey]study.FlowCounts{}
	analysed := disclosureTestAnalysed(&st, parts)
	for k, c := range disclosureTestFlow(&st, parts) {
		flow[k] = study.FlowCounts{"recruited": c.Recruited, st.BaselineWave(): c.Baseline, st.PrimaryWave(): c.Followup, "withdrawn": c.Withdrawn, "lost": c.Lost,
			"analysed": analysed[k], "analysed_itt": c.Followup + c.Lost}
	}
	if err := pg.LayoutCountsWith(&st, flow, base, disclosureTestDesc(&st, parts)); err != nil {
		t.Fatal(err)
	}
	var effects []study.EffectsLine
	for _, n := range disclosureTestNs(rule, parts) {
		effects = append(effects, study.EffectsLine{Analysis: "primary", Outcome: st.Analysis.PrimaryOutcome, Wave: st.PrimaryWave(), Method: "cr1", Term: "arm_intervention",
			Estimate: 1, Se: 1, Df: 4, Lo: -1, Hi: 3, P: 0.5, Es: math.NaN(), NObs: n, NClusters: 10})
	}
	var nAnalysed int64
	for _, n := range analysed {
		nAnalysed += n
	}
	effects = append(effects, study.EffectsLine{Analysis: "primary", Outcome: st.Analysis.PrimaryOutcome, Wave: st.PrimaryWave(), Method: "cr2", Term: "arm_intervention",
		Estimate: 1, Se: 1, Df: 4, Lo: -1, Hi: 3, P: 0.5, Es: math.NaN(), NObs: int32(nAnalysed), NClusters: 10},
		study.EffectsLine{Analysis: "itt_mi", Outcome: st.Analysis.PrimaryOutcome, Wave: st.PrimaryWave(), Method: "cr2_mi", Term: "arm_intervention",
			Estimate: 1, Se: 1, Df: 4, Lo: -1, Hi: 3, P: 0.5, Es: math.NaN(), NObs: 0, NClusters: 10})
	pg.LayoutOutcomes(&st, effects)
	var buf bytes.Buffer
	if err := study.Render(&buf, pg); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// disclosureTestAnalysed is the primary analysis's people per trust × arm
// for the synthetic participants as disclosureTestDesc scores them: not
// withdrawn, interviewed (and scored) at baseline and at follow-up.
func disclosureTestAnalysed(s *schemas.Study, parts []disclosureTestPart) map[study.FlowKey]int64 {
	out := map[study.FlowKey]int64{}
	for i := range parts {
		p := &parts[i]
		last := int(p.Id[len(p.Id)-1])
		if !p.Withdrawn && p.InterviewedBaseline && p.interviewedFollowup && last%7 != 0 && last%5 != 0 {
			out[study.FlowKey{Trust: p.Trust, Arm: p.Arm}]++
		}
	}
	return out
}

// disclosureTestDesc is the descriptives table of the primary outcome as
// compare would write it for the synthetic participants, each of whom is
// given a score or not by their id: missing at baseline when the id's
// last byte is divisible by 7, at follow-up when divisible by 5 (so
// that every arm has a few missing). n counts the not withdrawn with a
// score, at baseline among those interviewed then, at follow-up among
// those followed up (the flow's followed up).
func disclosureTestDesc(s *schemas.Study, parts []disclosureTestPart) map[study.DescKey]study.DescStat {
	out := map[study.DescKey]study.DescStat{}
	o := s.Analysis.PrimaryOutcome
	for _, arm := range s.Arms {
		for _, w := range []string{s.BaselineWave(), s.PrimaryWave()} {
			out[study.DescKey{Outcome: o, Wave: w, Arm: arm}] = study.DescStat{Mean: 10, SD: 2}
		}
	}
	for i := range parts {
		p := &parts[i]
		if p.Withdrawn || !p.InterviewedBaseline {
			continue
		}
		last := int(p.Id[len(p.Id)-1])
		if last%7 != 0 {
			k := study.DescKey{Outcome: o, Wave: s.BaselineWave(), Arm: p.Arm}
			st := out[k]
			st.N++
			out[k] = st
		}
		if p.interviewedFollowup && last%5 != 0 {
			k := study.DescKey{Outcome: o, Wave: s.PrimaryWave(), Arm: p.Arm}
			st := out[k]
			st.N++
			out[k] = st
		}
	}
	return out
}

// disclosureTestUnlabel turns Table 1's labels back into the codes
// ("Living alone" → living_alone, "Non binary" → non_binary); "Not
// recorded" stays "not recorded".
func disclosureTestUnlabel(label string) string {
	l := strings.ToLower(label)
	if l == "not recorded" {
		return l
	}
	if strings.HasPrefix(label, "<") { // a level from the data, unlabelled
		return label
	}
	return strings.ReplaceAll(l, " ", "_")
}

// disclosureTestCell is one number or symbol of the page.
type disclosureTestCell struct {
	where string
	text  string // as printed, unescaped
	value int64  // the true count, from the participants
}

var (
	disclosureTestBox = regexp.MustCompile(`<div class="arm">\s*<h3>([^<]*)</h3>((?s:.*?))<div class="box">Followed up <b>([^<]*)</b>((?s:.*?))\n</div>\n`)
	// disclosureTestAnalysedBox is an analysed box of the diagram, and
	// disclosureTestSummary the summary's counts.
	disclosureTestAnalysedBox = regexp.MustCompile(`<div class="box analysed">Analysed, (primary|ITT)[^<]* <b>([^<]*)</b>`)
	disclosureTestSummary     = regexp.MustCompile(`([^ >]+) people were recruited and ([^ ]+) interviewed at baseline; ([^ ]+) were in the primary analysis .*? at [^ ]+ \(([^ ]+) intervention, ([^ ]+) control\)(?s:.*), ([^ ]+) people were analysed`)
	disclosureTestBoxes       = regexp.MustCompile(`(Recruited|Not interviewed at baseline|Interviewed at baseline|Withdrew|Lost to follow-up) <b>([^<]*)</b>`)
	disclosureTestRow         = regexp.MustCompile(`<tr(?: class="total")?><td>([^<]*)</td><td>([^<]*)</td>((?:<td class="num">[^<]*</td>){6})</tr>`)
	disclosureTestNum         = regexp.MustCompile(`<td class="num">([^<]*)</td>`)
	disclosureTestHead        = regexp.MustCompile(`<th class="num">([^<]*) \(n = ([^)]*)\)</th>`)
	disclosureTestVar         = regexp.MustCompile(`<tr class="total"><td colspan="\d+">([^<]*)</td></tr>`)
	disclosureTestLevel       = regexp.MustCompile(`<tr><td>([^<]*)</td>((?:<td class="num">[^<]*</td>)+)</tr>`)
	disclosureTestPct         = regexp.MustCompile(`^(\d+) \((\d+\.\d)%\)$`)
	// disclosureTestDescRow is a row of the outcomes table by arm: the wave,
	// then each arm's n (and mean (SD)).
	disclosureTestDescRow = regexp.MustCompile(`<tr><td data-label="Wave">([^<]*)</td><td class="num" data-label="([^"]*): n">([^<]*)</td><td class="num" data-label="mean \(SD\)">[^<]*</td><td class="num" data-label="([^"]*): n">([^<]*)</td>`)
)

// disclosureTestCheck parses the page, checks it and proves every
// suppressed count undetermined; it returns how many were suppressed and
// how many shown.
func disclosureTestCheck(t *testing.T, name string, s *schemas.Study, rule schemas.Disclosure, parts []disclosureTestPart, page string) (int, int) {
	t.Helper()
	small := "<" + strconv.Itoa(rule.MinCount)
	secondary := "[c]"
	if rule.Symbol != "" {
		small, secondary = rule.Symbol, rule.Symbol
	}
	arms := s.Arms[:2]
	flow := disclosureTestFlow(s, parts)
	var cells []disclosureTestCell
	at := map[string]int{}
	add := func(where, text string, value int64) int {
		if _, dup := at[where]; dup {
			t.Fatalf("%s: %s printed twice", name, where)
		}
		at[where] = len(cells)
		cells = append(cells, disclosureTestCell{where: where, text: html.UnescapeString(text), value: value})
		return len(cells) - 1
	}
	var rels [][]int // total first, then parts; a two-element relation is an equality
	stages := []string{"recruited", "not_baseline", "baseline", "followup", "withdrawn", "lost"}
	stageValue := func(c disclosureTestFlowCounts, st int) int64 {
		return []int64{c.Recruited, c.NotBaseline(), c.Baseline, c.Followup, c.Withdrawn, c.Lost}[st]
	}

	// The flow table.
	section := func(id string) string {
		start := strings.Index(page, `<section id="`+id+`">`)
		if start < 0 {
			t.Fatalf("%s: no section %s", name, id)
		}
		return page[start : start+strings.Index(page[start:], "</section>")]
	}
	flowHTML := section("flow")
	rows := disclosureTestRow.FindAllStringSubmatch(flowHTML, -1)
	if want := len(flow) + len(arms) + 1; len(rows) != want {
		t.Fatalf("%s: %d flow rows, want %d", name, len(rows), want)
	}
	row := map[[2]string][6]int{}
	armTotal := map[string]disclosureTestFlowCounts{}
	var all disclosureTestFlowCounts
	for k, c := range flow {
		a := armTotal[k.Arm]
		a.Add(c)
		armTotal[k.Arm] = a
		all.Add(c)
	}
	for _, m := range rows {
		trust, arm := html.UnescapeString(m[1]), html.UnescapeString(m[2])
		var c disclosureTestFlowCounts
		switch {
		case trust == "All trusts" && arm == "both arms":
			c = all
		case trust == "All trusts":
			c = armTotal[arm]
		default:
			c = flow[study.FlowKey{Trust: trust, Arm: arm}]
		}
		nums := disclosureTestNum.FindAllStringSubmatch(m[3], -1)
		var ids [6]int
		for st := range stages {
			ids[st] = add("flow "+trust+" "+arm+" "+stages[st], nums[st][1], stageValue(c, st))
		}
		row[[2]string{trust, arm}] = ids
		rels = append(rels, []int{ids[0], ids[2], ids[1]}, []int{ids[2], ids[3], ids[4], ids[5]})
	}
	for st := range stages {
		var armCells []int
		for _, arm := range arms {
			sum := []int{row[[2]string{"All trusts", arm}][st]}
			for _, tr := range s.TrustCodes() {
				if ids, ok := row[[2]string{tr, arm}]; ok {
					sum = append(sum, ids[st])
				}
			}
			rels = append(rels, sum)
			armCells = append(armCells, sum[0])
		}
		rels = append(rels, append([]int{row[[2]string{"All trusts", "both arms"}][st]}, armCells...))
	}
	// The diagram's boxes: the arm totals again.
	analysedArm := map[string]int64{}
	for k, n := range disclosureTestAnalysed(s, parts) {
		analysedArm[k.Arm] += n
	}
	analysedCell := map[string]int{}
	boxes := disclosureTestBox.FindAllStringSubmatch(flowHTML, -1)
	if len(boxes) != len(arms) {
		t.Fatalf("%s: %d flow diagrams, want %d", name, len(boxes), len(arms))
	}
	boxStage := map[string]int{"Recruited": 0, "Not interviewed at baseline": 1, "Interviewed at baseline": 2, "Withdrew": 4, "Lost to follow-up": 5}
	for _, b := range boxes {
		arm := html.UnescapeString(b[1])
		ids := row[[2]string{"All trusts", arm}]
		for _, m := range disclosureTestBoxes.FindAllStringSubmatch(b[2], -1) {
			st := boxStage[m[1]]
			rels = append(rels, []int{ids[st], add("box "+arm+" "+m[1], m[2], stageValue(armTotal[arm], st))})
		}
		rels = append(rels, []int{ids[3], add("box "+arm+" followed up", b[3], stageValue(armTotal[arm], 3))})
		// The analysed boxes: the ITT population is the followed up plus
		// lost; the primary analysis's people are bounded by the
		// followed up (checked below with the outcomes' n).
		an := disclosureTestAnalysedBox.FindAllStringSubmatch(b[4], -1)
		if len(an) != 2 {
			t.Fatalf("%s: %s has %d analysed boxes, want 2", name, arm, len(an))
		}
		analysedCell[arm] = add("box "+arm+" analysed", an[0][2], analysedArm[arm])
		itt := add("box "+arm+" analysed ITT", an[1][2], stageValue(armTotal[arm], 3)+stageValue(armTotal[arm], 5))
		rels = append(rels, []int{itt, ids[3], ids[5]})
	}

	// The summary: recruited and at baseline are the flow's both arms, the
	// primary analysis's people the arms' analysed, the ITT population
	// followed up + lost of both arms.
	sm := disclosureTestSummary.FindStringSubmatch(section("summary"))
	if sm == nil {
		t.Fatalf("%s: the summary lacks its counts:\n%s", name, section("summary"))
	}
	both := row[[2]string{"All trusts", "both arms"}]
	rels = append(rels, []int{add("summary recruited", sm[1], all.Recruited), both[0]}, []int{add("summary baseline", sm[2], all.Baseline), both[2]})
	var allAnalysed int64
	for _, a := range arms {
		allAnalysed += analysedArm[a]
	}
	sumAnalysed := add("summary analysed", sm[3], allAnalysed)
	rels = append(rels, []int{sumAnalysed, analysedCell[arms[0]], analysedCell[arms[1]]})
	rels = append(rels, []int{add("summary analysed "+arms[0], sm[4], analysedArm[arms[0]]), analysedCell[arms[0]]}, []int{add("summary analysed "+arms[1], sm[5], analysedArm[arms[1]]), analysedCell[arms[1]]})
	rels = append(rels, []int{add("summary ITT", sm[6], all.Followup+all.Lost), both[3], both[5]})

	// The baseline table, counted here from the participants.
	baseHTML := section("baseline")
	heads := disclosureTestHead.FindAllStringSubmatch(baseHTML, -1)
	if len(heads) != len(arms)+1 || heads[len(arms)][1] != "Total" {
		t.Fatalf("%s: baseline header %v", name, heads)
	}
	nCell := map[string]int{}
	for _, h := range heads[:len(arms)] {
		arm := html.UnescapeString(h[1])
		nCell[arm] = add("baseline n "+arm, h[2], armTotal[arm].Baseline)
		rels = append(rels, []int{nCell[arm], row[[2]string{"All trusts", arm}][2]})
	}
	// The total column: its n is the flow's both arms at baseline.
	nTotal := add("baseline n Total", heads[len(arms)][2], all.Baseline)
	rels = append(rels, []int{nTotal, row[[2]string{"All trusts", "both arms"}][2]})
	level := func(p *disclosureTestPart, v string) string {
		lv, num := p.Covariate(v)
		if v == "living_alone" {
			switch {
			case math.IsNaN(num):
				return "not recorded"
			case num == 1:
				return "yes"
			}
			return "no"
		}
		if lv == "" {
			return "not recorded"
		}
		return lv
	}
	vars := disclosureTestVar.FindAllStringSubmatchIndex(baseHTML, -1)
	if len(vars) != 5 {
		t.Fatalf("%s: %d baseline variables, want 5", name, len(vars))
	}
	for vi, v := range vars {
		end := len(baseHTML)
		if vi+1 < len(vars) {
			end = vars[vi+1][0]
		}
		variable := disclosureTestUnlabel(baseHTML[v[2]:v[3]])
		sums := make([][]int, len(arms)+1)
		for a, arm := range arms {
			sums[a] = []int{nCell[arm]}
		}
		sums[len(arms)] = []int{nTotal}
		for _, m := range disclosureTestLevel.FindAllStringSubmatch(baseHTML[v[1]:end], -1) {
			lv := disclosureTestUnlabel(html.UnescapeString(m[1]))
			nums := disclosureTestNum.FindAllStringSubmatch(m[2], -1)
			if len(nums) != len(arms)+1 {
				t.Fatalf("%s: %s %s has %d cells, want the arms and a total", name, variable, lv, len(nums))
			}
			// The total column: the level over both arms, a sum of the arms'.
			var both int64
			for i := range parts {
				if p := &parts[i]; slices.Contains(arms, p.Arm) && p.InterviewedBaseline && level(p, variable) == lv {
					both++
				}
			}
			totalText := html.UnescapeString(nums[len(arms)][1])
			if pm := disclosureTestPct.FindStringSubmatch(totalText); pm != nil {
				if want := fmt.Sprintf("%.1f", 100*float64(both)/float64(all.Baseline)); pm[2] != want {
					t.Errorf("%s: %s %s total: %s%%, want %s%%", name, variable, lv, pm[2], want)
				}
				totalText = pm[1]
			}
			levelTotal := add("baseline "+variable+" "+lv+" total", totalText, both)
			sums[len(arms)] = append(sums[len(arms)], levelTotal)
			armCells := []int{levelTotal}
			for a, arm := range arms {
				var count int64
				for i := range parts {
					if p := &parts[i]; p.Arm == arm && p.InterviewedBaseline && level(p, variable) == lv {
						count++
					}
				}
				text := html.UnescapeString(nums[a][1])
				// A percentage goes only with a shown count of a shown n,
				// and must be that count's.
				if pm := disclosureTestPct.FindStringSubmatch(text); pm != nil {
					n := cells[nCell[arm]]
					if _, err := strconv.ParseInt(n.text, 10, 64); err != nil {
						t.Errorf("%s: %s %s %s has a percentage beside a hidden n (%s)", name, variable, lv, arm, n.text)
					}
					if want := fmt.Sprintf("%.1f", 100*float64(count)/float64(n.value)); pm[2] != want {
						t.Errorf("%s: %s %s %s: %s%%, want %s%%", name, variable, lv, arm, pm[2], want)
					}
					text = pm[1]
				}
				sums[a] = append(sums[a], add("baseline "+variable+" "+lv+" "+arm, text, count))
				armCells = append(armCells, sums[a][len(sums[a])-1])
			}
			rels = append(rels, armCells)
		}
		// Every participant at baseline is in one level: the levels printed
		// add up to n, so none is missing from the page.
		for a := range sums {
			var total int64
			for _, c := range sums[a][1:] {
				total += cells[c].value
			}
			if total != cells[sums[a][0]].value {
				t.Errorf("%s: %s's levels add up to %d in column %d, not n = %d", name, variable, total, a, cells[sums[a][0]].value)
			}
		}
		rels = append(rels, sums...)
	}

	// The outcomes table's per-arm n (disclosureTestDesc): at baseline
	// n + withdrew + missing = interviewed at baseline, at follow-up n +
	// missing = followed up, "missing" being counts a reader does not see
	// (unknowns of the system, which must stay undetermined when small).
	var implied []int
	outHTML := section("outcomes")
	descRows := disclosureTestDescRow.FindAllStringSubmatch(outHTML, -1)
	if len(descRows) != 2 {
		t.Fatalf("%s: %d outcome rows by arm, want baseline and followup", name, len(descRows))
	}
	truthDesc := disclosureTestDesc(s, parts)
	for _, m := range descRows {
		wave := m[1]
		for _, pair := range [][2]string{{m[2], m[3]}, {m[4], m[5]}} {
			arm := html.UnescapeString(pair[0])
			st := truthDesc[study.DescKey{Outcome: s.Analysis.PrimaryOutcome, Wave: wave, Arm: arm}]
			c := add("outcomes n "+wave+" "+arm, pair[1], st.N)
			at := armTotal[arm]
			if wave == s.BaselineWave() {
				miss := add("implied missing "+wave+" "+arm, "", at.Baseline-at.Withdrawn-st.N)
				implied = append(implied, miss)
				rels = append(rels, []int{row[[2]string{"All trusts", arm}][2], c, row[[2]string{"All trusts", arm}][4], miss})
			} else {
				miss := add("implied missing "+wave+" "+arm, "", at.Followup-st.N)
				implied = append(implied, miss)
				rels = append(rels, []int{row[[2]string{"All trusts", arm}][3], c, miss})
			}
		}
	}

	// An analysed count shown must not pin a hidden bound: it is at most
	// the arm's followed up and its outcome n at baseline and follow-up.
	for _, arm := range arms {
		c := cells[analysedCell[arm]]
		if _, err := strconv.ParseInt(c.text, 10, 64); err != nil {
			continue
		}
		bounds := []int{row[[2]string{"All trusts", arm}][3]}
		for _, w := range []string{s.BaselineWave(), s.PrimaryWave()} {
			if i, ok := at["outcomes n "+w+" "+arm]; ok {
				bounds = append(bounds, i)
			}
		}
		for _, b := range bounds {
			if bc := cells[b]; (bc.text == small || bc.text == secondary) && bc.value == c.value {
				t.Errorf("%s: %s (%d) is shown and pins %s", name, c.where, c.value, bc.where)
			}
		}
	}

	// Each cell: shown as its true count, or as a symbol that says what it
	// is; the small symbol for exactly the counts from 1 to min − 1.
	var unknown []int
	for i, c := range cells {
		isSmall := c.value > 0 && c.value < int64(rule.MinCount)
		if slices.Contains(implied, i) {
			unknown = append(unknown, i)
			continue
		}
		switch c.text {
		case small, secondary:
			if isSmall && c.text != small || !isSmall && c.text != secondary || c.value == 0 {
				t.Errorf("%s: %s is %d, shown as %q", name, c.where, c.value, c.text)
			}
			unknown = append(unknown, i)
		default:
			if c.text != strconv.FormatInt(c.value, 10) {
				t.Errorf("%s: %s is %d, shown as %q", name, c.where, c.value, c.text)
			}
			if isSmall {
				t.Errorf("%s: %s is %d and shown", name, c.where, c.value)
			}
		}
	}
	for _, w := range disclosureTestDetermined(cells, rels, unknown) {
		if slices.Contains(implied, w) && (cells[w].value == 0 || cells[w].value >= int64(rule.MinCount)) {
			continue // a count not printed, and not small: no harm in knowing it
		}
		t.Errorf("%s: %s (%d, shown as %q) can be worked out from the published counts", name, cells[w].where, cells[w].value, cells[w].text)
	}

	// Model sizes: shown from the threshold up.
	var ns []string
	outcomes := regexp.MustCompile(`<td data-label="Analysis">primary \(cr1\)</td>(?:<td class="num" data-label="[^"]*">[^<]*</td>){2}<td class="num" data-label="n">([^<]*)</td>`).FindAllStringSubmatch(section("outcomes"), -1)
	for _, m := range outcomes {
		ns = append(ns, html.UnescapeString(m[1]))
	}
	var want []string
	for _, n := range disclosureTestNs(rule, parts) {
		if n > 0 && n < int32(rule.MinCount) {
			want = append(want, small)
		} else {
			want = append(want, strconv.Itoa(int(n)))
		}
	}
	if !slices.Equal(ns, want) {
		t.Errorf("%s: model n shown %v, want %v", name, ns, want)
	}
	return len(unknown), len(cells) - len(unknown)
}

// disclosureTestDetermined returns the unknown cells whose value follows
// from the relations once the published cells are substituted: those whose
// unit vector is in the row space of the relations' matrix restricted to
// the unknowns, by exact Gauss–Jordan elimination over the rationals.
func disclosureTestDetermined(cells []disclosureTestCell, rels [][]int, unknown []int) []int {
	col := map[int]int{}
	for c, i := range unknown {
		col[i] = c
	}
	n := len(unknown)
	var m [][]*big.Rat
	for _, rel := range rels {
		r := make([]*big.Rat, n)
		for c := range r {
			r[c] = new(big.Rat)
		}
		any := false
		for k, i := range rel {
			c, ok := col[i]
			if !ok {
				continue
			}
			any = true
			if k == 0 {
				r[c].Add(r[c], big.NewRat(1, 1))
			} else {
				r[c].Sub(r[c], big.NewRat(1, 1))
			}
		}
		if any {
			m = append(m, r)
		}
	}
	pivotRow := map[int]int{}
	rank := 0
	for c := 0; c < n && rank < len(m); c++ {
		p := -1
		for r := rank; r < len(m); r++ {
			if m[r][c].Sign() != 0 {
				p = r
				break
			}
		}
		if p < 0 {
			continue
		}
		m[rank], m[p] = m[p], m[rank]
		inv := new(big.Rat).Inv(m[rank][c])
		for k := range m[rank] {
			m[rank][k].Mul(m[rank][k], inv)
		}
		for r := range m {
			if r == rank || m[r][c].Sign() == 0 {
				continue
			}
			f := new(big.Rat).Set(m[r][c])
			for k := range m[r] {
				m[r][k].Sub(m[r][k], new(big.Rat).Mul(f, m[rank][k]))
			}
		}
		pivotRow[c] = rank
		rank++
	}
	var out []int
	for c, i := range unknown {
		r, ok := pivotRow[c]
		if !ok {
			continue
		}
		alone := true
		for k := range m[r] {
			if k != c && m[r][k].Sign() != 0 {
				alone = false
			}
		}
		if alone {
			out = append(out, i)
		}
	}
	return out
}

// TestDisclosureTestSolver: the test's solver finds what subtraction gives
// (4 = 81 − 77) and passes what it does not (two cells of one row).
func TestDisclosureTestSolver(t *testing.T) {
	cells := []disclosureTestCell{{where: "recruited", text: "81"}, {where: "baseline", text: "77"}, {where: "not", text: "<5"}}
	if got := disclosureTestDetermined(cells, [][]int{{0, 1, 2}}, []int{2}); !slices.Equal(got, []int{2}) {
		t.Errorf("81 = 77 + x: determined %v, want x", got)
	}
	if got := disclosureTestDetermined(cells, [][]int{{0, 1, 2}}, []int{1, 2}); len(got) != 0 {
		t.Errorf("81 = y + x: determined %v, want none", got)
	}
	// a + b = 10, b + c = 7, a + c = 9 published: three independent
	// equations in three unknowns, all determined; without the third, none.
	cells = append(cells, disclosureTestCell{where: "ten", text: "10"}, disclosureTestCell{where: "seven", text: "7"}, disclosureTestCell{where: "nine", text: "9"})
	if got := disclosureTestDetermined(cells, [][]int{{3, 0, 1}, {4, 1, 2}}, []int{0, 1, 2}); len(got) != 0 {
		t.Errorf("three unknowns, two relations: determined %v", got)
	}
	rels := [][]int{{3, 0, 1}, {4, 1, 2}, {5, 0, 2}}
	if got := disclosureTestDetermined(cells, rels, []int{0, 1, 2}); len(got) != 3 {
		t.Errorf("three unknowns, three independent relations: determined %v", got)
	}
}

// TestStudyReportDisclosureBundled is issue 12's case, the bundled study
// (testdata/synth: seed 1, 159 participants): the intervention arm's 81
// recruited, 4 not interviewed at baseline and 77 interviewed. Table 1's
// header keeps n = 77 (its percentages need it), so the flow hides the 81
// instead, and the 4 cannot be had by subtraction anywhere on the page.
func TestStudyReportDisclosureBundled(t *testing.T) {
	s := synthStudy(t)
	parts := disclosureTestParticipants(t, s, synth.SynthOptions{Seed: 1}, "", 0)
	page := disclosureTestRender(t, s, s.Disclosure, parts)
	disclosureTestCheck(t, "bundled", s, s.Disclosure, parts, page)
	for _, want := range []string{
		`Recruited <b>[c]</b>`, `Not interviewed at baseline <b>&lt;5</b>`, `Interviewed at baseline <b>77</b>`, `Followed up <b>60</b>`,
		`<th class="num">intervention (n = 77)</th><th class="num">control (n = 76)</th>`,
		`<td>All trusts</td><td>both arms</td><td class="num">159</td><td class="num">6</td><td class="num">153</td><td class="num">125</td><td class="num">7</td><td class="num">21</td>`,
		// 159 analysed is a model result: shown.
		`<td class="num" data-label="n">159</td>`,
		// Table 1's total column: n = 153 = 77 + 76.
		`<th class="num">Total (n = 153)</th>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the bundled study's report lacks %s", want)
		}
	}
}

// TestStudyReportBalanceHidesRareLevels: the balance table's standardised
// differences of a level held by fewer than min_count people of an arm (in
// the bundled study: gender not_stated, 3 and 4 of the complete cases)
// would give the counts away with the arm sizes the flow prints; they are
// shown as suppressed, and common levels and the baseline score are shown.
func TestStudyReportBalanceHidesRareLevels(t *testing.T) {
	env := ingestTestEnv(t)
	wh := filepath.Join(t.TempDir(), "w")
	if _, err := RunStages(context.Background(), env, wh, "run", RunOptions{Create: true}, RunAll(filepath.Join("..", "testdata", "synth"))...); err != nil {
		t.Fatal(err)
	}
	w, _ := warehouse.OpenWarehouse(wh, false)
	gen, _ := w.CurrentDir()
	pg, err := study.Load(context.Background(), env, gen)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range pg.Balance {
		got[b.Covariate] = b.SMDU
	}
	for cov, hidden := range map[string]bool{
		"gender=not_stated": true, "gender=non_binary": true, "diagnosis_group=not_stated": true,
		"gender=female": false, "living_alone": false, "y_baseline": false,
	} {
		v, ok := got[cov]
		if !ok {
			t.Errorf("no balance row for %s", cov)
			continue
		}
		if (v == pg.Secondary) != hidden {
			t.Errorf("%s: SMD shown as %q, hidden %v wanted", cov, v, hidden)
		}
	}
}
