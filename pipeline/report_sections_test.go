package pipeline

import (
	"context"
	"encoding/csv"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/pipeline/report/study"
	"github.com/connectingpeople/cpi/pipeline/synth"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// TestStudyReportSectionsBundled runs the bundled study once and checks
// the study report's results sections (issue 17) and the service_use table
// (issue 16) against the tables and an independent recomputation.
func TestStudyReportSectionsBundled(t *testing.T) {
	env := compareTestEnv(t)
	_, gen := runBundled(t, env)
	s := env.Study
	out := filepath.Join(t.TempDir(), "tables")
	if err := study.WriteTablesOf(context.Background(), env, gen, out); err != nil {
		t.Fatal(err)
	}
	readCSV := func(name string) [][]string {
		t.Helper()
		f, err := os.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r := csv.NewReader(f)
		r.FieldsPerRecord = -1
		rows, err := r.ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return rows
	}
	page := reportStudyTestRender(t, env, gen)
	onPage := func(name, cell string) {
		t.Helper()
		if !strings.Contains(page, ">"+html.EscapeString(cell)+"<") {
			t.Errorf("%s: %q is not a cell of the page", name, cell)
		}
	}
	small := s.Disclosure.SmallSymbol()
	secondary := s.Disclosure.SecondarySymbol()

	// service_use equals a recomputation from the generator's own answers
	// (not the responses table) over the interviews the warehouse
	// accepted (the csri.cost rows of scores), less the withdrawn.
	t.Run("service_use", func(t *testing.T) {
		type key struct{ id, wave string }
		answers := map[key]map[string]int{} // blank answers left out
		err := synth.Synthesize(context.Background(), s, synth.SynthOptions{Seed: 1}, func(trust string, r *synth.SynthInterview) error {
			if !r.Interviewed() {
				return nil
			}
			m := map[string]int{}
			for i, name := range r.ItemNames {
				if _, ok := econTestUnitCosts[name]; ok && r.Items[i].Valid {
					m[name] = int(r.Items[i].Value)
				}
			}
			answers[key{trust + "-" + r.ParticipantID, r.Wave}] = m
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		type part struct {
			ID        string `col:"study_id"`
			Withdrawn bool   `col:"withdrawn"`
		}
		parts, err := warehouse.ReadRecords[part](context.Background(), gen, "participants")
		if err != nil {
			t.Fatal(err)
		}
		withdrawn := map[string]bool{}
		for _, p := range parts {
			withdrawn[p.ID] = p.Withdrawn
		}
		type cell struct{ wave, arm, item string }
		units := map[cell][]float64{}
		for _, r := range compareTestReadTable(t, gen, "scores") {
			if r.str["instrument"] != "csri" || r.str["scale"] != "cost" || withdrawn[r.str["study_id"]] {
				continue
			}
			a, ok := answers[key{r.str["study_id"], r.str["wave"]}]
			if !ok {
				t.Fatalf("an accepted interview the generator did not make")
			}
			for item, v := range a {
				c := cell{r.str["wave"], r.str["arm"], item}
				units[c] = append(units[c], float64(v))
			}
		}
		meanSD := func(x []float64, f float64) (float64, float64) {
			var m float64
			for _, v := range x {
				m += v * f
			}
			m /= float64(len(x))
			var ss float64
			for _, v := range x {
				ss += (v*f - m) * (v*f - m)
			}
			return m, math.Sqrt(ss / float64(len(x)-1))
		}
		rows := compareTestReadTable(t, gen, "service_use")
		if len(rows) != len(s.Waves)*2*len(econTestUnitCosts) {
			t.Fatalf("%d service_use rows, want waves × arms × services = %d", len(rows), len(s.Waves)*2*len(econTestUnitCosts))
		}
		var answered int
		for _, r := range rows {
			c := cell{r.str["wave"], r.str["arm"], r.str["service"]}
			x := units[c]
			using := 0
			for _, v := range x {
				if v > 0 {
					using++
				}
			}
			answered += len(x)
			mu, su := meanSD(x, 1)
			mc, sc := meanSD(x, econTestUnitCosts[c.item])
			if int(r.num["n"]) != len(x) || int(r.num["n_using"]) != using || r.num["unit_cost"] != econTestUnitCosts[c.item] {
				t.Errorf("%v: n %v, using %v, unit cost %v; want %d, %d, %v", c, r.num["n"], r.num["n_using"], r.num["unit_cost"], len(x), using, econTestUnitCosts[c.item])
			}
			for _, p := range [][3]any{{"mean_units", r.num["mean_units"], mu}, {"sd_units", r.num["sd_units"], su}, {"mean_cost", r.num["mean_cost"], mc}, {"sd_cost", r.num["sd_cost"], sc}} {
				got, want := p[1].(float64), p[2].(float64)
				if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
					t.Errorf("%v %s: %v, want %v", c, p[0], got, want)
				}
			}
		}
		if answered == 0 {
			t.Fatal("no service answered")
		}
	})

	t.Run("reliability", func(t *testing.T) {
		want := map[string][]string{}
		for _, r := range compareTestReadTable(t, gen, "reliability") {
			if r.str["trust"] != "ALL" {
				continue
			}
			sc := r.str["instrument"] + "." + r.str["scale"]
			want[sc] = append(want[sc], fmt.Sprintf("%.2f (%.2f to %.2f); n %d", r.num["alpha"], r.num["alpha_ci_low"], r.num["alpha_ci_high"], int(r.num["n"])))
		}
		rows := readCSV("reliability.csv")
		if len(rows) != len(want)+1 || len(want) == 0 {
			t.Fatalf("reliability.csv has %d rows, want a header and %d scales", len(rows), len(want))
		}
		for _, r := range rows[1:] {
			if !slices.Equal(r[1:], want[r[0]]) {
				t.Errorf("reliability of %s shown %q, want %q", r[0], r[1:], want[r[0]])
			}
			for _, c := range r[1:] {
				onPage("reliability", c)
			}
		}
	})

	t.Run("itt", func(t *testing.T) {
		type ow struct{ o, w string }
		type tip struct{ delta, sd, lo, hi float64 }
		tips := map[ow][]tip{}
		for _, r := range compareTestReadTable(t, gen, "tipping_point") {
			k := ow{r.str["outcome"], r.str["wave"]}
			tips[k] = append(tips[k], tip{r.num["delta"], r.num["delta_sd"], r.num["ci_low"], r.num["ci_high"]})
		}
		dec := func(o string) int {
			if strings.HasSuffix(o, ".index") || strings.HasSuffix(o, ".qaly") {
				return 3
			}
			return 2
		}
		ci := func(o string, e, lo, hi float64) string {
			d := dec(o)
			return strconv.FormatFloat(e, 'f', d, 64) + " (" + strconv.FormatFloat(lo, 'f', d, 64) + " to " + strconv.FormatFloat(hi, 'f', d, 64) + ")"
		}
		want := map[string][]string{}
		cc := map[string]string{}
		for _, r := range compareTestReadTable(t, gen, "effects") {
			o := r.str["outcome"]
			if r.str["analysis"] == "primary" && r.str["method"] == "cr2" && r.str["term"] == "arm_intervention" {
				cc[o] = ci(o, r.num["estimate"], r.num["ci_low"], r.num["ci_high"])
			}
			if r.str["analysis"] != "itt_mi" || r.str["term"] != "arm_intervention" {
				continue
			}
			// The tipping δ, worked out here: includes 0 at δ = 0? then
			// the smallest |δ| (negative first) that excludes it.
			ts := tips[ow{o, r.str["wave"]}]
			slices.SortFunc(ts, func(a, b tip) int {
				if x, y := math.Abs(a.sd), math.Abs(b.sd); x != y {
					return map[bool]int{true: -1, false: 1}[x < y]
				}
				return map[bool]int{true: -1, false: 1}[a.sd < b.sd]
			})
			incl := func(x tip) bool { return x.lo <= 0 && x.hi >= 0 }
			at0 := incl(ts[slices.IndexFunc(ts, func(x tip) bool { return x.sd == 0 })])
			tipText := map[bool]string{true: "includes 0 at every δ", false: "excludes 0 at every δ"}[at0]
			for _, x := range ts {
				if incl(x) != at0 {
					tipText = map[bool]string{true: "excludes", false: "includes"}[at0] + " 0 from δ = " + strconv.FormatFloat(x.delta, 'f', dec(o), 64) + " (" + strconv.FormatFloat(x.sd, 'f', 1, 64) + " SD)"
					break
				}
			}
			want[o] = []string{ci(o, r.num["estimate"], r.num["ci_low"], r.num["ci_high"]), strconv.FormatFloat(r.num["fmi"], 'f', 2, 64), strconv.Itoa(int(r.num["n_obs"])), tipText}
		}
		rows := readCSV("itt.csv")
		if len(rows) != len(s.Analysis.Outcomes)+1 {
			t.Fatalf("itt.csv has %d rows, want a header and one per outcome (%d)", len(rows), len(s.Analysis.Outcomes))
		}
		for _, r := range rows[1:] {
			got := []string{r[3], r[5], r[6], r[7]}
			if !slices.Equal(got, want[r[0]]) || r[2] != cc[r[0]] {
				t.Errorf("itt of %s shown %q beside %q, want %q beside %q", r[0], got, r[2], want[r[0]], cc[r[0]])
			}
			onPage("itt", r[3])
			onPage("itt", r[7])
		}
		// The bundled study's QALYs: the one outcome whose ITT interval
		// excludes 0 at some δ of the grid.
		if !strings.HasPrefix(want["eq5d5l.qaly"][3], "excludes 0 from") {
			t.Errorf("eq5d5l.qaly tipping %q", want["eq5d5l.qaly"][3])
		}
	})

	t.Run("outcome_forest", func(t *testing.T) {
		// Lower is better for loneliness and cost: their sign is reversed.
		reversed := map[string]bool{"ucla3.total": true, "csri.cost": true}
		sd := map[string]float64{}
		sdFU := map[string]float64{}
		for _, r := range compareTestReadTable(t, gen, "descriptives") {
			if r.str["arm"] != "ALL" {
				continue
			}
			switch r.str["wave"] {
			case "baseline":
				sd[r.str["outcome"]] = r.num["sd"]
			case s.PrimaryWave():
				sdFU[r.str["outcome"]] = r.num["sd"]
			}
		}
		want := map[string]string{}
		for _, r := range compareTestReadTable(t, gen, "effects") {
			o := r.str["outcome"]
			if r.str["analysis"] != "primary" || r.str["method"] != "cr2" || r.str["term"] != "arm_intervention" || r.str["wave"] != s.PrimaryWave() {
				continue
			}
			d := sd[o]
			if o == "gas.t" || o == "eq5d5l.qaly" || math.IsNaN(d) {
				d = sdFU[o] // no baseline of its own
			}
			sign := 1.0
			if reversed[o] {
				sign = -1
			}
			want[o] = strconv.FormatFloat(sign*r.num["estimate"]/d, 'f', 2, 64)
		}
		rows := readCSV("outcome_forest.csv")
		if len(rows) != len(s.Analysis.Outcomes)+1 {
			t.Fatalf("outcome_forest.csv has %d rows", len(rows))
		}
		var weight float64
		for _, r := range rows[1:] {
			if r[3] != want[r[0]] {
				t.Errorf("%s: standardised %q, want %q", r[0], r[3], want[r[0]])
			}
			if strings.Contains(r[1], "reversed") != reversed[r[0]] {
				t.Errorf("%s: direction %q", r[0], r[1])
			}
			w, err := strconv.ParseFloat(strings.TrimSuffix(r[5], "%"), 64)
			if err != nil {
				t.Fatalf("%s: weight %q", r[0], r[5])
			}
			weight += w
		}
		if math.Abs(weight-100) > 0.06 {
			t.Errorf("weights add up to %v%%", weight)
		}
		sec := reportStudyTestSection(t, page, "outcome-forest")
		for _, want := range []string{"favours control", "favours intervention", "ucla3.total †", "csri.cost †", "Adjusted difference ÷ SD"} {
			if !strings.Contains(sec, html.EscapeString(want)) {
				t.Errorf("the forest across outcomes lacks %q", want)
			}
		}
	})

	t.Run("missing", func(t *testing.T) {
		type key struct{ o, w, a string }
		miss := map[key]int{}
		for _, r := range compareTestReadTable(t, gen, "missing_data") {
			miss[key{r.str["outcome"], r.str["wave"], r.str["arm"]}] = int(r.num["n_missing"])
		}
		rows := readCSV("missing.csv")
		head := rows[0]
		shown, hidden := 0, 0
		for _, r := range rows[1:] {
			for i, c := range r[1:] {
				arm, wave, _ := strings.Cut(head[i+1], ", ")
				n := miss[key{r[0], wave, arm}]
				switch {
				case c == small:
					hidden++
					if n < 1 || n >= s.Disclosure.MinCount {
						t.Errorf("%s %s: %d shown as %s", r[0], head[i+1], n, c)
					}
				case c == secondary:
					hidden++
				default:
					shown++
					num, _, _ := strings.Cut(c, " ")
					if num != strconv.Itoa(n) || n > 0 && n < s.Disclosure.MinCount {
						t.Errorf("%s %s: shown %q, missing %d", r[0], head[i+1], c, n)
					}
				}
			}
		}
		if shown == 0 || hidden == 0 {
			t.Errorf("missing data: %d shown, %d hidden; the bundled study has both", shown, hidden)
		}
	})

	t.Run("economics", func(t *testing.T) {
		money := func(s string) float64 {
			s = strings.NewReplacer("£", "", ",", "", "−", "-").Replace(s)
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("money %q", s)
			}
			return v
		}
		use := map[[2]string]compareTestRow{}
		for _, r := range compareTestReadTable(t, gen, "service_use") {
			if r.str["wave"] == s.PrimaryWave() {
				use[[2]string{r.str["arm"], r.str["service"]}] = r
			}
		}
		services := map[string]string{}
		for _, u := range s.UnitCosts {
			for _, sv := range u.Services {
				services[sv.Service] = sv.Item
			}
		}
		rows := readCSV("service_use.csv")
		if len(rows) != len(econTestUnitCosts)+1 {
			t.Fatalf("service_use.csv has %d rows", len(rows))
		}
		for _, r := range rows[1:] {
			for ai, arm := range s.Arms[:2] {
				u := use[[2]string{arm, services[r[0]]}]
				n, using, cost := r[1+3*ai], r[2+3*ai], r[3+3*ai]
				if n != strconv.Itoa(int(u.num["n"])) {
					t.Errorf("%s %s: n %q, want %v", r[0], arm, n, u.num["n"])
				}
				if k := int(u.num["n_using"]); k > 0 && k < s.Disclosure.MinCount && using != small {
					t.Errorf("%s %s: %d using shown as %q", r[0], arm, k, using)
				} else if k >= s.Disclosure.MinCount && using != fmt.Sprintf("%d (%.1f%%)", k, 100*float64(k)/u.num["n"]) {
					t.Errorf("%s %s: using %q, want %d of %v", r[0], arm, using, k, u.num["n"])
				}
				mean, _, _ := strings.Cut(cost, " ")
				if money(mean) != math.Round(u.num["mean_cost"]) {
					t.Errorf("%s %s: mean cost %q, want %v", r[0], arm, cost, u.num["mean_cost"])
				}
			}
		}
		// The incremental table against cost_effectiveness.
		ce := map[[2]string]compareTestRow{}
		for _, r := range compareTestReadTable(t, gen, "cost_effectiveness") {
			ce[[2]string{r.str["method"], strconv.FormatFloat(r.num["lambda"], 'f', 0, 64)}] = r
		}
		inc := readCSV("incremental.csv")
		methods := inc[0][1:]
		if !slices.Equal(methods, []string{"cr2", "two_stage_bootstrap"}) {
			t.Fatalf("incremental.csv methods %q", methods)
		}
		checked := 0
		for _, r := range inc[1:] {
			for mi, m := range methods {
				c := r[1+mi]
				switch r[0] {
				case "Incremental cost":
					if money(c) != math.Round(ce[[2]string{m, "0"}].num["inc_cost"]) {
						t.Errorf("%s incremental cost %q", m, c)
					}
				case "INB at £20,000 (95% CI)", "INB at £30,000 (95% CI)":
					row := ce[[2]string{m, map[bool]string{true: "20000", false: "30000"}[strings.Contains(r[0], "20,000")]}]
					est, rest, _ := strings.Cut(c, " (")
					lo, hi, _ := strings.Cut(strings.TrimSuffix(rest, ")"), " to ")
					if money(est) != math.Round(row.num["inb"]) || money(lo) != math.Round(row.num["inb_ci_low"]) || money(hi) != math.Round(row.num["inb_ci_high"]) {
						t.Errorf("%s %s: %q, want %v (%v to %v)", m, r[0], c, row.num["inb"], row.num["inb_ci_low"], row.num["inb_ci_high"])
					}
				case "P(cost-effective) at £20,000":
					if want := strconv.FormatFloat(ce[[2]string{m, "20000"}].num["prob_cost_effective"], 'f', 3, 64); c != want {
						t.Errorf("%s P(CE) at 20,000: %q, want %q", m, c, want)
					}
				default:
					continue
				}
				checked++
				onPage("incremental", c)
			}
		}
		if checked != 4*len(methods) {
			t.Errorf("%d incremental cells checked, want %d", checked, 4*len(methods))
		}
		// CHEERS 2022 items from the study definition.
		cheers := map[string]string{}
		for _, r := range readCSV("cheers.csv")[1:] {
			cheers[r[0]] = r[2]
		}
		for item, want := range map[string]string{"9": "6 months", "10": "3.5% a year", "13": "England", "15": "GBP, price year 2019", "14": "ILLUSTRATIVE"} {
			if !strings.Contains(cheers[item], want) {
				t.Errorf("CHEERS item %s states %q, want %q in it", item, cheers[item], want)
			}
		}
		// The plane has a point per row of ce_bootstrap; the
		// acceptability curve has both methods.
		type bootRow struct {
			Replicate int32 `col:"replicate"`
		}
		boot, err := warehouse.ReadRecords[bootRow](context.Background(), gen, "ce_bootstrap")
		if err != nil {
			t.Fatal(err)
		}
		sec := reportStudyTestSection(t, page, "economics")
		if len(boot) < 1000 || strings.Count(sec, "<circle") != len(boot) || !strings.Contains(sec, fmt.Sprintf("%d bootstrap replicates (ce_bootstrap)", len(boot))) {
			t.Errorf("economics section: the plane has %d points, ce_bootstrap %d rows", strings.Count(sec, "<circle"), len(boot))
		}
		if strings.Count(sec, "<polyline") != 2 {
			t.Errorf("economics section: %d acceptability curves, want 2", strings.Count(sec, "<polyline"))
		}
	})

	// The missing data table is in the page's one disclosure pass: with
	// the flow's arm totals and the outcomes table's n at the follow-up
	// wave, no suppressed count of it, nor the withdrawn, can be worked out
	// (the relations written down here from the tables: interviewed at
	// baseline = followed up + withdrew + lost; = expected + withdrew;
	// expected = observed + missing, observed being the outcomes table's n
	// where the tables agree; followed up = n + people without the
	// outcome).
	t.Run("disclosure", func(t *testing.T) {
		var cells []disclosureTestCell
		var unknown []int
		add := func(where, text string, value int64) int {
			cells = append(cells, disclosureTestCell{where: where, text: text, value: value})
			i := len(cells) - 1
			if text == small || text == secondary || text == "" {
				unknown = append(unknown, i)
			} else if text != strconv.FormatInt(value, 10) {
				t.Errorf("%s is %d, shown as %q", where, value, text)
			}
			return i
		}
		type flowRow struct {
			Arm   string `col:"arm"`
			Stage string `col:"stage"`
			N     int64  `col:"n"`
		}
		flows, err := warehouse.ReadRecords[flowRow](context.Background(), gen, "flow")
		if err != nil {
			t.Fatal(err)
		}
		flowN := map[[2]string]int64{}
		for _, r := range flows {
			flowN[[2]string{r.Arm, r.Stage}] += r.N
		}
		type key struct{ o, a string }
		descN := map[key]int64{}
		for _, r := range compareTestReadTable(t, gen, "descriptives") {
			if r.str["wave"] == s.PrimaryWave() {
				descN[key{r.str["outcome"], r.str["arm"]}] = int64(r.num["n"])
			}
		}
		type md struct{ exp, obs, miss int64 }
		mdN := map[key]md{}
		for _, r := range compareTestReadTable(t, gen, "missing_data") {
			if r.str["wave"] == s.PrimaryWave() {
				mdN[key{r.str["outcome"], r.str["arm"]}] = md{int64(r.num["n_expected"]), int64(r.num["n_observed"]), int64(r.num["n_missing"])}
			}
		}
		var rels [][]int
		flowRows := readCSV("flow.csv")
		outRows := readCSV("outcomes.csv")
		missRows := readCSV("missing.csv")
		withdrew := map[string]int{}
		for ai, arm := range s.Arms[:2] {
			var fr []string
			for _, r := range flowRows {
				if r[0] == "All trusts" && r[1] == arm {
					fr = r
				}
			}
			if fr == nil {
				t.Fatalf("no flow row of %s", arm)
			}
			base := add(arm+" baseline", fr[4], flowN[[2]string{arm, "baseline"}])
			fu := add(arm+" followed up", fr[5], flowN[[2]string{arm, s.PrimaryWave()}])
			wd := add(arm+" withdrew", fr[6], flowN[[2]string{arm, "withdrawn"}])
			withdrew[arm] = wd
			lost := add(arm+" lost", fr[7], flowN[[2]string{arm, "lost"}])
			rels = append(rels, []int{base, fu, wd, lost})
			var exp int = -1
			for _, r := range missRows[1:] {
				o := r[0]
				m := mdN[key{o, arm}]
				if exp < 0 {
					exp = add(arm+" expected", "", m.exp)
					rels = append(rels, []int{base, exp, wd})
				}
				var n int = -1
				for _, orow := range outRows {
					if orow[0] == o && orow[2] == s.PrimaryWave() {
						n = add(o+" "+arm+" n", orow[3+2*ai], descN[key{o, arm}])
					}
				}
				if n < 0 {
					t.Fatalf("no outcomes row of %s", o)
				}
				rels = append(rels, []int{fu, n, add(o+" "+arm+" followed up without it", "", flowN[[2]string{arm, s.PrimaryWave()}]-descN[key{o, arm}])})
				mc := add(o+" "+arm+" missing", strings.Split(r[1+ai], " ")[0], m.miss)
				obs := n
				if m.obs != descN[key{o, arm}] {
					obs = add(o+" "+arm+" observed", "", m.obs)
				}
				rels = append(rels, []int{exp, obs, mc})
			}
		}
		for _, w := range disclosureTestDetermined(cells, rels, unknown) {
			c := cells[w]
			if c.text == "" && (c.value == 0 || c.value >= int64(s.Disclosure.MinCount)) {
				continue // not printed, and not small
			}
			t.Errorf("%s (%d, shown as %q) can be worked out from the published counts", c.where, c.value, c.text)
		}
		smallWithdrawn := 0
		for _, wd := range withdrew {
			if v := cells[wd].value; v >= 1 && v < int64(s.Disclosure.MinCount) {
				smallWithdrawn++
			}
		}
		if smallWithdrawn == 0 {
			t.Error("no arm of the bundled study has a small count of withdrawn: the test protects nothing")
		}
	})
}
