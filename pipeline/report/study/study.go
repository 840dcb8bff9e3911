package study

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/report"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// Report writes the study report (DESIGN §10) of the generation at
// genDir to out: one self-contained HTML page with
//
//   - the participant flow (recruited → baseline → each follow-up wave the
//     flow table has, withdrawn and lost) as a diagram by arm and a table
//     by trust and arm, from flow (ReadFlow);
//   - the data cut-off: the latest export date of the current files and
//     each trust's, from ingest_files (ReadProvenance);
//   - baseline characteristics by arm and in total (participants
//     interviewed at baseline: counts and percentages of each level of
//     the study's demographic fields, labelled from its code lists),
//     streamed from participants (ReadBaselineCounts), and the outcomes'
//     baseline mean (SD) from compare's descriptives;
//   - the outcomes table: per arm n and mean (SD) at every wave
//     (descriptives) beside the primary analysis at each follow-up wave
//     (difference with 95% CI, p, the mixed model's ICC, Hedges' g, n
//     analysed), and the other analyses in one compact table with
//     numbered notes;
//   - a forest plot of the primary outcome at the primary wave by trust
//     (compare's trust_effects table: one model over all trusts, CR2 by
//     team, Satterthwaite df per trust) and pooled (the primary CR2
//     estimate), as inline SVG;
//   - the balance table of the primary outcome's weighted analysis;
//   - fidelity by team: band and percentage per rating period.
//
// Disclosure control (DESIGN §10) is one pass over every count of people
// the page prints (LayoutCounts, Disclosure): the flow's cells, rows
// (recruited = baseline + not interviewed; baseline = the primary wave +
// withdrew + lost) and columns (trusts add up to the arm, arms to the
// study), the baseline table's levels adding up to each arm's size, and
// that size being the flow's arm at baseline. A count from 1 to MinCount −
// 1 is shown with the small symbol ("<5"), and more counts with the secondary one ("[c]")
// until none hidden can be worked out from those shown; a percentage only
// beside a shown count of a shown arm size. A model's number analysed is a
// model result, not a frequency table: shown when at least MinCount
// (ShowModelN). Effects notes lose their counts of people dropped (reasons
// kept), and arm means of the balance covariates are left out: a
// proportion times the arm's size would give a small count away.
//
// The page is deterministic (no clock; the same tables give the same
// bytes) and everything from the tables is escaped. A table not written
// yet gives a section saying so. Report fails on unreadable tables.
func Report(ctx context.Context, env warehouse.Env, genDir string, out io.Writer) error {
	task := env.Progress.Start("report study", "reports", 1)
	defer task.Done()
	page, err := Load(ctx, env, genDir)
	if err != nil {
		return fmt.Errorf("study report: %w", err)
	}
	if err := Render(out, page); err != nil {
		return fmt.Errorf("study report: %w", err)
	}
	task.Add(1)
	return nil
}

// WriteReport writes the study report of the generation being
// written to reports/study-report.html (0640, atomically), for cpi run. It
// reads what compare wrote into tx, so it runs after it.
func WriteReport(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
	return warehouse.WriteFileAtomic(tx.Path("reports", "study-report.html"), warehouse.FileMode, func(w io.Writer) error {
		return Report(ctx, env, tx.Dir, w)
	})
}

// committedGen is the folder of the warehouse's committed generation; an
// error when the warehouse has none yet.
func committedGen(dir string) (string, error) {
	w, err := warehouse.OpenWarehouse(dir, false)
	if err != nil {
		return "", err
	}
	gen, err := w.CurrentDir()
	if err != nil {
		return "", err
	}
	if gen == "" {
		return "", fmt.Errorf("warehouse %s has no committed generation yet (run cpi ingest or cpi run first)", dir)
	}
	return gen, nil
}

// WriteReportFile writes the study report of the warehouse's committed
// generation to path (0640, atomically): cpi report study.
func WriteReportFile(ctx context.Context, env warehouse.Env, dir, path string) error {
	gen, err := committedGen(dir)
	if err != nil {
		return err
	}
	return warehouse.WriteFileAtomic(path, warehouse.FileMode, func(out io.Writer) error {
		return Report(ctx, env, gen, out)
	})
}

// studyPage is what the study report template is given.
type studyPage struct {
	Study, Version, Hash string
	MinCount, MaxSmall   int
	Small, Secondary     string // the disclosure symbols
	Arms                 []string

	// Provenance is the data cut-off: the current files' export dates.
	Provenance *report.Provenance
	// CardCSS labels the cells of the tables shown as cards at phone
	// width (cardCSS).
	CardCSS template.CSS

	HasFlow  bool
	FlowArms []flowBox
	FlowRows []flowLine
	// FlowHeads are the flow table's headings of the follow-up waves;
	// FlowManyWaves says there are several (each named by its wave), and
	// FlowPrimary names the primary wave.
	FlowHeads     []string
	FlowManyWaves bool
	FlowPrimary   string
	// The summary, the CONSORT diagram, the methods and the checklist
	// (summary.go, consort.go, methods.go).
	summaryPage
	consortPage
	methodsPage

	BaselineN      []string
	BaselineTotalN string
	BaselineCols   int
	BaselineVars   []baselineVar
	// BaselineScores are the outcomes' baseline mean (SD) per arm and in
	// all (the last cell), from compare's descriptives table.
	BaselineScores []baselineLevel

	// ArmSummaries are the outcomes by arm and wave beside the primary
	// analysis (the primary outcome first); Sensitivity the other
	// analyses' estimates, compact, and SensitivityNotes their notes.
	ArmSummaries     []armSummary
	ArmCols          int // the outcomes table's columns
	Sensitivity      []sensitivityLine
	SensitivityNotes []string

	HasEffects bool
	ManyWaves  bool          // effects has several waves: a heading each
	Outcomes   []outcomeWave // the primary wave first

	Primary     string
	PrimaryWave string // the primary wave's name, as printed
	Forest      template.HTML
	ForestRows  []forestLine

	HasBalance bool
	Balance    []balanceLine
	BalanceESS string

	Periods  []string
	Fidelity []fidelityLine

	// Sec are the results sections after the outcomes (sections.go).
	Sec *sections

	// disclosure is the page's disclosure control, kept for tests (its
	// witnesses prove each suppressed count undetermined).
	disclosure *report.Disclosure
	// desc and descCells are compare's descriptives and their n's cells.
	desc      map[DescKey]DescStat
	descCells map[DescKey]int
}

// flowBox is one arm of the flow diagram; counts are already suppressed.
type flowBox struct {
	Arm                                               string
	Recruited, NotBaseline, Baseline, Withdrawn, Lost string
	Waves                                             []flowWaveBox // the follow-up waves, in order
}

// flowWaveBox is a follow-up wave's box; withdrawn and lost are shown
// beside the primary wave's.
type flowWaveBox struct {
	Label, N string
	Primary  bool
}

// flowLine is a row of the flow table.
type flowLine struct {
	Trust, Arm string
	Total      bool
	Cells      []string // flowStages: recruited, not at baseline, each wave, withdrawn, lost
}

type baselineVar struct {
	Name   string
	Levels []baselineLevel
}

type baselineLevel struct {
	Level string
	Cells []string // per arm: "12 (15.0%)" or "<5"
}

// outcomeWave is one wave's outcomes; Heading is empty when effects has
// one wave.
type outcomeWave struct {
	Heading  string
	Outcomes []outcomeBlock
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

// Load reads the tables and lays the page out.
func Load(ctx context.Context, env warehouse.Env, genDir string) (*studyPage, error) {
	s := env.Study
	pg := NewPage(env)
	prov, err := report.ReadProvenance(ctx, s, genDir)
	if err != nil {
		return nil, err
	}
	pg.Provenance = prov
	flow, err := ReadFlow(ctx, genDir)
	if err != nil {
		return nil, err
	}
	base, err := ReadBaselineCounts(ctx, s, pg.Arms, genDir)
	if err != nil {
		return nil, err
	}
	desc, err := ReadDescriptives(ctx, genDir)
	if err != nil {
		return nil, err
	}
	if pg.Sec, err = readSections(ctx, env, genDir); err != nil {
		return nil, err
	}
	if err := pg.LayoutCountsWith(s, flow, base, desc); err != nil {
		return nil, err
	}
	trusts, err := readTrustForest(ctx, s, genDir)
	if err != nil {
		return nil, err
	}
	counts, err := readBalanceCounts(ctx, genDir, analysisWeighted+":"+pg.Primary, s.PrimaryWave())
	if err != nil {
		return nil, err
	}

	effects, err := readEffectsTable(ctx, genDir)
	if err != nil {
		return nil, err
	}
	pg.LayoutOutcomes(s, effects)
	ms, err := readEffectsM(ctx, genDir)
	if err != nil {
		return nil, err
	}
	if err := pg.layoutMethods(s, effects, ms); err != nil {
		return nil, err
	}
	if pg.Sec != nil {
		pg.Sec.layoutITT(s, func(n int64) string { return pg.ITTModelN(s, n) })
		pg.layoutOutcomeForest(s, effects)
	}
	if err := pg.layoutForest(s, trusts, effects); err != nil {
		return nil, err
	}
	if err := pg.layoutBalance(ctx, s, counts.smallCells(s), genDir); err != nil {
		return nil, err
	}
	if err := pg.layoutFidelity(ctx, s, genDir); err != nil {
		return nil, err
	}
	pg.layoutCardCSS()
	return pg, nil
}

// NewPage is a page with the study's names and nothing laid out.
func NewPage(env warehouse.Env) *studyPage {
	s := env.Study
	return &studyPage{
		Study: s.Name, Version: env.Version, Hash: s.Hash[:min(12, len(s.Hash))], MinCount: s.Disclosure.MinCount, MaxSmall: s.Disclosure.MinCount - 1,
		Small: s.Disclosure.SmallSymbol(), Secondary: s.Disclosure.SecondarySymbol(), Arms: s.Arms[:min(2, len(s.Arms))],
		Primary: s.Analysis.PrimaryOutcome, PrimaryWave: waveLabel(s.PrimaryWave()), Periods: s.Periods,
		ArmCols: 1 + 2*min(2, len(s.Arms)) + 5,
	}
}

// LayoutCounts lays out every count of people the page prints — the flow
// diagram and table, and the baseline table with its arms' sizes — and
// applies disclosure control to all of them at once (one Disclosure, see
// disclosure.go): the flow's rows and columns, each baseline variable's
// levels adding up to its arm's size, and that size being the flow's
// "interviewed at baseline" of the arm, are all sums of the one system.
// A percentage is printed only beside a shown count of a shown arm size
// (with a hidden size, 15 (19.5%) would give 77 away).
func (pg *studyPage) LayoutCounts(s *schemas.Study, flow map[FlowKey]FlowCounts, base *BaselineCounts) error {
	return pg.LayoutCountsWith(s, flow, base, nil)
}

// LayoutCountsWith is LayoutCounts with compare's descriptives: their
// per-arm n, printed in the outcomes table, join the same disclosure
// control, tied to the flow (layoutDescCounts), and the outcomes'
// baseline mean (SD) join Table 1.
func (pg *studyPage) LayoutCountsWith(s *schemas.Study, flow map[FlowKey]FlowCounts, base *BaselineCounts, desc map[DescKey]DescStat) error {
	disc := report.NewDisclosure(s.Disclosure)
	var fill []func()
	fill = append(fill, pg.layoutFlow(s, flow, disc)...)
	fill = append(fill, pg.layoutConsort(s, flow, disc)...)
	fill = append(fill, pg.layoutBaseline(s, base, disc)...)
	pg.desc = desc
	pg.descCells = layoutDescCounts(s, pg.Arms, desc, disc)
	pg.layoutBaselineScores(s, desc)
	fill = append(fill, pg.layoutSectionCounts(s, disc)...)
	if err := disc.Protect(); err != nil {
		return fmt.Errorf("%w (are the flow and participants tables of the same run? run cpi compare)", err)
	}
	for _, f := range fill {
		f()
	}
	pg.disclosure = disc
	return nil
}

// analysisWeighted is the analysis whose balance the page shows (DESIGN
// §9 names it).
const analysisWeighted = "weighted"

// layoutBalance shows the primary outcome's weighted-analysis balance. The
// standardised difference of a binary covariate (a level of a categorical
// one, or living_alone) determines, with the arm sizes the flow shows, how
// many people of each arm have it: a row whose level is held by fewer
// than MinCount people of an arm (or lacked by fewer than MinCount) is
// shown without its figures.
func (pg *studyPage) layoutBalance(ctx context.Context, s *schemas.Study, small func(covariate string) bool, genDir string) error {
	want := analysisWeighted + ":" + pg.Primary
	var essI, essC, maxW float64
	err := warehouse.ScanTable(ctx, genDir, "balance", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "analysis", "covariate", "smd_unweighted", "smd_weighted", "variance_ratio", "ess_intervention", "ess_control", "max_weight", "wave")
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
			if cols[0].(*array.String).Value(i) != want || cols[8].(*array.String).Value(i) != s.PrimaryWave() {
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

// layoutCardCSS labels the cells of the page's tables for their phone
// layout as cards.
func (pg *studyPage) layoutCardCSS() {
	flow := append([]string{"Trust", "Arm", "Recruited", "Not interviewed at baseline", "Baseline"}, pg.FlowHeads...)
	flow = append(flow, "Withdrew", "Lost")
	t1 := []string{""}
	for i, a := range pg.Arms {
		n := ""
		if i < len(pg.BaselineN) {
			n = pg.BaselineN[i]
		}
		t1 = append(t1, a+" (n = "+n+")")
	}
	t1 = append(t1, "Total (n = "+pg.BaselineTotalN+")")
	fid := append([]string{"Team", "Trust", "Arm"}, pg.Periods...)
	var css []string
	for _, t := range []struct {
		class  string
		labels []string
	}{
		{"flowtable", flow},
		{"table1", t1},
		{"foresttable", []string{"Trust", "Estimate", "95% CI", "Note"}},
		{"balancetable", []string{"Covariate", "SMD before weighting", "SMD after weighting", "Variance ratio (weighted)"}},
		{"fidtable", fid},
	} {
		css = append(css, string(report.CardCSS(t.class, t.labels)))
	}
	pg.CardCSS = template.CSS(strings.Join(css, "\n"))
}

// The study report's templates: templates/study.tmpl and its parts
// (templates/study_*.tmpl), inside the shared page (report.Parse).
//
//go:embed templates/*.tmpl
var templateFS embed.FS

// templateFile is the study report's template file.
const templateFile = "study.tmpl"

// Render writes a laid-out study page (Load, or NewPage with LayoutCounts
// and LayoutOutcomes) as HTML.
func Render(out io.Writer, pg *studyPage) error {
	return report.Execute(out, templateFS, templateFile, pg)
}
