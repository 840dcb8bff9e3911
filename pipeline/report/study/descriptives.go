package study

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/connectingpeople/cpi/pipeline/report"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// DescKey is an outcome at a wave in an arm ("ALL": every arm).
type DescKey struct{ Outcome, Wave, Arm string }

// DescStat is a row of compare's descriptives table.
type DescStat struct {
	N        int64
	Mean, SD float64 // NaN when null
}

// ReadDescriptives reads compare's descriptives table (n, mean and SD of
// each outcome at each wave per arm and ALL, over the participants not
// withdrawn with a value). A generation without it gives an empty map:
// the page then shows no per-arm summaries.
func ReadDescriptives(ctx context.Context, genDir string) (map[DescKey]DescStat, error) {
	out := map[DescKey]DescStat{}
	files, err := warehouse.TableFiles(genDir, "descriptives")
	if err != nil || len(files) == 0 {
		return out, err
	}
	type row struct {
		Outcome string  `col:"outcome"`
		Wave    string  `col:"wave"`
		Arm     string  `col:"arm"`
		N       int64   `col:"n"`
		Mean    float64 `col:"mean"`
		SD      float64 `col:"sd"`
	}
	rows, err := warehouse.ReadRecords[row](ctx, genDir, "descriptives")
	if err != nil {
		return nil, fmt.Errorf("descriptives: %w", err)
	}
	for _, r := range rows {
		out[DescKey{r.Outcome, r.Wave, r.Arm}] = DescStat{N: r.N, Mean: r.Mean, SD: r.SD}
	}
	return out, nil
}

// descCellName names a descriptives n in the page's disclosure control.
func descCellName(outcome, wave, arm string) string {
	return "desc|" + outcome + "|" + wave + "|" + arm
}

// fmtMeanSD is "mean (SD)" with the outcome's decimals, shown only for n of
// at least MinCount (a mean of one to four people is close to their values).
func fmtMeanSD(st DescStat, rule schemas.Disclosure, dec int) string {
	switch {
	case st.N == 0 || math.IsNaN(st.Mean):
		return "—"
	case st.N < int64(rule.MinCount):
		return "n " + rule.SmallSymbol()
	case math.IsNaN(st.SD):
		return fmtNum(st.Mean, dec)
	}
	return fmtNum(st.Mean, dec) + " (" + fmtNum(st.SD, dec) + ")"
}

// outcomeDecimals is how many decimals an outcome's means are shown with:
// 3 for a utility index, else 1.
func outcomeDecimals(outcome string) int {
	if strings.HasSuffix(outcome, ".index") || strings.HasSuffix(outcome, ".qaly") {
		return 3
	}
	return 1
}

// layoutDescCounts adds the per-arm n of every outcome at every wave (the
// outcomes table prints them) to disc, tied to the flow: at the first wave
// n = interviewed − withdrew − missing, at a later wave n = interviewed at
// that wave − missing, "missing" being an implied count (never printed;
// protected when small). A relation is added only when its implied count
// is not negative (otherwise the tables disagree about who is counted and
// no exact relation holds). It returns the cells by key.
func layoutDescCounts(s *schemas.Study, arms []string, desc map[DescKey]DescStat, disc *report.Disclosure) map[DescKey]int {
	cells := map[DescKey]int{}
	first := s.BaselineWave()
	for _, o := range s.Analysis.Outcomes {
		for _, w := range s.Waves {
			for _, a := range arms {
				k := DescKey{o, w, a}
				st, ok := desc[k]
				if !ok {
					continue
				}
				c := disc.Count(descCellName(o, w, a), st.N, avoidCell)
				cells[k] = c
				fc, fv, ok := disc.Lookup(flowCellName("*", a, w))
				if !ok {
					continue
				}
				if w == first {
					wc, wv, ok := disc.Lookup(flowCellName("*", a, flowWithdrawn))
					if miss := fv - wv - st.N; ok && miss >= 0 {
						disc.Sum(fc, c, wc, disc.Implied("missing|"+o+"|"+w+"|"+a, miss))
					}
					continue
				}
				if miss := fv - st.N; miss >= 0 {
					disc.Sum(fc, c, disc.Implied("missing|"+o+"|"+w+"|"+a, miss))
				}
			}
		}
	}
	return cells
}

// iccClause is the ICC clause of a note (shown in the outcomes table).
var iccClause = regexp.MustCompile(`icc=-?[0-9.]+`)

// iccNote finds the ICC in a mixed model's note ("icc=0.119").
var iccNote = regexp.MustCompile(`icc=(-?[0-9.]+)`)

// mixedICC is the mixed model's ICC for an outcome at a wave, "—" when
// effects has none.
func mixedICC(s *schemas.Study, effects []EffectsLine, outcome, wave string) string {
	for i := range effects {
		e := &effects[i]
		if e.Analysis == "mixed" && e.Outcome == outcome && e.Wave == wave {
			if m := iccNote.FindStringSubmatch(e.Note); m != nil {
				return m[1]
			}
		}
	}
	return "—"
}

// armSummary is one outcome's rows of the outcomes table: its per-arm
// summaries at each wave and, at each follow-up wave, the primary
// analysis beside them.
type armSummary struct {
	Outcome, Title string
	Primary        bool
	Rows           []armSummaryRow
}

type armSummaryRow struct {
	Wave                        string
	Arms                        []armCell // per arm shown
	Diff, P, ICC, ES, NAnalysed string
	// Note is why the primary analysis has no estimate, if it has none.
	Note string
}

type armCell struct{ N, MeanSD string }

// sensitivityLine is a row of the compact sensitivity table.
type sensitivityLine struct {
	Outcome, Wave, Analysis, Estimate, P, N, Note string
}

// fmtEstCI is "estimate (low to high)" with 2 decimals, "—" when null.
func fmtEstCI(e *EffectsLine, dec int) string {
	if math.IsNaN(e.Estimate) {
		return "—"
	}
	out := fmtNum(e.Estimate, dec)
	if !math.IsNaN(e.Lo) && !math.IsNaN(e.Hi) {
		out += " (" + fmtNum(e.Lo, dec) + " to " + fmtNum(e.Hi, dec) + ")"
	}
	return out
}

// layoutArmSummaries lays out the outcomes table (every outcome, the
// primary first: per-arm n and mean (SD) at every wave, and at each
// follow-up wave the primary analysis's adjusted difference with its 95%
// CI, p, the mixed model's ICC and Hedges' g) and the compact table of the
// other analyses. The per-arm n are cells of the page's disclosure
// control (descCells, protected with the flow and Table 1).
func (pg *studyPage) layoutArmSummaries(s *schemas.Study, effects []EffectsLine, desc map[DescKey]DescStat, descCells map[DescKey]int) {
	disc := pg.disclosure
	outcomes := append([]string{s.Analysis.PrimaryOutcome}, s.Analysis.Outcomes...)
	seen := map[string]bool{}
	find := func(o, w, analysis, method string) *EffectsLine {
		for i := range effects {
			e := &effects[i]
			if e.Outcome == o && e.Wave == w && e.Analysis == analysis && e.Method == method && e.Term == "arm_intervention" {
				return e
			}
		}
		return nil
	}
	for _, o := range outcomes {
		if seen[o] || o == "" {
			continue
		}
		seen[o] = true
		blk := armSummary{Outcome: o, Title: outcomeTitle(s, o), Primary: o == s.Analysis.PrimaryOutcome}
		dec := outcomeDecimals(o)
		for wi, w := range s.Waves {
			row := armSummaryRow{Wave: waveLabel(w)}
			if len(s.Waves) > 2 && w == s.PrimaryWave() {
				row.Wave += " (primary)"
			}
			any := false
			for _, a := range pg.Arms {
				k := DescKey{o, w, a}
				st, ok := desc[k]
				cell := armCell{N: "—", MeanSD: "—"}
				if ok {
					any = any || st.N > 0
					if c, ok := descCells[k]; ok && disc != nil {
						cell.N = disc.Show(c)
					} else {
						cell.N = report.ShowModelN(st.N, s.Disclosure)
					}
					cell.MeanSD = fmtMeanSD(st, s.Disclosure, dec)
				}
				row.Arms = append(row.Arms, cell)
			}
			if wi > 0 {
				if e := find(o, w, "primary", "cr2"); e != nil {
					any = true
					row.Diff, row.P = fmtEstCI(e, 2), fmtP(e.P)
					row.ICC = mixedICC(s, effects, o, w)
					row.ES = fmtNum(e.Es, 2)
					row.NAnalysed = report.ShowModelN(int64(e.NObs), s.Disclosure)
					if math.IsNaN(e.Estimate) {
						row.Note = reportNote(e.Note)
					}
				}
			}
			if any {
				blk.Rows = append(blk.Rows, row)
			}
		}
		if len(blk.Rows) > 0 {
			pg.ArmSummaries = append(pg.ArmSummaries, blk)
		}
	}

	// The other analyses, compact: one row per outcome × wave × analysis ×
	// method, notes numbered below the table.
	//
	// The ITT analyses (itt_mi, itt_delta) have a section of their own
	// (sections.go: layoutITT), beside the complete cases and with
	// their tipping points, and are not repeated here.
	var methods []string
	if codes, err := s.CodeList("methods"); err == nil {
		for _, c := range codes {
			methods = append(methods, c.Value)
		}
	}
	rows := slices.Clone(effects)
	waveOrder := outcomeWaves(s, effects)
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := &rows[i], &rows[j]
		if x, y := rank(s.Analysis.Outcomes, a.Outcome), rank(s.Analysis.Outcomes, b.Outcome); x != y {
			return x < y
		}
		if x, y := rank(waveOrder, a.Wave), rank(waveOrder, b.Wave); x != y {
			return x < y
		}
		if x, y := rank(s.Analysis.Analyses, a.Analysis), rank(s.Analysis.Analyses, b.Analysis); x != y {
			return x < y
		}
		return rank(methods, a.Method) < rank(methods, b.Method)
	})
	noteNo := map[string]int{}
	for i := range rows {
		e := &rows[i]
		if e.Analysis == "primary" && e.Method == "cr2" || ittAnalyses[e.Analysis] {
			continue
		}
		name := e.Analysis + " (" + e.Method + ")"
		if e.Term != "arm_intervention" {
			name = e.Analysis + ", " + strings.ReplaceAll(e.Term, "_", " ") + " (" + e.Method + ")"
		}
		line := sensitivityLine{Outcome: e.Outcome, Wave: waveLabel(e.Wave), Analysis: name,
			Estimate: fmtEstCI(e, 2), P: fmtP(e.P), N: report.ShowModelN(int64(e.NObs), s.Disclosure)}
		note := strings.Trim(iccClause.ReplaceAllString(reportNote(e.Note), ""), " ;,")
		if note != "" {
			n, ok := noteNo[note]
			if !ok {
				pg.SensitivityNotes = append(pg.SensitivityNotes, note)
				n = len(pg.SensitivityNotes)
				noteNo[note] = n
			}
			line.Note = strconv.Itoa(n)
		}
		pg.Sensitivity = append(pg.Sensitivity, line)
	}
}

// outcomeTitle is "rguk.total — the instrument's title".
func outcomeTitle(s *schemas.Study, o string) string {
	if inst, scale, ok := strings.Cut(o, "."); ok && scale != "" {
		if in, ok := s.Instrument(inst); ok && in.Title != "" {
			return o + " — " + in.Title
		}
	}
	return o
}

// layoutBaselineScores adds Table 1's baseline outcome scores: mean (SD)
// per arm and in all, for each outcome measured at the first wave.
func (pg *studyPage) layoutBaselineScores(s *schemas.Study, desc map[DescKey]DescStat) {
	first := s.BaselineWave()
	for _, o := range s.Analysis.Outcomes {
		all, ok := desc[DescKey{o, first, "ALL"}]
		if !ok || all.N == 0 {
			continue
		}
		dec := outcomeDecimals(o)
		var cells []string
		for _, a := range pg.Arms {
			cells = append(cells, fmtMeanSD(desc[DescKey{o, first, a}], s.Disclosure, dec))
		}
		cells = append(cells, fmtMeanSD(all, s.Disclosure, dec))
		pg.BaselineScores = append(pg.BaselineScores, baselineLevel{Level: outcomeTitle(s, o), Cells: cells})
	}
}
