package report

import (
	"context"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/connectingpeople/cpi/pipeline/compare"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
	"github.com/connectingpeople/cpi/stats"
)

// StudyReport writes the study report (DESIGN §10) of the generation at
// genDir to out: one self-contained HTML page with
//
//   - the participant flow (recruited → baseline → follow-up, withdrawn and
//     lost) as a diagram by arm and a table by trust and arm, from flow;
//   - baseline characteristics by arm (participants interviewed at
//     baseline: counts and percentages of each level), from participants;
//   - the outcomes table: every effects row (analysis, method, estimate,
//     95% CI, p, df, n, teams, effect size, note);
//   - a forest plot of the primary outcome by trust (y_fu ~ arm + y_baseline
//     fitted within each trust by OLS with classical standard errors) and
//     pooled (the primary CR2 estimate), as inline SVG;
//   - the balance table of the primary outcome's weighted analysis;
//   - fidelity by team: band and percentage per rating period.
//
// Disclosure control (DESIGN §10) is one pass over every count of people
// the page prints (layoutCounts, Disclosure): the flow's cells, rows
// (recruited = baseline + not interviewed; baseline = followed up + withdrew
// + lost) and columns (trusts add up to the arm, arms to the study), the
// baseline table's levels adding up to each arm's size, and that size being
// the flow's arm at baseline. A count from 1 to MinCount − 1 is shown with
// the small symbol ("<5"), and more counts with the secondary one ("[c]")
// until none hidden can be worked out from those shown; a percentage only
// beside a shown count of a shown arm size. A model's number analysed is a
// model result, not a frequency table: shown when at least MinCount
// (ShowModelN). Effects notes lose their counts of people dropped (reasons
// kept), and arm means of the balance covariates are left out: a
// proportion times the arm's size would give a small count away.
//
// The page is deterministic (no clock; the same tables give the same
// bytes) and everything from the tables is escaped. A table not written
// yet gives a section saying so. StudyReport fails on unreadable tables.
func StudyReport(ctx context.Context, env warehouse.Env, genDir string, out io.Writer) error {
	task := env.Progress.Start("report study", "reports", 1)
	defer task.Done()
	page, err := LoadStudyReport(ctx, env, genDir)
	if err != nil {
		return fmt.Errorf("study report: %w", err)
	}
	if err := StudyTemplate.Execute(out, page); err != nil {
		return fmt.Errorf("study report: %w", err)
	}
	task.Add(1)
	return nil
}

// WriteStudyReport writes the study report of the generation being
// written to reports/study-report.html (0640, atomically), for cpi run. It
// reads what compare wrote into tx, so it runs after it.
func WriteStudyReport(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
	return warehouse.WriteFileAtomic(tx.Path("reports", "study-report.html"), warehouse.FileMode, func(w io.Writer) error {
		return StudyReport(ctx, env, tx.Dir, w)
	})
}

// WriteStudyReportFile writes the study report of the warehouse's committed
// generation to path (0640, atomically): cpi report study.
func WriteStudyReportFile(ctx context.Context, env warehouse.Env, dir, path string) error {
	w, err := warehouse.OpenWarehouse(dir, false)
	if err != nil {
		return err
	}
	gen, err := w.CurrentDir()
	if err != nil {
		return err
	}
	if gen == "" {
		return fmt.Errorf("warehouse %s has no committed generation yet (run cpi ingest or cpi run first)", dir)
	}
	return warehouse.WriteFileAtomic(path, warehouse.FileMode, func(out io.Writer) error {
		return StudyReport(ctx, env, gen, out)
	})
}

// studyPage is what the study report template is given.
type studyPage struct {
	Study, Version, Hash string
	MinCount, MaxSmall   int
	Small, Secondary     string // the disclosure symbols
	Arms                 []string

	HasFlow  bool
	FlowArms []flowBox
	FlowRows []flowLine

	BaselineN    []string
	BaselineCols int
	BaselineVars []baselineVar

	HasEffects bool
	Outcomes   []outcomeBlock

	Primary    string
	Forest     template.HTML
	ForestRows []forestLine

	HasBalance bool
	Balance    []balanceLine
	BalanceESS string

	Periods  []string
	Fidelity []fidelityLine

	// disclosure is the page's disclosure control, kept for tests (its
	// witnesses prove each suppressed count undetermined).
	disclosure *Disclosure
}

// flowBox is one arm of the flow diagram; counts are already suppressed.
type flowBox struct {
	Arm                                                         string
	Recruited, NotBaseline, Baseline, Followup, Withdrawn, Lost string
}

// flowLine is a row of the flow table.
type flowLine struct {
	Trust, Arm string
	Total      bool
	Cells      [6]string // recruited, not at baseline, baseline, followup, withdrawn, lost
}

type baselineVar struct {
	Name   string
	Levels []baselineLevel
}

type baselineLevel struct {
	Level string
	Cells []string // per arm: "12 (15.0%)" or "<5"
}

type outcomeBlock struct {
	Outcome, Title string
	Primary        bool
	Rows           []outcomeLine
	// Empty lists the distinct notes when no analysis of the outcome could
	// be fitted, shown instead of a table of dashes.
	Empty []string
}

type outcomeLine struct {
	Analysis, Method, Term        string
	Estimate, CI, P, DF, N, G, ES string
	Note                          string
}

type forestLine struct {
	Trust, Estimate, CI, Note string
}

type balanceLine struct {
	Covariate, SMDU, SMDW, VR string
	Flag                      bool // |SMD| after weighting > 0.1
}

type fidelityLine struct {
	Team, Trust, Arm string
	Periods          []fidelityCell
}

type fidelityCell struct {
	Band, Pct, Class string
}

// loadStudyReport reads the tables and lays the page out.
func LoadStudyReport(ctx context.Context, env warehouse.Env, genDir string) (*studyPage, error) {
	s := env.Study
	pg := NewStudyPage(env)
	flow, err := compare.ReadFlowTable(ctx, s, genDir)
	if err != nil {
		return nil, err
	}

	outcomes := slices.Clone(s.Analysis.Outcomes)
	if !slices.Contains(outcomes, s.Analysis.PrimaryOutcome) {
		outcomes = append(outcomes, s.Analysis.PrimaryOutcome)
	}
	d, err := compare.ReadCompareData(ctx, env, genDir, outcomes)
	if err != nil {
		return nil, err
	}
	if err := pg.LayoutCounts(s, flow, d); err != nil {
		return nil, err
	}

	effects, err := readEffectsTable(ctx, genDir)
	if err != nil {
		return nil, err
	}
	pg.LayoutOutcomes(s, effects)
	if err := pg.layoutForest(s, d, effects); err != nil {
		return nil, err
	}
	if err := pg.layoutBalance(ctx, s, d, genDir); err != nil {
		return nil, err
	}
	if err := pg.layoutFidelity(ctx, s, genDir); err != nil {
		return nil, err
	}
	return pg, nil
}

// newStudyPage is a page with the study's names and nothing laid out.
func NewStudyPage(env warehouse.Env) *studyPage {
	s := env.Study
	return &studyPage{
		Study: s.Name, Version: env.Version, Hash: s.Hash[:min(12, len(s.Hash))], MinCount: s.Disclosure.MinCount, MaxSmall: s.Disclosure.MinCount - 1,
		Small: s.Disclosure.SmallSymbol(), Secondary: s.Disclosure.SecondarySymbol(), Arms: s.Arms[:min(2, len(s.Arms))],
		Primary: s.Analysis.PrimaryOutcome, Periods: s.Periods,
	}
}

// flowKeysOrdered lists trust × arm keys: trusts in study order (then
// others), arms in study order (then others).
func flowKeysOrdered(s *schemas.Study, flow map[compare.FlowKey]compare.FlowCounts) []compare.FlowKey {
	keys := make([]compare.FlowKey, 0, len(flow))
	for k := range flow {
		keys = append(keys, k)
	}
	rank := func(list []string, v string) int {
		if i := slices.Index(list, v); i >= 0 {
			return i
		}
		return len(list)
	}
	trusts := s.TrustCodes()
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if ra, rb := rank(trusts, a.Trust), rank(trusts, b.Trust); ra != rb {
			return ra < rb
		}
		if a.Trust != b.Trust {
			return a.Trust < b.Trust
		}
		if ra, rb := rank(s.Arms, a.Arm), rank(s.Arms, b.Arm); ra != rb {
			return ra < rb
		}
		return a.Arm < b.Arm
	})
	return keys
}

// layoutCounts lays out every count of people the page prints — the flow
// diagram and table, and the baseline table with its arms' sizes — and
// applies disclosure control to all of them at once (one Disclosure, see
// disclosure.go): the flow's rows and columns, each baseline variable's
// levels adding up to its arm's size, and that size being the flow's
// "interviewed at baseline" of the arm, are all sums of the one system.
// A percentage is printed only beside a shown count of a shown arm size
// (with a hidden size, 15 (19.5%) would give 77 away).
func (pg *studyPage) LayoutCounts(s *schemas.Study, flow map[compare.FlowKey]compare.FlowCounts, d *compare.CompareData) error {
	disc := NewDisclosure(s.Disclosure)
	var fill []func()
	fill = append(fill, pg.layoutFlow(s, flow, disc)...)
	fill = append(fill, pg.layoutBaseline(s, d, disc)...)
	if err := disc.Protect(); err != nil {
		return fmt.Errorf("%w (are the flow and participants tables of the same run? run cpi compare)", err)
	}
	for _, f := range fill {
		f()
	}
	pg.disclosure = disc
	return nil
}

// Avoid ranks of the page's counts for secondary suppression: an arm's
// size at baseline is Table 1's denominator, so it is hidden last.
const (
	avoidCell = iota
	avoidArmTotal
	avoidStudyTotal
	avoidArmSize
)

// flowCellName names a flow count in the page's disclosure control; trust
// or arm "*" is the total over them.
func flowCellName(trust, arm, stage string) string {
	return "flow|" + trust + "|" + arm + "|" + stage
}

// flowStagesShown are the flow's six printed stages, in the table's order.
var flowStagesShown = []string{compare.FlowRecruited, "not_baseline", compare.FlowBaseline, compare.FlowFollowup, compare.FlowWithdrawn, compare.FlowLost}

// layoutFlow adds the flow diagram's and table's counts to disc, with their
// sums (recruited = baseline + not interviewed; baseline = followed up +
// withdrew + lost; the trusts add up to the arm, the arms to both), and
// returns what fills the page in once disc is protected.
func (pg *studyPage) layoutFlow(s *schemas.Study, flow map[compare.FlowKey]compare.FlowCounts, disc *Disclosure) []func() {
	if len(flow) == 0 {
		return nil
	}
	pg.HasFlow = true
	keys := flowKeysOrdered(s, flow)
	var arms []string
	for _, k := range keys {
		if !slices.Contains(arms, k.Arm) {
			arms = append(arms, k.Arm)
		}
	}
	sort.SliceStable(arms, func(i, j int) bool {
		ri, rj := slices.Index(s.Arms, arms[i]), slices.Index(s.Arms, arms[j])
		if ri < 0 {
			ri = len(s.Arms)
		}
		if rj < 0 {
			rj = len(s.Arms)
		}
		return ri < rj
	})
	type group struct {
		trust, arm string
		total      bool
		c          compare.FlowCounts
		cells      [6]int
	}
	var groups []*group
	armTotal := map[string]*compare.FlowCounts{}
	var all compare.FlowCounts
	for _, k := range keys {
		c := flow[k]
		groups = append(groups, &group{trust: k.Trust, arm: k.Arm, c: c})
		if armTotal[k.Arm] == nil {
			armTotal[k.Arm] = &compare.FlowCounts{}
		}
		armTotal[k.Arm].Add(c)
		all.Add(c)
	}
	byArm := map[string]*group{}
	for _, a := range arms {
		byArm[a] = &group{trust: "*", arm: a, total: true, c: *armTotal[a]}
		groups = append(groups, byArm[a])
	}
	both := &group{trust: "*", arm: "*", total: true, c: all}
	groups = append(groups, both)
	for _, g := range groups {
		c := g.c
		vals := []int64{c.Recruited, c.NotBaseline(), c.Baseline, c.Followup, c.Withdrawn, c.Lost}
		for st, v := range vals {
			avoid := avoidCell
			switch {
			case g == both:
				avoid = avoidStudyTotal
			case g.total && flowStagesShown[st] == compare.FlowBaseline:
				avoid = avoidArmSize
			case g.total:
				avoid = avoidArmTotal
			}
			g.cells[st] = disc.Count(flowCellName(g.trust, g.arm, flowStagesShown[st]), v, avoid)
		}
		disc.Sum(g.cells[0], g.cells[2], g.cells[1])
		disc.Sum(g.cells[2], g.cells[3], g.cells[4], g.cells[5])
	}
	for st := range flowStagesShown {
		var armCells []int
		for _, a := range arms {
			var parts []int
			for _, g := range groups {
				if !g.total && g.arm == a {
					parts = append(parts, g.cells[st])
				}
			}
			disc.Sum(byArm[a].cells[st], parts...)
			armCells = append(armCells, byArm[a].cells[st])
		}
		disc.Sum(both.cells[st], armCells...)
	}
	return []func(){func() {
		for _, g := range groups {
			var cells [6]string
			for st, c := range g.cells {
				cells[st] = disc.Show(c)
			}
			trust, arm := g.trust, g.arm
			if trust == "*" {
				trust = "All trusts"
			}
			if arm == "*" {
				arm = "both arms"
			}
			pg.FlowRows = append(pg.FlowRows, flowLine{Trust: trust, Arm: arm, Total: g.total, Cells: cells})
		}
		for _, a := range arms {
			c := byArm[a].cells
			pg.FlowArms = append(pg.FlowArms, flowBox{Arm: a, Recruited: disc.Show(c[0]), NotBaseline: disc.Show(c[1]), Baseline: disc.Show(c[2]),
				Followup: disc.Show(c[3]), Withdrawn: disc.Show(c[4]), Lost: disc.Show(c[5])})
		}
	}}
}

// layoutBaseline counts each demographic level by arm among the
// participants interviewed at baseline, adds the counts to disc (each
// variable's levels add up to the arm's size, which is the flow's
// "interviewed at baseline" of the arm: one cell), and returns what fills
// the page in once disc is protected.
func (pg *studyPage) layoutBaseline(s *schemas.Study, d *compare.CompareData, disc *Disclosure) []func() {
	arms := pg.Arms
	n := make([]int64, len(arms))
	type counter map[string][]int64
	vars := []string{"age_band", "gender", "ethnicity", "living_alone", "diagnosis_group"}
	counts := map[string]counter{}
	for _, v := range vars {
		counts[v] = counter{}
	}
	const missing = "not recorded"
	for i := range d.Parts {
		p := &d.Parts[i]
		a := slices.Index(arms, p.Arm)
		if a < 0 || !p.InterviewedBaseline {
			continue
		}
		n[a]++
		for _, v := range vars {
			lv, num := p.Covariate(v)
			if v == "living_alone" {
				switch {
				case math.IsNaN(num):
					lv = missing
				case num == 1:
					lv = "yes"
				default:
					lv = "no"
				}
			} else if lv == "" {
				lv = missing
			}
			if counts[v][lv] == nil {
				counts[v][lv] = make([]int64, len(arms))
			}
			counts[v][lv][a]++
		}
	}
	pg.BaselineCols = len(arms) + 1
	nCell := make([]int, len(arms))
	for a, arm := range arms {
		nCell[a] = disc.Count(flowCellName("*", arm, compare.FlowBaseline), n[a], avoidArmSize)
	}
	type varCells struct {
		name   string
		levels []string
		cells  [][]int // level × arm
		counts [][]int64
	}
	var all []varCells
	for _, v := range vars {
		levels := slices.Clone(s.Demographics[v])
		if v == "living_alone" {
			levels = []string{"yes", "no"}
		}
		var extra []string
		for lv := range counts[v] {
			if !slices.Contains(levels, lv) && lv != missing {
				extra = append(extra, lv)
			}
		}
		sort.Strings(extra)
		levels = append(levels, extra...)
		if _, ok := counts[v][missing]; ok {
			levels = append(levels, missing)
		}
		vc := varCells{name: v, levels: levels}
		for _, lv := range levels {
			row := make([]int64, len(arms))
			if c := counts[v][lv]; c != nil {
				copy(row, c)
			}
			ids := make([]int, len(arms))
			for a, arm := range arms {
				ids[a] = disc.Count("baseline|"+v+"|"+lv+"|"+arm, row[a], avoidCell)
			}
			vc.cells = append(vc.cells, ids)
			vc.counts = append(vc.counts, row)
		}
		for a := range arms {
			parts := make([]int, len(levels))
			for li := range levels {
				parts[li] = vc.cells[li][a]
			}
			disc.Sum(nCell[a], parts...)
		}
		all = append(all, vc)
	}
	return []func(){func() {
		for a := range arms {
			pg.BaselineN = append(pg.BaselineN, disc.Show(nCell[a]))
		}
		for _, vc := range all {
			bv := baselineVar{Name: vc.name}
			for li, lv := range vc.levels {
				cells := make([]string, len(arms))
				for a := range arms {
					id := vc.cells[li][a]
					cells[a] = disc.Show(id)
					if c := vc.counts[li][a]; c > 0 && !disc.Hidden(id) && !disc.Hidden(nCell[a]) {
						cells[a] += fmt.Sprintf(" (%.1f%%)", 100*float64(c)/float64(n[a]))
					}
				}
				bv.Levels = append(bv.Levels, baselineLevel{Level: lv, Cells: cells})
			}
			pg.BaselineVars = append(pg.BaselineVars, bv)
		}
	}}
}

// effectsLine is a row of the effects table as the report reads it.
type EffectsLine struct {
	Analysis, Outcome, Method, Term string
	Estimate, Se, Df, Lo, Hi, P, Es float64
	NObs, NClusters                 int32
	esType, note                    string
}

func readEffectsTable(ctx context.Context, genDir string) ([]EffectsLine, error) {
	var out []EffectsLine
	err := warehouse.ScanTable(ctx, genDir, "effects", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "analysis", "outcome", "method", "term", "estimate", "std_error", "df",
			"ci_low", "ci_high", "p_value", "n_obs", "n_clusters", "effect_size", "effect_size_type", "note")
		if err != nil {
			return err
		}
		str := func(c, i int) string {
			a := cols[c].(*array.String)
			if a.IsNull(i) {
				return ""
			}
			return a.Value(i)
		}
		num := func(c, i int) float64 {
			a := cols[c].(*array.Float64)
			if a.IsNull(i) {
				return math.NaN()
			}
			return a.Value(i)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			out = append(out, EffectsLine{
				Analysis: str(0, i), Outcome: str(1, i), Method: str(2, i), Term: str(3, i),
				Estimate: num(4, i), Se: num(5, i), Df: num(6, i), Lo: num(7, i), Hi: num(8, i), P: num(9, i),
				NObs: cols[10].(*array.Int32).Value(i), NClusters: cols[11].(*array.Int32).Value(i),
				Es: num(12, i), esType: str(13, i), note: str(14, i),
			})
		}
		return nil
	})
	return out, err
}

// fmtNum shows a number with three decimals, "—" for null.
func fmtNum(v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

func fmtP(p float64) string {
	if math.IsNaN(p) {
		return "—"
	}
	if p < 0.001 {
		return "<0.001"
	}
	return strconv.FormatFloat(p, 'f', 3, 64)
}

// layoutOutcomes groups the effects rows by outcome (study order), then
// analysis (plan order) and method.
func (pg *studyPage) LayoutOutcomes(s *schemas.Study, effects []EffectsLine) {
	pg.HasEffects = len(effects) > 0
	rank := func(list []string, v string) int {
		if i := slices.Index(list, v); i >= 0 {
			return i
		}
		return len(list)
	}
	var outcomes []string
	for _, e := range effects {
		if !slices.Contains(outcomes, e.Outcome) {
			outcomes = append(outcomes, e.Outcome)
		}
	}
	sort.SliceStable(outcomes, func(i, j int) bool {
		return rank(s.Analysis.Outcomes, outcomes[i]) < rank(s.Analysis.Outcomes, outcomes[j])
	})
	for _, o := range outcomes {
		var rows []EffectsLine
		for _, e := range effects {
			if e.Outcome == o {
				rows = append(rows, e)
			}
		}
		sort.SliceStable(rows, func(i, j int) bool {
			ri, rj := rank(s.Analysis.Analyses, rows[i].Analysis), rank(s.Analysis.Analyses, rows[j].Analysis)
			if ri != rj {
				return ri < rj
			}
			mi, mj := rank(compare.AnalysisMethods[rows[i].Analysis], rows[i].Method), rank(compare.AnalysisMethods[rows[j].Analysis], rows[j].Method)
			return mi < mj
		})
		title := o
		if inst, _, ok := compare.OutcomeName(o); ok {
			if in, ok := s.Instrument(inst); ok && in.Title != "" {
				title = o + " — " + in.Title
			}
		}
		blk := outcomeBlock{Outcome: o, Title: title, Primary: o == s.Analysis.PrimaryOutcome}
		for _, e := range rows {
			ci := "—"
			if !math.IsNaN(e.Lo) && !math.IsNaN(e.Hi) {
				ci = fmtNum(e.Lo, 3) + " to " + fmtNum(e.Hi, 3)
			}
			es := "—"
			if !math.IsNaN(e.Es) {
				es = fmtNum(e.Es, 3) + " " + strings.ReplaceAll(e.esType, "_", " ")
			}
			blk.Rows = append(blk.Rows, outcomeLine{
				Analysis: e.Analysis, Method: e.Method, Term: e.Term,
				Estimate: fmtNum(e.Estimate, 3), CI: ci, P: fmtP(e.P), DF: fmtNum(e.Df, 1),
				N: ShowModelN(int64(e.NObs), s.Disclosure), G: strconv.Itoa(int(e.NClusters)),
				ES: es, Note: reportNote(e.note),
			})
		}
		empty := len(rows) > 0
		for _, e := range rows {
			empty = empty && math.IsNaN(e.Estimate)
		}
		if empty {
			for _, r := range blk.Rows {
				if !slices.Contains(blk.Empty, r.Note) {
					blk.Empty = append(blk.Empty, r.Note)
				}
			}
			blk.Rows = nil
		}
		pg.Outcomes = append(pg.Outcomes, blk)
	}
}

// dropCounts matches the "dropped 8 without follow-up, 3 withdrawn" clause
// of an effects note.
var dropCounts = regexp.MustCompile(`dropped [0-9]+ [^;,0-9]+(, [0-9]+ [^;,0-9]+)*`)

// reportNote is an effects note for publication: the counts of people
// dropped are left out (a small one could be recovered from n and the flow
// table), keeping the reasons.
func reportNote(note string) string {
	return dropCounts.ReplaceAllStringFunc(note, func(m string) string {
		parts := strings.Split(strings.TrimPrefix(m, "dropped "), ", ")
		for i, p := range parts {
			_, reason, _ := strings.Cut(p, " ")
			parts[i] = reason
		}
		return "left out: participants " + strings.Join(parts, ", ")
	})
}

// layoutForest fits the primary model within each trust and draws the
// forest plot with the pooled primary CR2 estimate.
func (pg *studyPage) layoutForest(s *schemas.Study, d *compare.CompareData, effects []EffectsLine) error {
	o := s.Analysis.PrimaryOutcome
	hasBase := compare.OutcomeHasBaseline(s, o)
	f := compare.BuildFrame(s, d, o, hasBase, nil)
	type point struct {
		label       string
		est, lo, hi float64
		ok, pooled  bool
	}
	var pts []point
	level := 0.95
	if l := s.Analysis.CILevel; l > 0 && l < 1 {
		level = l
	}
	for _, trust := range compare.StrataOrder(s, f.Trusts) {
		var rows []int
		for i, t := range f.Trusts {
			if t == trust {
				rows = append(rows, i)
			}
		}
		p := point{label: trust}
		note := ""
		k := 2
		if hasBase {
			k = 3
		}
		nArm := 0.0
		for _, i := range rows {
			nArm += f.Arm[i]
		}
		switch {
		case nArm < 2 || float64(len(rows))-nArm < 2:
			note = "not estimable: needs participants in both arms"
		case len(rows) <= k:
			note = "not estimable: too few participants"
		default:
			x := mat.NewDense(len(rows), k, nil)
			y := make([]float64, len(rows))
			for r, i := range rows {
				x.Set(r, 0, 1)
				x.Set(r, 1, f.Arm[i])
				if hasBase {
					x.Set(r, 2, f.YBase[i])
				}
				y[r] = f.YFU[i]
			}
			fit, err := stats.OLS(x, y, nil)
			if err != nil {
				note = "not estimable: " + err.Error()
				break
			}
			ct := fit.CoefTest(1, level)
			p.est, p.lo, p.hi, p.ok = ct.Estimate, ct.CILow, ct.CIHigh, true
		}
		pts = append(pts, p)
		fl := forestLine{Trust: trust, Note: note, Estimate: "—", CI: "—"}
		if p.ok {
			fl.Estimate, fl.CI = fmtNum(p.est, 2), fmtNum(p.lo, 2)+" to "+fmtNum(p.hi, 2)
		}
		pg.ForestRows = append(pg.ForestRows, fl)
	}
	pooled := point{label: "Pooled (CR2)", pooled: true}
	for _, e := range effects {
		if e.Analysis == compare.AnalysisPrimary && e.Outcome == o && e.Method == "cr2" && !math.IsNaN(e.Estimate) && !math.IsNaN(e.Lo) {
			pooled.est, pooled.lo, pooled.hi, pooled.ok = e.Estimate, e.Lo, e.Hi, true
		}
	}
	fl := forestLine{Trust: pooled.label, Estimate: "—", CI: "—"}
	if pooled.ok {
		fl.Estimate, fl.CI = fmtNum(pooled.est, 2), fmtNum(pooled.lo, 2)+" to "+fmtNum(pooled.hi, 2)
	} else {
		fl.Note = "not estimated (see the outcomes table)"
	}
	pg.ForestRows = append(pg.ForestRows, fl)
	pts = append(pts, pooled)

	// Draw: one row per trust from the top, the pooled diamond at the bottom.
	p := plot.New()
	reportFontStyle(p, vg.Points(13))
	p.X.Label.Text = "Adjusted difference in " + o + ", " + s.Arms[0] + " − " + s.Arms[1] + " (95% CI)"
	p.X.Label.TextStyle.Font.Size = vg.Points(12)
	var ticks []plot.Tick
	var xy plotter.XYs
	var errs plotter.XErrors
	minX, maxX := 0.0, 0.0
	for i, pt := range pts {
		yv := float64(len(pts) - 1 - i)
		label := pt.label
		if !pt.ok {
			label += " (n/e)"
		}
		ticks = append(ticks, plot.Tick{Value: yv, Label: label})
		if !pt.ok {
			continue
		}
		minX, maxX = math.Min(minX, pt.lo), math.Max(maxX, pt.hi)
		if pt.pooled {
			poly, err := plotter.NewPolygon(plotter.XYs{{X: pt.lo, Y: yv}, {X: pt.est, Y: yv + 0.3}, {X: pt.hi, Y: yv}, {X: pt.est, Y: yv - 0.3}})
			if err != nil {
				return fmt.Errorf("forest plot: %w", err)
			}
			poly.Color = forestBlue
			poly.LineStyle.Color = forestBlue
			p.Add(poly)
			continue
		}
		xy = append(xy, plotter.XY{X: pt.est, Y: yv})
		errs = append(errs, struct{ Low, High float64 }{pt.est - pt.lo, pt.hi - pt.est})
	}
	zero, err := plotter.NewLine(plotter.XYs{{X: 0, Y: -0.6}, {X: 0, Y: float64(len(pts)) - 0.4}})
	if err != nil {
		return fmt.Errorf("forest plot: %w", err)
	}
	zero.LineStyle.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	zero.LineStyle.Color = forestGrey
	p.Add(zero)
	if len(xy) > 0 {
		bars, err := plotter.NewXErrorBars(forestPoints{xy, errs})
		if err != nil {
			return fmt.Errorf("forest plot: %w", err)
		}
		bars.LineStyle.Width = vg.Points(1.5)
		sc, err := plotter.NewScatter(xy)
		if err != nil {
			return fmt.Errorf("forest plot: %w", err)
		}
		sc.GlyphStyle.Shape = draw.BoxGlyph{}
		sc.GlyphStyle.Radius = vg.Points(4)
		sc.GlyphStyle.Color = forestBlue
		p.Add(bars, sc)
	}
	pad := 0.08 * math.Max(maxX-minX, 1)
	p.X.Min, p.X.Max = minX-pad, maxX+pad
	p.Y.Min, p.Y.Max = -0.6, float64(len(pts))-0.4
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Tick.Length = 0
	p.Y.LineStyle.Width = 0
	svg, err := plotSVG(p, vg.Points(520), vg.Points(float64(60+28*len(pts))), "Forest plot of the primary outcome by trust and pooled")
	if err != nil {
		return err
	}
	pg.Forest = svg
	return nil
}

// forestPoints pairs the trusts' estimates with their interval half-widths.
type forestPoints struct {
	plotter.XYs
	plotter.XErrors
}

var (
	forestBlue = color.RGBA{R: 0x1f, G: 0x5f, B: 0xa8, A: 0xff}
	forestGrey = color.RGBA{R: 0x80, G: 0x80, B: 0x80, A: 0xff}
)

// layoutBalance shows the primary outcome's weighted-analysis balance. The
// standardised difference of a binary covariate (a level of a categorical
// one, or living_alone) determines, with the arm sizes the flow shows, how
// many people of each arm have it: a row whose level is held by fewer
// than MinCount people of an arm (or lacked by fewer than MinCount) is
// shown without its figures.
func (pg *studyPage) layoutBalance(ctx context.Context, s *schemas.Study, d *compare.CompareData, genDir string) error {
	want := compare.AnalysisWeighted + ":" + pg.Primary
	small := balanceSmallCells(s, d, pg.Primary)
	var essI, essC, maxW float64
	err := warehouse.ScanTable(ctx, genDir, "balance", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "analysis", "covariate", "smd_unweighted", "smd_weighted", "variance_ratio", "ess_intervention", "ess_control", "max_weight")
		if err != nil {
			return err
		}
		num := func(c, i int) float64 {
			a := cols[c].(*array.Float64)
			if a.IsNull(i) {
				return math.NaN()
			}
			return a.Value(i)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if cols[0].(*array.String).Value(i) != want {
				continue
			}
			w := num(3, i)
			cov := cols[1].(*array.String).Value(i)
			line := balanceLine{
				Covariate: cov,
				SMDU:      fmtNum(num(2, i), 3), SMDW: fmtNum(w, 3), VR: fmtNum(num(4, i), 2),
				Flag: math.Abs(w) > 0.1,
			}
			if small(cov) {
				line.SMDU, line.SMDW, line.VR, line.Flag = pg.Secondary, pg.Secondary, pg.Secondary, false
			}
			pg.Balance = append(pg.Balance, line)
			essI, essC, maxW = num(5, i), num(6, i), num(7, i)
		}
		return nil
	})
	if err != nil {
		return err
	}
	pg.HasBalance = len(pg.Balance) > 0
	if pg.HasBalance {
		pg.BalanceESS = fmt.Sprintf("Kish effective sample size after weighting: %s %s, %s %s; largest weight %s.",
			pg.Arms[0], fmtNum(essI, 1), pg.Arms[1], fmtNum(essC, 1), fmtNum(maxW, 2))
	}
	return nil
}

// layoutFidelity lists every team's band per rating period.
func (pg *studyPage) layoutFidelity(ctx context.Context, s *schemas.Study, genDir string) error {
	type rated struct{ band, pct string }
	got := map[[2]string]rated{}
	err := warehouse.ScanTable(ctx, genDir, "fidelity", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "team", "period", "pct", "band")
		if err != nil {
			return err
		}
		pct, band := cols[2].(*array.Float64), cols[3].(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			r := rated{}
			if band.IsValid(i) {
				r.band = band.Value(i)
			}
			if pct.IsValid(i) {
				r.pct = fmtNum(pct.Value(i), 0) + "%"
			}
			got[[2]string{cols[0].(*array.String).Value(i), cols[1].(*array.String).Value(i)}] = r
		}
		return nil
	})
	if err != nil {
		return err
	}
	bandNames := make([]string, len(s.Fidelity.Bands))
	for i, b := range s.Fidelity.Bands {
		bandNames[i] = b.Name
	}
	for _, team := range s.Teams {
		line := fidelityLine{Team: team.Code, Trust: team.Trust, Arm: team.Arm}
		for _, period := range s.Periods {
			r, ok := got[[2]string{team.Code, period}]
			cell := fidelityCell{Band: "not rated", Class: "band-none"}
			if ok && r.band != "" {
				cell = fidelityCell{Band: r.band, Pct: r.pct, Class: studyBandClass(bandNames, r.band)}
			}
			line.Periods = append(line.Periods, cell)
		}
		pg.Fidelity = append(pg.Fidelity, line)
	}
	return nil
}

// studyBandClass is the CSS class of a band: band-high, band-moderate,
// band-low for the default names, else band-<rank from the lowest>.
func studyBandClass(names []string, band string) string {
	switch band {
	case "high", "moderate", "low":
		return "band-" + band
	}
	if i := slices.Index(names, band); i >= 0 {
		return "band-" + strconv.Itoa(min(len(names)-1-i, 5))
	}
	return "band-none"
}

var StudyTemplate = template.Must(template.Must(template.New("page").Funcs(reportFuncs()).Parse(pageLayout)).Parse(studyTemplateText))

const studyTemplateText = `{{define "title"}}Study report: {{.Study}}{{end}}
{{define "content"}}
<style>
.flow { display: flex; flex-wrap: wrap; gap: 1rem; margin: .5rem 0 1rem; }
.flow .arm { flex: 1 1 16rem; border: 1px solid var(--rule); border-radius: 4px; padding: .6rem; }
.flow h3 { margin: 0 0 .5rem; text-transform: capitalize; }
.flow .box { border: 2px solid var(--accent); border-radius: 4px; padding: .35rem .6rem; background: var(--soft); }
.flow .box b { float: right; }
.flow .down { text-align: center; color: var(--accent); font-size: 1.2rem; line-height: 1.4; }
.flow .side { margin: .3rem 0 0 1.5rem; border: 1px dashed var(--muted); border-radius: 4px; padding: .25rem .6rem; font-size: .9rem; }
.flow .side b { float: right; }
tr.total td { font-weight: 600; background: var(--soft); }
td.note { font-size: .82rem; max-width: 18rem; overflow-wrap: anywhere; }
tr.flag td { background: #fff3e0; }
.flow .box, .flow .side, tr.total td, tr.flag td { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
</style>
<header class="report">
<p class="kicker">Study report</p>
<h1>{{.Study}}</h1>
<p class="muted">Quasi-experimental comparison of {{index .Arms 0}} and {{index .Arms 1}} teams. {{if eq .Small .Secondary}}Counts of people from 1 to {{.MaxSmall}}, and any count from which one of them could be worked out by adding or subtracting the counts shown, are shown as {{.Small}}.{{else}}Counts of people from 1 to {{.MaxSmall}} are shown as {{.Small}}; a larger count from which one of them could be worked out by adding or subtracting the counts shown is shown as {{.Secondary}}.{{end}} The number analysed by a model is shown when it is at least {{.MinCount}}.</p>
</header>

<section id="flow">
<h2>Participant flow</h2>
{{if .HasFlow}}
<div class="flow">
{{range .FlowArms}}<div class="arm">
<h3>{{.Arm}}</h3>
<div class="box">Recruited <b>{{.Recruited}}</b></div>
<div class="side">Not interviewed at baseline <b>{{.NotBaseline}}</b></div>
<div class="down" aria-hidden="true">↓</div>
<div class="box">Interviewed at baseline <b>{{.Baseline}}</b></div>
<div class="side">Withdrew <b>{{.Withdrawn}}</b></div>
<div class="side">Lost to follow-up <b>{{.Lost}}</b></div>
<div class="down" aria-hidden="true">↓</div>
<div class="box">Followed up <b>{{.Followup}}</b></div>
</div>
{{end}}</div>
<div class="scroll"><table>
<caption>Participant flow by trust and arm</caption>
<thead><tr><th>Trust</th><th>Arm</th><th class="num">Recruited</th><th class="num">Not interviewed at baseline</th><th class="num">Baseline</th><th class="num">Followed up</th><th class="num">Withdrew</th><th class="num">Lost</th></tr></thead>
<tbody>
{{range .FlowRows}}<tr{{if .Total}} class="total"{{end}}><td>{{.Trust}}</td><td>{{.Arm}}</td>{{range .Cells}}<td class="num">{{.}}</td>{{end}}</tr>
{{end}}</tbody></table></div>
<p class="note">Recruited = interviewed at baseline + not interviewed at baseline; interviewed at baseline = followed up + withdrew + lost. "Withdrew" counts participants interviewed at baseline who withdrew (anyone withdrawn is left out of every analysis); "lost" were interviewed at baseline and neither followed up nor withdrawn.</p>
{{else}}<p>No flow table yet: run <code>cpi compare</code>.</p>{{end}}
</section>

<section id="baseline">
<h2>Baseline characteristics by arm</h2>
<p class="note">Participants interviewed at baseline; percentages of the arm.</p>
<div class="scroll"><table>
<thead><tr><th>Characteristic</th>{{range $i, $a := .Arms}}<th class="num">{{$a}} (n = {{index $.BaselineN $i}})</th>{{end}}</tr></thead>
<tbody>
{{range .BaselineVars}}<tr class="total"><td colspan="{{$.BaselineCols}}">{{.Name}}</td></tr>
{{range .Levels}}<tr><td>{{.Level}}</td>{{range .Cells}}<td class="num">{{.}}</td>{{end}}</tr>
{{end}}{{end}}</tbody></table></div>
</section>

<section id="outcomes">
<h2>Outcomes</h2>
{{if .HasEffects}}
<p class="note">Estimates are adjusted differences, {{index .Arms 0}} minus {{index .Arms 1}} (for fidelity_dose: teams in the highest fidelity band minus the others), with 95% confidence intervals. primary: ANCOVA with CR2 cluster-robust errors and Satterthwaite df (cr2), and CR1 with G − 1 df (cr1); wild_bootstrap: wild cluster bootstrap-t with Webb weights (no df); mixed: random team intercept by REML (df by the between-within rule); change: change from baseline; weighted: propensity (ATE) weighted; fidelity_dose: exploratory. Effect sizes: Hedges' g, and partial η² on the cr1 row as in the pilot study.</p>
{{range .Outcomes}}
<h3>{{.Title}}{{if .Primary}} (primary outcome){{end}}</h3>
{{if .Empty}}<p class="note">Not estimated:</p><ul class="note">{{range .Empty}}<li>{{.}}</li>{{end}}</ul>{{else}}
<div class="scroll"><table>
<thead><tr><th>Analysis</th><th>Method</th><th class="num">Estimate</th><th class="num">95% CI</th><th class="num">p</th><th class="num">df</th><th class="num">n</th><th class="num">Teams</th><th class="num">Effect size</th><th>Note</th></tr></thead>
<tbody>
{{range .Rows}}<tr><td>{{.Analysis}}{{if ne .Term "arm_intervention"}} ({{.Term}}){{end}}</td><td>{{.Method}}</td><td class="num">{{.Estimate}}</td><td class="num">{{.CI}}</td><td class="num">{{.P}}</td><td class="num">{{.DF}}</td><td class="num">{{.N}}</td><td class="num">{{.G}}</td><td class="num">{{.ES}}</td><td class="note">{{.Note}}</td></tr>
{{end}}</tbody></table></div>{{end}}
{{end}}
{{else}}<p>No effects table yet: run <code>cpi compare</code>.</p>{{end}}
</section>

<section id="forest">
<h2>Primary outcome by trust</h2>
<figure class="chart">
{{.Forest}}
<figcaption>{{.Primary}}: adjusted difference within each trust and pooled (diamond: the primary analysis, CR2).</figcaption>
</figure>
<div class="scroll"><table>
<thead><tr><th>Trust</th><th class="num">Estimate</th><th class="num">95% CI</th><th>Note</th></tr></thead>
<tbody>
{{range .ForestRows}}<tr><td>{{.Trust}}</td><td class="num">{{.Estimate}}</td><td class="num">{{.CI}}</td><td class="note">{{.Note}}</td></tr>
{{end}}</tbody></table></div>
<p class="note">Within each trust the model y_followup ~ arm + y_baseline is fitted by OLS with classical standard errors: a trust has one team per arm, so a cluster-robust error cannot be estimated there, and these intervals ignore the clustering of participants in teams (they are too narrow). The pooled estimate is the primary analysis across all trusts with CR2 errors. n/e: not estimable.</p>
</section>

<section id="balance">
<h2>Covariate balance ({{.Primary}}, weighted analysis)</h2>
{{if .HasBalance}}
<div class="scroll"><table>
<thead><tr><th>Covariate</th><th class="num">SMD before weighting</th><th class="num">SMD after weighting</th><th class="num">Variance ratio (weighted)</th></tr></thead>
<tbody>
{{range .Balance}}<tr{{if .Flag}} class="flag"{{end}}><td>{{.Covariate}}</td><td class="num">{{.SMDU}}</td><td class="num">{{.SMDW}}</td><td class="num">{{.VR}}</td></tr>
{{end}}</tbody></table></div>
<p class="note">{{.BalanceESS}} Standardised mean differences ({{index .Arms 0}} − {{index .Arms 1}}) over the pooled unweighted SD; highlighted rows have |SMD| above 0.1 after weighting. Arm means are in the warehouse's balance table and are left out here because a proportion times the arm size could reveal a small count.</p>
{{else}}<p>No balance rows for this outcome.</p>{{end}}
</section>

<section id="fidelity">
<h2>Fidelity by team</h2>
<div class="scroll"><table>
<thead><tr><th>Team</th><th>Trust</th><th>Arm</th>{{range .Periods}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Fidelity}}<tr><td>{{.Team}}</td><td>{{.Trust}}</td><td>{{.Arm}}</td>{{range .Periods}}<td><span class="badge {{.Class}}">{{.Band}}</span>{{if .Pct}} {{.Pct}}{{end}}</td>{{end}}</tr>
{{end}}</tbody></table></div>
</section>

<footer class="report">cpi {{.Version}} · study definition {{.Hash}}</footer>
{{end}}`

// balanceSmallCells reports, for a balance row's covariate ("name=level"
// or a 0/1 covariate's name), whether fewer than the study's MinCount
// people of an arm in the outcome's complete cases (not withdrawn, with
// baseline and follow-up) have it, or lack it.
func balanceSmallCells(s *schemas.Study, d *compare.CompareData, outcome string) func(string) bool {
	base, fu := d.Base[outcome], d.Fu[outcome]
	n := map[string]int{}
	has := map[[2]string]int{}
	for i := range d.Parts {
		p := &d.Parts[i]
		if p.Withdrawn || i >= len(fu) || math.IsNaN(fu[i]) || (base != nil && math.IsNaN(base[i])) {
			continue
		}
		n[p.Arm]++
		for _, c := range append(slices.Clone(compare.CategoricalCovariates), compare.NumericCovariates...) {
			lv, num := p.Covariate(c)
			switch {
			case lv != "":
				has[[2]string{c + "=" + lv, p.Arm}]++
			case num == 1:
				has[[2]string{c, p.Arm}]++
			}
		}
	}
	min := s.Disclosure.MinCount
	return func(cov string) bool {
		if !strings.Contains(cov, "=") && !slices.Contains(compare.NumericCovariates, cov) {
			return false // a continuous covariate (the baseline score): no count to give away
		}
		for _, arm := range s.Arms {
			k := has[[2]string{cov, arm}]
			if k < min || n[arm]-k < min {
				return true
			}
		}
		return false
	}
}
