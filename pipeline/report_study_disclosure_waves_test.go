package pipeline

import (
	"bytes"
	"fmt"
	"html"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/pipeline/report/study"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// TestStudyReportDisclosureWaves is TestStudyReportDisclosureSynthetic's
// proof for a three-wave study (baseline, month6, month12; month12
// primary): random flow tables with many small counts, and Table 1 counts
// to match, are rendered; the test parses every count of the flow diagram,
// the flow table (a column per wave) and Table 1 from the HTML, writes
// down the relations a reader knows (recruited = baseline + not
// interviewed; baseline = month12 + withdrew + lost; month6 tied only by
// the trusts adding up to the arm and the arms to both; the diagram's
// boxes are the arm totals; Table 1's levels add up to its n, which is
// the arm at baseline), and proves by exact elimination that no
// suppressed count can be worked out from the published ones. Every
// published count must be the true one, and the small symbol marks exactly
// the counts from 1 to min − 1.
func TestStudyReportDisclosureWaves(t *testing.T) {
	s := synthStudy(t)
	st := *s
	st.Waves = []string{"baseline", "month6", "month12"}
	rules := []schemas.Disclosure{{MinCount: 5}, {MinCount: 8, Symbol: "*"}, {MinCount: 10}}
	rng := rand.New(rand.NewPCG(13, 2026))
	var hidden, shown int
	for k := range 90 {
		st.Disclosure = rules[k%len(rules)]
		most := []int{6, 12, 40}[k%3]
		flow := map[study.FlowKey]study.FlowCounts{}
		for _, team := range st.Teams {
			first := rng.IntN(most + 1)
			wd := rng.IntN(first + 1)
			lost := rng.IntN(first - wd + 1)
			flow[study.FlowKey{Trust: team.Trust, Arm: team.Arm}] = study.FlowCounts{
				"recruited": int64(first + rng.IntN(most/2+1)), "baseline": int64(first), "withdrawn": int64(wd), "lost": int64(lost),
				"month12": int64(first - wd - lost), "month6": int64(rng.IntN(first - wd + 1)),
			}
		}
		// Table 1: each participant at baseline gets random levels.
		fields := st.DemographicFields()
		base := study.NewBaselineCounts(&st, st.Arms[:2])
		truth := map[string]int64{} // "field|level|arm"
		for _, team := range st.Teams {
			for range flow[study.FlowKey{Trust: team.Trust, Arm: team.Arm}]["baseline"] {
				values := make([]string, len(fields))
				for f, field := range fields {
					level := "not recorded"
					switch r := rng.IntN(10); {
					case r == 0: // blank
					case field.Binary:
						values[f] = strconv.Itoa(r % 2)
						level = map[int]string{0: "no", 1: "yes"}[r%2]
					default:
						values[f] = field.Codes[r%len(field.Codes)]
						level = values[f]
					}
					truth[field.Name+"|"+level+"|"+team.Arm]++
				}
				base.Add(team.Arm, values)
			}
		}
		env := warehouse.Env{Study: &st, Version: "test"}
		pg := study.NewPage(env)
		if err := pg.LayoutCounts(&st, flow, base); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := study.Render(&buf, pg); err != nil {
			t.Fatal(err)
		}
		h, n := disclosureWavesCheck(t, fmt.Sprintf("study %d (min %d)", k, st.Disclosure.MinCount), &st, flow, truth, buf.String())
		hidden += h
		shown += n
	}
	t.Logf("%d counts published, %d suppressed, none determined", shown, hidden)
	if hidden < 500 {
		t.Errorf("only %d suppressed counts: the test proves little", hidden)
	}
}

var (
	disclosureWavesRow = regexp.MustCompile(`<tr(?: class="total")?><td>([^<]*)</td><td>([^<]*)</td>((?:<td class="num">[^<]*</td>){7})</tr>`)
	disclosureWavesArm = regexp.MustCompile(`(?s)<div class="arm">\s*<h3>([^<]*)</h3>(.*?)\n</div>\n`)
	disclosureWavesBox = regexp.MustCompile(`<div class="(?:box|side)[^"]*">([^<]*) <b>([^<]*)</b>`)
)

// disclosureWavesCheck parses a three-wave page, checks every count and
// proves the suppressed ones undetermined; it returns how many counts were
// suppressed and how many shown.
func disclosureWavesCheck(t *testing.T, name string, s *schemas.Study, flow map[study.FlowKey]study.FlowCounts, truth map[string]int64, page string) (int, int) {
	t.Helper()
	rule := s.Disclosure
	small, secondary := "<"+strconv.Itoa(rule.MinCount), "[c]"
	if rule.Symbol != "" {
		small, secondary = rule.Symbol, rule.Symbol
	}
	arms := s.Arms[:2]
	stages := []string{"recruited", "not_baseline", "baseline", "month6", "month12", "withdrawn", "lost"}
	value := func(c study.FlowCounts, st string) int64 {
		if st == "not_baseline" {
			return c["recruited"] - c["baseline"]
		}
		return c[st]
	}
	armTotal := map[string]study.FlowCounts{"*": {}}
	for k, c := range flow {
		if armTotal[k.Arm] == nil {
			armTotal[k.Arm] = study.FlowCounts{}
		}
		for st, v := range c {
			armTotal[k.Arm][st] += v
			armTotal["*"][st] += v
		}
	}
	var cells []disclosureTestCell
	add := func(where, text string, v int64) int {
		cells = append(cells, disclosureTestCell{where: where, text: html.UnescapeString(text), value: v})
		return len(cells) - 1
	}
	var rels [][]int
	section := func(id string) string {
		start := strings.Index(page, `<section id="`+id+`">`)
		if start < 0 {
			t.Fatalf("%s: no section %s", name, id)
		}
		return page[start : start+strings.Index(page[start:], "</section>")]
	}

	flowHTML := section("flow")
	rows := disclosureWavesRow.FindAllStringSubmatch(flowHTML, -1)
	if want := len(flow) + len(arms) + 1; len(rows) != want {
		t.Fatalf("%s: %d flow rows of 7 counts, want %d", name, len(rows), want)
	}
	row := map[[2]string][]int{}
	for _, m := range rows {
		trust, arm := html.UnescapeString(m[1]), html.UnescapeString(m[2])
		var c study.FlowCounts
		switch {
		case trust == "All trusts" && arm == "both arms":
			c = armTotal["*"]
		case trust == "All trusts":
			c = armTotal[arm]
		default:
			c = flow[study.FlowKey{Trust: trust, Arm: arm}]
		}
		nums := disclosureTestNum.FindAllStringSubmatch(m[3], -1)
		ids := make([]int, len(stages))
		for i, st := range stages {
			ids[i] = add("flow "+trust+" "+arm+" "+st, nums[i][1], value(c, st))
		}
		row[[2]string{trust, arm}] = ids
		rels = append(rels, []int{ids[0], ids[2], ids[1]}, []int{ids[2], ids[4], ids[5], ids[6]})
	}
	for i := range stages {
		var armCells []int
		for _, arm := range arms {
			sum := []int{row[[2]string{"All trusts", arm}][i]}
			for _, tr := range s.TrustCodes() {
				if ids, ok := row[[2]string{tr, arm}]; ok {
					sum = append(sum, ids[i])
				}
			}
			rels = append(rels, sum)
			armCells = append(armCells, sum[0])
		}
		rels = append(rels, append([]int{row[[2]string{"All trusts", "both arms"}][i]}, armCells...))
	}
	boxStage := map[string]int{"Recruited": 0, "Not interviewed at baseline": 1, "Interviewed at baseline": 2, "Interviewed at month6": 3,
		"Interviewed at month12": 4, "Withdrew": 5, "Lost to follow-up": 6}
	diagrams := disclosureWavesArm.FindAllStringSubmatch(flowHTML, -1)
	if len(diagrams) != len(arms) {
		t.Fatalf("%s: %d flow diagrams, want %d", name, len(diagrams), len(arms))
	}
	for _, d := range diagrams {
		arm := html.UnescapeString(d[1])
		boxes := disclosureWavesBox.FindAllStringSubmatch(d[2], -1)
		if len(boxes) != len(boxStage) {
			t.Fatalf("%s: %s's diagram has %d boxes, want %d", name, arm, len(boxes), len(boxStage))
		}
		for _, b := range boxes {
			i, ok := boxStage[b[1]]
			if !ok {
				t.Fatalf("%s: unknown box %q", name, b[1])
			}
			rels = append(rels, []int{row[[2]string{"All trusts", arm}][i], add("box "+arm+" "+b[1], b[2], value(armTotal[arm], stages[i]))})
		}
	}

	baseHTML := section("baseline")
	heads := disclosureTestHead.FindAllStringSubmatch(baseHTML, -1)
	if len(heads) != len(arms)+1 {
		t.Fatalf("%s: baseline header %v", name, heads)
	}
	nCell := map[string]int{}
	var allBase int64
	for _, arm := range arms {
		allBase += armTotal[arm]["baseline"]
	}
	nTotal := add("baseline n Total", heads[len(arms)][2], allBase)
	rels = append(rels, []int{nTotal, row[[2]string{"All trusts", "both arms"}][2]})
	for _, h := range heads[:len(arms)] {
		arm := html.UnescapeString(h[1])
		nCell[arm] = add("baseline n "+arm, h[2], armTotal[arm]["baseline"])
		rels = append(rels, []int{nCell[arm], row[[2]string{"All trusts", arm}][2]})
	}
	vars := disclosureTestVar.FindAllStringSubmatchIndex(baseHTML, -1)
	if len(vars) != len(s.DemographicFields()) {
		t.Fatalf("%s: %d baseline variables, want %d", name, len(vars), len(s.DemographicFields()))
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
			var both int64
			for _, arm := range arms {
				both += truth[variable+"|"+lv+"|"+arm]
			}
			totalText := html.UnescapeString(nums[len(arms)][1])
			if pm := disclosureTestPct.FindStringSubmatch(totalText); pm != nil {
				totalText = pm[1]
			}
			levelTotal := add("baseline "+variable+" "+lv+" total", totalText, both)
			sums[len(arms)] = append(sums[len(arms)], levelTotal)
			armCells := []int{levelTotal}
			for a, arm := range arms {
				text := html.UnescapeString(nums[a][1])
				if pm := disclosureTestPct.FindStringSubmatch(text); pm != nil {
					text = pm[1]
				}
				sums[a] = append(sums[a], add("baseline "+variable+" "+lv+" "+arm, text, truth[variable+"|"+lv+"|"+arm]))
				armCells = append(armCells, sums[a][len(sums[a])-1])
			}
			rels = append(rels, armCells)
		}
		for a := range sums {
			var total int64
			for _, c := range sums[a][1:] {
				total += cells[c].value
			}
			if total != cells[sums[a][0]].value {
				t.Errorf("%s: %s's levels add up to %d in %s, not n = %d", name, variable, total, arms[a], cells[sums[a][0]].value)
			}
		}
		rels = append(rels, sums...)
	}

	var unknown []int
	for i, c := range cells {
		isSmall := c.value > 0 && c.value < int64(rule.MinCount)
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
		t.Errorf("%s: %s (%d, shown as %q) can be worked out from the published counts", name, cells[w].where, cells[w].value, cells[w].text)
	}
	return len(unknown), len(cells) - len(unknown)
}
