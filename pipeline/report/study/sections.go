package study

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/connectingpeople/cpi/pipeline/report"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// sections are the study report's results sections after the outcomes
// table (issue 17): reliability, missing data by arm and wave, the ITT
// analyses with their tipping points, the forest plot across outcomes and
// the economic evaluation (econ.go). Each is read from a table
// compare or score wrote; every count of people it prints is a cell of the
// page's one disclosure pass (layoutSectionCounts, called by
// LayoutCountsWith before Protect).
type sections struct {
	// Reliability: Cronbach's alpha of every multi-item scale, pooled over
	// trusts (reliability rows with trust ALL), one row per scale and a
	// cell per wave.
	RelWaves    []string
	Reliability []relLine

	// Missing: missing values of every outcome by wave and arm
	// (missing_data); MissHeads are the column headings (arm, wave) and
	// MissExpected the arms' expected sizes, in words.
	MissHeads    []string
	Missing      []missLine
	MissExpected string

	// ITT: per outcome and follow-up wave, the complete-case primary
	// estimate beside itt_mi, with the tipping δ from tipping_point.
	ITT      []ittLine
	ITTWaves bool   // several follow-up waves: the wave is named
	ITTText  string // the primary outcome's result, in words
	ITTM     string // the imputations pooled (m), when the same for all

	// OutcomeForest is the forest plot across outcomes.
	OutcomeForest     template.HTML
	OutcomeForestRows []outcomeForestLine
	OutcomeForestSD   string // which SD each outcome is divided by

	Econ *econSection

	rel     []relRow
	miss    []missRow
	itt     []ittRow
	tipping []tippingRow
}

type relLine struct {
	Scale string
	Cells []string // per wave: "0.87 (0.83 to 0.90), n 120"
}

type missLine struct {
	Outcome string
	Cells   []string // per arm × wave: "12 (15.0%)"
}

type ittLine struct {
	Outcome, Wave, CC, ITT, P, FMI, N, Tip string
}

// relRow is a row of the reliability table.
type relRow struct {
	Instrument string  `col:"instrument"`
	Scale      string  `col:"scale"`
	Wave       string  `col:"wave"`
	Trust      string  `col:"trust"`
	N          int32   `col:"n"`
	Alpha      float64 `col:"alpha"`
	Lo         float64 `col:"alpha_ci_low"`
	Hi         float64 `col:"alpha_ci_high"`
}

// missRow is a row of the missing_data table.
type missRow struct {
	Outcome  string  `col:"outcome"`
	Wave     string  `col:"wave"`
	Arm      string  `col:"arm"`
	Expected int32   `col:"n_expected"`
	Observed int32   `col:"n_observed"`
	Missing  int32   `col:"n_missing"`
	Pct      float64 `col:"pct_missing"`
}

// ittRow is an effects row with the multiple-imputation columns.
type ittRow struct {
	Analysis string  `col:"analysis"`
	Outcome  string  `col:"outcome"`
	Wave     string  `col:"wave"`
	Method   string  `col:"method"`
	Term     string  `col:"term"`
	Estimate float64 `col:"estimate"`
	Lo       float64 `col:"ci_low"`
	Hi       float64 `col:"ci_high"`
	P        float64 `col:"p_value"`
	NObs     int32   `col:"n_obs"`
	FMI      float64 `col:"fmi"`
	M        int32   `col:"m"`
}

// tippingRow is a row of the tipping_point table.
type tippingRow struct {
	Outcome string  `col:"outcome"`
	Wave    string  `col:"wave"`
	Delta   float64 `col:"delta"`
	DeltaSD float64 `col:"delta_sd"`
	Est     float64 `col:"estimate"`
	Lo      float64 `col:"ci_low"`
	Hi      float64 `col:"ci_high"`
}

// readOptional reads a table into T's rows, none when it was not written.
func readOptional[T any](ctx context.Context, genDir, table string) ([]T, error) {
	files, err := warehouse.TableFiles(genDir, table)
	if err != nil || len(files) == 0 {
		return nil, err
	}
	rows, err := warehouse.ReadRecords[T](ctx, genDir, table)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", table, err)
	}
	return rows, nil
}

// readSections reads the tables of the results sections.
func readSections(ctx context.Context, env warehouse.Env, genDir string) (*sections, error) {
	sec := &sections{}
	var err error
	if sec.rel, err = readOptional[relRow](ctx, genDir, "reliability"); err != nil {
		return nil, err
	}
	if sec.miss, err = readOptional[missRow](ctx, genDir, "missing_data"); err != nil {
		return nil, err
	}
	if sec.itt, err = readOptional[ittRow](ctx, genDir, "effects"); err != nil {
		return nil, err
	}
	if sec.tipping, err = readOptional[tippingRow](ctx, genDir, "tipping_point"); err != nil {
		return nil, err
	}
	if sec.Econ, err = readEcon(ctx, env, genDir); err != nil {
		return nil, err
	}
	return sec, nil
}

// layoutSectionCounts adds the sections' counts of people to disc and
// returns what fills them in once disc is protected:
//
//   - reliability: each scale's complete cases at a wave, a count of its
//     own (alpha is shown only beside a shown n of at least MinCount);
//   - missing data: each arm's expected participants (interviewed at the
//     first wave, not withdrawn) = the flow's interviewed at baseline −
//     withdrew, and expected = observed + missing at every outcome and
//     wave, observed being the descriptives' n of the same cell when they
//     agree (the same people), else an implied count; a percentage only
//     beside a shown count of a shown expected size;
//   - the economic evaluation's service use (layoutEconCounts).
func (pg *studyPage) layoutSectionCounts(s *schemas.Study, disc *report.Disclosure) []func() {
	sec := pg.Sec
	if sec == nil {
		return nil
	}
	var fill []func()
	fill = append(fill, sec.layoutReliability(s, disc))
	fill = append(fill, sec.layoutMissing(s, pg.Arms, disc))
	fill = append(fill, pg.layoutEconCounts(s, disc))
	return fill
}

// scaleName is instrument.scale.
func scaleName(instrument, scale string) string { return instrument + "." + scale }

func (sec *sections) layoutReliability(s *schemas.Study, disc *report.Disclosure) func() {
	type key struct{ scale, wave string }
	rows := map[key]relRow{}
	var scales []string
	for _, r := range sec.rel {
		if r.Trust != "ALL" {
			continue
		}
		k := key{scaleName(r.Instrument, r.Scale), r.Wave}
		rows[k] = r
		if !slices.Contains(scales, k.scale) {
			scales = append(scales, k.scale)
		}
	}
	order := func(name string) int {
		inst, _, _ := strings.Cut(name, ".")
		return slices.IndexFunc(s.Instruments, func(in *schemas.Instrument) bool { return in.Name == inst })
	}
	slices.SortStableFunc(scales, func(a, b string) int { return order(a) - order(b) })
	for _, w := range s.Waves {
		for _, sc := range scales {
			if _, ok := rows[key{sc, w}]; ok {
				sec.RelWaves = append(sec.RelWaves, w)
				break
			}
		}
	}
	cells := map[key]int{}
	for k, r := range rows {
		cells[k] = disc.Count("rel|"+k.scale+"|"+k.wave, int64(r.N), avoidCell)
	}
	return func() {
		for _, sc := range scales {
			line := relLine{Scale: sc}
			for _, w := range sec.RelWaves {
				r, ok := rows[key{sc, w}]
				if !ok {
					line.Cells = append(line.Cells, "—")
					continue
				}
				c := cells[key{sc, w}]
				n := disc.Show(c)
				if disc.Hidden(c) || r.N < int32(disc.Rule().MinCount) || math.IsNaN(r.Alpha) {
					line.Cells = append(line.Cells, "—; n "+n)
					continue
				}
				a := fmtNum(r.Alpha, 2)
				if !math.IsNaN(r.Lo) && !math.IsNaN(r.Hi) {
					a += " (" + fmtNum(r.Lo, 2) + " to " + fmtNum(r.Hi, 2) + ")"
				}
				line.Cells = append(line.Cells, a+"; n "+n)
			}
			sec.Reliability = append(sec.Reliability, line)
		}
	}
}

func (sec *sections) layoutMissing(s *schemas.Study, arms []string, disc *report.Disclosure) func() {
	type key struct{ outcome, wave, arm string }
	rows := map[key]missRow{}
	for _, r := range sec.miss {
		rows[key{r.Outcome, r.Wave, r.Arm}] = r
	}
	if len(rows) == 0 {
		return func() {}
	}
	// The follow-up waves: missing values at the first are Table 1's
	// matter, and with the first wave's n of the outcomes table they
	// would give the withdrawn away (expected = n + missing).
	waves := s.FollowupWaves()
	var outcomes []string
	for _, o := range s.Analysis.Outcomes {
		for _, w := range waves {
			if _, ok := rows[key{o, w, arms[0]}]; ok && !slices.Contains(outcomes, o) {
				outcomes = append(outcomes, o)
			}
		}
	}
	// measured: an outcome anyone has at the wave (GAS has no baseline,
	// QALYs only after it); other cells say "not measured".
	measured := func(o, w string) bool {
		for _, a := range arms {
			if rows[key{o, w, a}].Observed > 0 {
				return true
			}
		}
		return false
	}
	// public: the arm's expected size follows from shown counts (the
	// flow's interviewed at baseline and withdrew, both shown): only then
	// is it printed, and percentages of it.
	expValue := map[string]int32{}
	public := map[string]func() bool{}
	zeroHidden := map[key]bool{}
	cells := map[key]int{}
	for _, o := range outcomes {
		for _, w := range waves {
			if !measured(o, w) {
				continue
			}
			for _, a := range arms {
				r, ok := rows[key{o, w, a}]
				if !ok {
					continue
				}
				name := "md|expected|" + a
				if v, seen := expValue[a]; seen && v != r.Expected {
					name += "|" + o + "|" + w
				}
				ec := disc.Implied(name, int64(r.Expected))
				if _, seen := expValue[a]; !seen {
					expValue[a] = r.Expected
					public[a] = func() bool { return false }
					fc, fv, ok1 := disc.Lookup(flowCellName("*", a, s.BaselineWave()))
					wc, wv, ok2 := disc.Lookup(flowCellName("*", a, flowWithdrawn))
					if ok1 && ok2 && fv-wv == int64(r.Expected) {
						disc.Sum(fc, ec, wc)
						public[a] = func() bool { return !disc.Hidden(fc) && !disc.Hidden(wc) }
					}
				}
				// A zero missing beside the outcomes table's n gives the
				// expected size, and with the flow's interviewed at baseline
				// the withdrawn: when those are small it is not printed (the
				// engine never hides a zero).
				mname := "md|missing|" + o + "|" + w + "|" + a
				var mc int
				if _, wv, ok := disc.Lookup(flowCellName("*", a, flowWithdrawn)); ok && r.Missing == 0 && disc.Small(wv) {
					mc = disc.Implied(mname, 0)
					zeroHidden[key{o, w, a}] = true
				} else {
					mc = disc.Count(mname, int64(r.Missing), avoidCell)
				}
				cells[key{o, w, a}] = mc
				oc, ov, ok := disc.Lookup(descCellName(o, w, a))
				if !ok || ov != int64(r.Observed) {
					oc = disc.Implied("md|observed|"+o+"|"+w+"|"+a, int64(r.Observed))
				}
				if r.Observed+r.Missing == r.Expected {
					disc.Sum(ec, oc, mc)
				}
			}
		}
	}
	return func() {
		for _, w := range waves {
			for _, a := range arms {
				sec.MissHeads = append(sec.MissHeads, a+", "+waveLabel(w))
			}
		}
		var exp []string
		for _, a := range arms {
			if v, ok := expValue[a]; ok {
				n := disc.Rule().SecondarySymbol()
				if public[a]() {
					n = strconv.Itoa(int(v))
				}
				exp = append(exp, a+" "+n)
			}
		}
		sec.MissExpected = strings.Join(exp, ", ")
		for _, o := range outcomes {
			line := missLine{Outcome: o}
			for _, w := range waves {
				for _, a := range arms {
					c, ok := cells[key{o, w, a}]
					switch {
					case !measured(o, w):
						line.Cells = append(line.Cells, "not measured")
					case !ok:
						line.Cells = append(line.Cells, "—")
					case zeroHidden[key{o, w, a}]:
						line.Cells = append(line.Cells, disc.Rule().SecondarySymbol())
					default:
						r := rows[key{o, w, a}]
						cell := disc.Show(c)
						if !disc.Hidden(c) && public[a]() && r.Expected == expValue[a] && !math.IsNaN(r.Pct) {
							cell += " (" + fmtNum(r.Pct, 1) + "%)"
						}
						line.Cells = append(line.Cells, cell)
					}
				}
			}
			sec.Missing = append(sec.Missing, line)
		}
	}
}

// layoutITT lays out the ITT table: at every follow-up wave, each
// outcome's complete-case primary estimate (cr2) beside itt_mi's pooled
// estimate, its p, fraction of missing information and n, and the tipping
// δ from tipping_point.
func (sec *sections) layoutITT(s *schemas.Study, modelN func(int64) string) {
	find := func(analysis, method, o, w string) *ittRow {
		for i := range sec.itt {
			r := &sec.itt[i]
			if r.Analysis == analysis && r.Method == method && r.Outcome == o && r.Wave == w && r.Term == "arm_intervention" {
				return r
			}
		}
		return nil
	}
	waves := s.FollowupWaves()
	sec.ITTWaves = len(waves) > 1
	ms := map[int32]bool{}
	for _, w := range waves {
		for _, o := range s.Analysis.Outcomes {
			mi := find("itt_mi", "cr2_mi", o, w)
			if mi == nil {
				continue
			}
			dec := max(2, outcomeDecimals(o))
			line := ittLine{Outcome: o, Wave: waveLabel(w), CC: "—", ITT: "—", P: fmtP(mi.P), FMI: fmtNum(mi.FMI, 2),
				N: modelN(int64(mi.NObs)), Tip: "—"}
			if cc := find(analysisPrimary, "cr2", o, w); cc != nil {
				line.CC = fmtCI(cc.Estimate, cc.Lo, cc.Hi, dec)
			}
			line.ITT = fmtCI(mi.Estimate, mi.Lo, mi.Hi, dec)
			line.Tip = sec.tippingDelta(o, w, dec)
			if mi.M > 0 {
				ms[mi.M] = true
			}
			sec.ITT = append(sec.ITT, line)
			if o == s.Analysis.PrimaryOutcome && w == s.PrimaryWave() {
				sec.ITTText = ittSentence(s, line, mi)
			}
		}
	}
	if len(ms) == 1 {
		for m := range ms {
			sec.ITTM = fmt.Sprint(m)
		}
	}
}

// ittAnalyses are the analyses of the ITT section, left out of the
// sensitivity table.
var ittAnalyses = map[string]bool{"itt_mi": true, "itt_delta": true}

// fmtCI is "estimate (low to high)", "—" when the estimate is null.
func fmtCI(est, lo, hi float64, dec int) string {
	return fmtEstCI(&EffectsLine{Estimate: est, Lo: lo, Hi: hi}, dec)
}

// includesZero says whether a tipping row's interval includes 0.
func (r tippingRow) includesZero() bool { return r.Lo <= 0 && r.Hi >= 0 }

// tippingDelta is the tipping δ of an outcome at a wave, read from
// tipping_point: when the interval at δ = 0 excludes 0, the smallest |δ|
// whose interval includes 0 ("the conclusion tips"); when it already
// includes 0, the smallest |δ| whose interval excludes 0 ("significant
// from"); "none in the grid" when no δ does.
func (sec *sections) tippingDelta(o, w string, dec int) string {
	var rows []tippingRow
	for _, r := range sec.tipping {
		if r.Outcome == o && r.Wave == w && !math.IsNaN(r.Est) && !math.IsNaN(r.Lo) && !math.IsNaN(r.Hi) {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return "—"
	}
	slices.SortStableFunc(rows, func(a, b tippingRow) int {
		x, y := math.Abs(a.DeltaSD), math.Abs(b.DeltaSD)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		case a.DeltaSD < b.DeltaSD:
			return -1
		case a.DeltaSD > b.DeltaSD:
			return 1
		}
		return 0
	})
	zero := slices.IndexFunc(rows, func(r tippingRow) bool { return r.DeltaSD == 0 })
	want := false // the interval at δ = 0 excludes 0: look for one that includes it
	if zero >= 0 && rows[zero].includesZero() {
		want = true
	}
	for _, r := range rows {
		if r.DeltaSD != 0 && r.includesZero() != want {
			d := fmtNum(r.Delta, dec) + " (" + fmtNum(r.DeltaSD, 1) + " SD)"
			if want {
				return "excludes 0 from δ = " + d
			}
			return "includes 0 from δ = " + d
		}
	}
	if want {
		return "includes 0 at every δ"
	}
	return "excludes 0 at every δ"
}

// ittSentence is the primary outcome's ITT result in words.
func ittSentence(s *schemas.Study, l ittLine, mi *ittRow) string {
	out := fmt.Sprintf("With missing values imputed (%s imputations), the ITT difference in %s was %s, p %s, against %s in complete cases; the fraction of missing information was %s.",
		fmt.Sprint(mi.M), s.Analysis.PrimaryOutcome, l.ITT, pWords(l.P), l.CC, l.FMI)
	switch {
	case strings.HasPrefix(l.Tip, "excludes 0 from"):
		out += " Its interval already includes 0 (no difference); it would exclude 0 only if the " + s.Arms[0] + " arm's missing values were shifted by δ = " + strings.TrimPrefix(l.Tip, "excludes 0 from δ = ") + "."
	case strings.HasPrefix(l.Tip, "includes 0 from"):
		out += " The conclusion tips (the interval includes 0) when the " + s.Arms[0] + " arm's missing values are shifted by δ = " + strings.TrimPrefix(l.Tip, "includes 0 from δ = ") + "."
	case l.Tip == "includes 0 at every δ":
		out += " Its interval includes 0 at every shift δ of the grid."
	case l.Tip == "excludes 0 at every δ":
		out += " Its interval excludes 0 at every shift δ of the grid: the conclusion does not tip."
	}
	return out
}

// pWords is a p as written after "p": "= 0.154" or "< 0.001".
func pWords(p string) string {
	if strings.HasPrefix(p, "<") {
		return "< " + strings.TrimPrefix(p, "<")
	}
	return "= " + p
}
