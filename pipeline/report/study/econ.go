package study

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/report"
	"github.com/connectingpeople/cpi/pipeline/report/chart"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// econSection is the study report's economic evaluation (issue 16, DESIGN
// §13), from compare's tables service_use, descriptives, cost_effectiveness
// and, when written, ce_bootstrap; the CHEERS 2022 checklist states what the
// study definition fixes.
type econSection struct {
	Wave string // the primary wave, as printed

	// Services: per costed service, per arm: n, n using (%), mean cost (SD).
	Services []econLine
	// ByArm: total cost and QALYs per arm: n and mean (SD) (descriptives).
	ByArm []econLine
	// ServiceLabels and ArmLabels label the cells of the two tables at
	// phone width.
	ServiceLabels, ArmLabels []string

	// Incremental results: one column per method of cost_effectiveness.
	Methods []string
	Inc     []econLine
	IncNote string

	Plane     template.HTML
	PlaneNote string
	CEAC      template.HTML

	Cheers []cheersItem

	use      []serviceUseLine
	ce       []ceLine
	boot     []chart.Point
	hasBoot  bool
	useCells map[[2]string][2]int // (arm, service) → cells n, n_using
}

type econLine struct {
	Label string
	Cells []string
}

// cheersItem is an item of the CHEERS 2022 checklist the report states.
type cheersItem struct {
	Item         int
	Topic, Value string
	Where        string // the section of the report (or the table) that states it
}

// serviceUseLine is a row of service_use.
type serviceUseLine struct {
	Wave     string  `col:"wave"`
	Arm      string  `col:"arm"`
	Service  string  `col:"service"`
	N        int32   `col:"n"`
	NUsing   int32   `col:"n_using"`
	MeanCost float64 `col:"mean_cost"`
	SDCost   float64 `col:"sd_cost"`
}

// ceLine is a row of cost_effectiveness at the primary wave.
type ceLine struct {
	method                         string
	lambda, incCost, incQALY, icer float64
	inb, lo, hi, prob              float64
	nObs, nClusters                int32
	note                           string
}

// readEcon reads the economic evaluation's tables; nil when none of
// service_use and cost_effectiveness was written.
func readEcon(ctx context.Context, env warehouse.Env, genDir string) (*econSection, error) {
	s := env.Study
	e := &econSection{Wave: waveLabel(s.PrimaryWave())}
	var err error
	if e.use, err = readOptional[serviceUseLine](ctx, genDir, "service_use"); err != nil {
		return nil, err
	}
	if e.ce, err = readCostEffectiveness(ctx, s, genDir); err != nil {
		return nil, err
	}
	if e.boot, e.hasBoot, err = readCEBootstrap(ctx, s, genDir); err != nil {
		return nil, err
	}
	if len(e.use) == 0 && len(e.ce) == 0 {
		return nil, nil
	}
	return e, nil
}

// optFloat reads a nullable double column as NaN for null.
func optFloat(a *array.Float64, i int) float64 {
	if a.IsNull(i) {
		return math.NaN()
	}
	return a.Value(i)
}

// readCostEffectiveness reads cost_effectiveness's rows at the primary
// wave (every row when the table has no wave column).
func readCostEffectiveness(ctx context.Context, s *schemas.Study, genDir string) ([]ceLine, error) {
	files, err := warehouse.TableFiles(genDir, "cost_effectiveness")
	if err != nil || len(files) == 0 {
		return nil, err
	}
	var out []ceLine
	err = warehouse.ScanTable(ctx, genDir, "cost_effectiveness", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "method", "lambda", "inc_cost", "inc_qaly", "icer", "inb", "inb_ci_low", "inb_ci_high", "prob_cost_effective", "n_obs", "n_clusters", "note")
		if err != nil {
			return err
		}
		var wave *array.String
		if idx := rec.Schema().FieldIndices("wave"); len(idx) == 1 {
			wave, _ = rec.Column(idx[0]).(*array.String)
		}
		f := func(c int) *array.Float64 { return cols[c].(*array.Float64) }
		note := cols[11].(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			if wave != nil && wave.IsValid(i) && wave.Value(i) != s.PrimaryWave() {
				continue
			}
			l := ceLine{method: cols[0].(*array.String).Value(i), lambda: optFloat(f(1), i), incCost: optFloat(f(2), i), incQALY: optFloat(f(3), i),
				icer: optFloat(f(4), i), inb: optFloat(f(5), i), lo: optFloat(f(6), i), hi: optFloat(f(7), i), prob: optFloat(f(8), i),
				nObs: cols[9].(*array.Int32).Value(i), nClusters: cols[10].(*array.Int32).Value(i)}
			if note.IsValid(i) {
				l.note = note.Value(i)
			}
			out = append(out, l)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cost_effectiveness: %w", err)
	}
	return out, nil
}

// readCEBootstrap reads the bootstrap replicates of cost_effectiveness at
// the primary wave from ce_bootstrap, and whether the table exists.
func readCEBootstrap(ctx context.Context, s *schemas.Study, genDir string) ([]chart.Point, bool, error) {
	files, err := warehouse.TableFiles(genDir, "ce_bootstrap")
	if err != nil || len(files) == 0 {
		return nil, false, err
	}
	var out []chart.Point
	err = warehouse.ScanTable(ctx, genDir, "ce_bootstrap", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "wave", "inc_cost", "inc_qaly")
		if err != nil {
			return err
		}
		wave, c, q := cols[0].(*array.String), cols[1].(*array.Float64), cols[2].(*array.Float64)
		for i := 0; i < int(rec.NumRows()); i++ {
			if wave.IsValid(i) && wave.Value(i) != s.PrimaryWave() || c.IsNull(i) || q.IsNull(i) {
				continue
			}
			out = append(out, chart.Point{Q: q.Value(i), C: c.Value(i)})
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("ce_bootstrap: %w", err)
	}
	return out, true, nil
}

// serviceTitle is a service's name from the unit-cost tables, else its item.
func serviceTitle(s *schemas.Study, item string) string {
	for _, u := range s.UnitCosts {
		for _, sv := range u.Services {
			if sv.Item == item {
				return sv.Service
			}
		}
	}
	return item
}

// layoutEconCounts adds service use's counts at the primary wave to disc:
// per arm and service, n answered and n using, n = using + not using (an
// implied count). A percentage using is shown only beside a shown n_using
// of a shown n. The rest of the section is laid out too (layoutEcon).
func (pg *studyPage) layoutEconCounts(s *schemas.Study, disc *report.Disclosure) func() {
	e := pg.Sec.Econ
	if e == nil {
		return func() {}
	}
	e.useCells = map[[2]string][2]int{}
	var services []string
	for _, r := range e.use {
		if r.Wave != s.PrimaryWave() {
			continue
		}
		k := [2]string{r.Arm, r.Service}
		nc := disc.Count("su|n|"+r.Arm+"|"+r.Service, int64(r.N), avoidCell)
		uc := disc.Count("su|using|"+r.Arm+"|"+r.Service, int64(r.NUsing), avoidCell)
		disc.Sum(nc, uc, disc.Implied("su|not|"+r.Arm+"|"+r.Service, int64(r.N-r.NUsing)))
		e.useCells[k] = [2]int{nc, uc}
		if !containsStr(services, r.Service) {
			services = append(services, r.Service)
		}
	}
	return func() {
		e.layoutServices(s, pg.Arms, services, disc)
		e.layoutByArm(s, pg.Arms, pg.desc, pg.descCells, disc)
		e.layoutIncremental(s)
		e.layoutCharts(s)
		e.Cheers = cheersItems(s, e)
	}
}

func containsStr(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (e *econSection) layoutServices(s *schemas.Study, arms, services []string, disc *report.Disclosure) {
	rows := map[[2]string]serviceUseLine{}
	for _, r := range e.use {
		if r.Wave == s.PrimaryWave() {
			rows[[2]string{r.Arm, r.Service}] = r
		}
	}
	for _, a := range arms {
		e.ServiceLabels = append(e.ServiceLabels, a+": n", "using (%)", "mean £ (SD)")
		e.ArmLabels = append(e.ArmLabels, a+": n", "mean (SD)")
	}
	for _, sv := range services {
		line := econLine{Label: serviceTitle(s, sv)}
		for _, a := range arms {
			k := [2]string{a, sv}
			c, ok := e.useCells[k]
			if !ok {
				line.Cells = append(line.Cells, "—", "—", "—")
				continue
			}
			r := rows[k]
			using := disc.Show(c[1])
			if !disc.Hidden(c[0]) && !disc.Hidden(c[1]) && r.N > 0 {
				using += " (" + fmtNum(100*float64(r.NUsing)/float64(r.N), 1) + "%)"
			}
			cost := "—"
			if r.N >= int32(disc.Rule().MinCount) {
				cost = fmtMoney(r.MeanCost, 0)
				if !math.IsNaN(r.SDCost) {
					cost += " (" + fmtMoney(r.SDCost, 0) + ")"
				}
			}
			line.Cells = append(line.Cells, disc.Show(c[0]), using, cost)
		}
		e.Services = append(e.Services, line)
	}
}

// layoutByArm is total cost and QALYs per arm at the primary wave (and the
// cost at baseline) from descriptives, whose n are the page's cells.
func (e *econSection) layoutByArm(s *schemas.Study, arms []string, desc map[DescKey]DescStat, cells map[DescKey]int, disc *report.Disclosure) {
	var outcomes [][2]string // outcome, wave
	for _, o := range s.Analysis.Outcomes {
		inst, scale, _ := strings.Cut(o, ".")
		in, ok := s.Instrument(inst)
		if !ok {
			continue
		}
		for _, sc := range in.Scales {
			if sc.Name != scale {
				continue
			}
			switch {
			case sc.Method == "cost":
				outcomes = append(outcomes, [2]string{o, s.BaselineWave()}, [2]string{o, s.PrimaryWave()})
			case sc.Method == "auc":
				outcomes = append(outcomes, [2]string{o, s.PrimaryWave()})
			}
		}
	}
	for _, ow := range outcomes {
		k0 := DescKey{ow[0], ow[1], arms[0]}
		if _, ok := desc[k0]; !ok {
			continue
		}
		line := econLine{Label: ow[0] + ", " + waveLabel(ow[1])}
		for _, a := range arms {
			k := DescKey{ow[0], ow[1], a}
			st, ok := desc[k]
			c, ok2 := cells[k]
			if !ok || !ok2 {
				line.Cells = append(line.Cells, "—", "—")
				continue
			}
			line.Cells = append(line.Cells, disc.Show(c), fmtMeanSD(st, disc.Rule(), outcomeDecimals(ow[0])))
		}
		e.ByArm = append(e.ByArm, line)
	}
}

// econLambdas are the willingness-to-pay values the incremental table
// shows (NICE's £20,000 and £30,000 per QALY).
var econLambdas = []float64{20000, 30000}

// fmtMoney is "£1,234" (negative "−£1,234"), "—" for null.
func fmtMoney(v float64, dec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	sign := ""
	if v < 0 {
		sign, v = "−", -v
	}
	return sign + "£" + groupDigits(strconv.FormatFloat(v, 'f', dec, 64))
}

// groupDigits puts thousands separators into a non-negative number.
func groupDigits(num string) string {
	whole, frac, hasFrac := strings.Cut(num, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if hasFrac {
		return b.String() + "." + frac
	}
	return b.String()
}

func (e *econSection) layoutIncremental(s *schemas.Study) {
	at := func(method string, lambda float64) *ceLine {
		for i := range e.ce {
			if e.ce[i].method == method && e.ce[i].lambda == lambda {
				return &e.ce[i]
			}
		}
		return nil
	}
	for _, l := range e.ce {
		if !containsStr(e.Methods, l.method) {
			e.Methods = append(e.Methods, l.method)
		}
	}
	if len(e.Methods) == 0 {
		return
	}
	row := func(label string, f func(l *ceLine) string, lambda float64) {
		line := econLine{Label: label}
		for _, m := range e.Methods {
			l := at(m, lambda)
			if l == nil {
				line.Cells = append(line.Cells, "—")
				continue
			}
			line.Cells = append(line.Cells, f(l))
		}
		e.Inc = append(e.Inc, line)
	}
	row("Incremental cost", func(l *ceLine) string { return fmtMoney(l.incCost, 0) }, 0)
	row("Incremental QALYs", func(l *ceLine) string { return fmtNum(l.incQALY, 4) }, 0)
	row("ICER (£ per QALY)", func(l *ceLine) string { return fmtMoney(l.icer, 0) }, 0)
	for _, lam := range econLambdas {
		k := fmtMoney(lam, 0)
		row("INB at "+k+" (95% CI)", func(l *ceLine) string {
			out := fmtMoney(l.inb, 0)
			if !math.IsNaN(l.lo) && !math.IsNaN(l.hi) {
				out += " (" + fmtMoney(l.lo, 0) + " to " + fmtMoney(l.hi, 0) + ")"
			}
			return out
		}, lam)
		row("P(cost-effective) at "+k, func(l *ceLine) string { return fmtNum(l.prob, 3) }, lam)
	}
	var notes []string
	for _, m := range e.Methods {
		if l := at(m, 0); l != nil {
			n := fmt.Sprintf("%s: %s participants in %d teams", m, report.ShowModelN(int64(l.nObs), s.Disclosure), l.nClusters)
			if l.note != "" {
				n += " (" + reportNote(l.note) + ")"
			}
			notes = append(notes, n)
		}
	}
	e.IncNote = strings.Join(notes, "; ") + "."
}

// layoutCharts draws the cost-effectiveness plane (when ce_bootstrap was
// written) and the acceptability curve of every method.
func (e *econSection) layoutCharts(s *schemas.Study) {
	if e.hasBoot && len(e.boot) > 0 {
		var est *chart.Point
		for _, l := range e.ce {
			if l.method == "cr2" && l.lambda == 0 && !math.IsNaN(l.incQALY) && !math.IsNaN(l.incCost) {
				est = &chart.Point{Q: l.incQALY, C: l.incCost}
			}
		}
		e.Plane = chart.Plane(e.boot, est, econLambdas)
		e.PlaneNote = fmt.Sprintf("%d bootstrap replicates (ce_bootstrap); the cross is the CR2 estimate; the lines are λ = £20,000 and £30,000 per QALY: points below a line are cost-effective at it.", len(e.boot))
	} else {
		e.PlaneNote = "The cost-effectiveness plane needs the bootstrap replicates (table ce_bootstrap), which this run did not write."
	}
	curves := map[string][][2]float64{}
	for _, l := range e.ce {
		if !math.IsNaN(l.prob) {
			curves[l.method] = append(curves[l.method], [2]float64{l.lambda, l.prob})
		}
	}
	if len(curves) > 0 {
		e.CEAC = chart.CEAC(e.Methods, curves, econLambdas)
	}
}

// cheersItems are the CHEERS 2022 items (Husereau et al. 2022) whose
// content the study definition fixes, as the report states them.
func cheersItems(s *schemas.Study, e *econSection) []cheersItem {
	var unit *schemas.UnitCosts
	var vs *schemas.ValueSet
	for _, in := range s.Instruments {
		for _, sc := range in.Scales {
			if u, ok := s.UnitCosts[sc.UnitCosts]; ok && unit == nil {
				unit = u
			}
			if v, ok := s.ValueSets[sc.ValueSet]; ok && vs == nil {
				vs = v
			}
		}
	}
	months := s.WaveMonth(s.PrimaryWave()) - s.WaveMonth(s.BaselineWave())
	var items []cheersItem
	add := func(n int, topic, value, where string) {
		items = append(items, cheersItem{Item: n, Topic: topic, Value: value, Where: where})
	}
	add(7, "Comparators", fmt.Sprintf("%s teams against %s teams", s.Arms[0], s.Arms[min(1, len(s.Arms)-1)]), "Incremental results")
	nServices := 0
	if unit != nil {
		nServices = len(unit.Services)
	}
	add(8, "Perspective", "not stated in the study definition; the services costed are those of the unit-cost table ("+strconv.Itoa(nServices)+", under Costs by service)", "Costs by service")
	add(9, "Time horizon", fmt.Sprintf("%s months (%s to %s)", fmtNum(months, 0), waveLabel(s.BaselineWave()), waveLabel(s.PrimaryWave())), "Incremental results")
	add(10, "Discount rate", fmt.Sprintf("QALYs beyond the first year at %s%% a year; costs not discounted", fmtNum(100*s.Economics.Discount(), 1)), "Methods (study definition)")
	if vs != nil {
		add(13, "Valuation of outcomes (value set)", vs.Title+", version "+vs.Version+"; QALYs by the area under the utility curve", "QALYs by arm")
	}
	if unit != nil {
		year := unit.PriceYear
		if s.Economics.PriceYear != 0 {
			year = s.Economics.PriceYear
		}
		add(14, "Unit costs", unit.Title+" ("+unit.Name+"); source: "+strings.TrimSpace(unit.Source), "Costs by service")
		conv := "none"
		if year != unit.PriceYear && s.Uprating != nil {
			conv = "uprated from " + strconv.Itoa(unit.PriceYear) + " by " + s.Uprating.Title
		}
		add(15, "Currency, price year, conversion", unit.Currency+", price year "+strconv.Itoa(year)+"; conversion "+conv, "Costs by service")
	}
	add(17, "Analytics", fmt.Sprintf("net-benefit regression on arm, baseline utility, baseline cost and trust, CR2 by team with Satterthwaite df; two-stage bootstrap (teams within arm, then participants), %d replicates, seed %d", s.Economics.Bootstrap.Replicates, s.Economics.Bootstrap.Seed), "Incremental results")
	add(20, "Characterising uncertainty", "95% CIs of the INB; acceptability curves by both methods"+map[bool]string{true: "; cost-effectiveness plane", false: ""}[e.hasBoot], "Acceptability curve")
	return items
}
