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

// EffectsLine is a row of the effects table as the report reads it (NaN
// for a null number). Wave is the follow-up wave the estimate is for.
type EffectsLine struct {
	Analysis  string  `col:"analysis"`
	Outcome   string  `col:"outcome"`
	Wave      string  `col:"wave"`
	Method    string  `col:"method"`
	Term      string  `col:"term"`
	Estimate  float64 `col:"estimate"`
	Se        float64 `col:"std_error"`
	Df        float64 `col:"df"`
	Lo        float64 `col:"ci_low"`
	Hi        float64 `col:"ci_high"`
	P         float64 `col:"p_value"`
	Es        float64 `col:"effect_size"`
	NObs      int32   `col:"n_obs"`
	NClusters int32   `col:"n_clusters"`
	EsType    string  `col:"effect_size_type"`
	Note      string  `col:"note"`
}

func readEffectsTable(ctx context.Context, genDir string) ([]EffectsLine, error) {
	out, err := warehouse.ReadRecords[EffectsLine](ctx, genDir, "effects")
	if err != nil {
		return nil, fmt.Errorf("effects: %w", err)
	}
	return out, nil
}

// fmtNum shows a number with the given decimals, "—" for null.
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

// outcomeWaves orders the waves of the effects rows: the primary wave
// first, then the study's other waves in its order, then any other,
// sorted.
func outcomeWaves(s *schemas.Study, effects []EffectsLine) []string {
	var waves []string
	for i := range effects {
		if w := effects[i].Wave; !slices.Contains(waves, w) {
			waves = append(waves, w)
		}
	}
	order := append([]string{s.PrimaryWave()}, s.Waves...)
	sort.SliceStable(waves, func(i, j int) bool {
		ri, rj := rank(order, waves[i]), rank(order, waves[j])
		if ri != rj {
			return ri < rj
		}
		return waves[i] < waves[j]
	})
	return waves
}

// LayoutOutcomes groups the effects rows by wave (the primary wave first;
// a heading per wave only when there are several), then outcome (the
// study's order), then analysis (the study's analyses list) and method
// (the order of the methods code list).
func (pg *studyPage) LayoutOutcomes(s *schemas.Study, effects []EffectsLine) {
	pg.HasEffects = len(effects) > 0
	pg.layoutArmSummaries(s, effects, pg.desc, pg.descCells)
	pg.layoutSummary(s, effects)
	var methods []string
	if codes, err := s.CodeList("methods"); err == nil {
		for _, c := range codes {
			methods = append(methods, c.Value)
		}
	}
	waves := outcomeWaves(s, effects)
	pg.ManyWaves = len(waves) > 1
	for _, w := range waves {
		group := outcomeWave{}
		if pg.ManyWaves {
			group.Heading = "At " + waveLabel(w)
			if w == s.PrimaryWave() {
				group.Heading += " (primary wave)"
			}
		}
		var here []EffectsLine
		for i := range effects {
			if effects[i].Wave == w {
				here = append(here, effects[i])
			}
		}
		group.Outcomes = layoutWaveOutcomes(s, here, methods)
		pg.Outcomes = append(pg.Outcomes, group)
	}
}

// layoutWaveOutcomes lays out one wave's effects rows, by outcome.
func layoutWaveOutcomes(s *schemas.Study, effects []EffectsLine, methods []string) []outcomeBlock {
	var outcomes []string
	for _, e := range effects {
		if !slices.Contains(outcomes, e.Outcome) {
			outcomes = append(outcomes, e.Outcome)
		}
	}
	sort.SliceStable(outcomes, func(i, j int) bool {
		return rank(s.Analysis.Outcomes, outcomes[i]) < rank(s.Analysis.Outcomes, outcomes[j])
	})
	var out []outcomeBlock
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
			return rank(methods, rows[i].Method) < rank(methods, rows[j].Method)
		})
		title := o
		if inst, scale, ok := strings.Cut(o, "."); ok && scale != "" {
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
				es = fmtNum(e.Es, 3) + " " + strings.ReplaceAll(e.EsType, "_", " ")
			}
			blk.Rows = append(blk.Rows, outcomeLine{
				Analysis: e.Analysis, Method: e.Method, Term: e.Term,
				Estimate: fmtNum(e.Estimate, 3), CI: ci, P: fmtP(e.P), DF: fmtNum(e.Df, 1),
				N: report.ShowModelN(int64(e.NObs), s.Disclosure), G: strconv.Itoa(int(e.NClusters)),
				ES: es, Note: reportNote(e.Note),
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
		out = append(out, blk)
	}
	return out
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
