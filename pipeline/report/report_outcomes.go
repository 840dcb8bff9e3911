package report

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// EffectsLine is a row of the effects table as the report reads it. Wave
// is the follow-up wave the estimate is for; "" (a table without the wave
// column) means the study's last wave.
type EffectsLine struct {
	Analysis, Outcome, Wave, Method, Term string
	Estimate, Se, Df, Lo, Hi, P, Es       float64
	NObs, NClusters                       int32
	esType, note                          string
}

// effectsWave is the wave an effects row is for.
func effectsWave(s *schemas.Study, e *EffectsLine) string {
	if e.Wave == "" {
		return s.Waves[len(s.Waves)-1]
	}
	return e.Wave
}

func readEffectsTable(ctx context.Context, genDir string) ([]EffectsLine, error) {
	var out []EffectsLine
	err := warehouse.ScanTable(ctx, genDir, "effects", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "analysis", "outcome", "method", "term", "estimate", "std_error", "df",
			"ci_low", "ci_high", "p_value", "n_obs", "n_clusters", "effect_size", "effect_size_type", "note")
		if err != nil {
			return err
		}
		for c := range cols {
			want := arrow.FLOAT64
			switch {
			case c < 4 || c >= 13:
				want = arrow.STRING
			case c == 10 || c == 11:
				want = arrow.INT32
			}
			if cols[c].DataType().ID() != want {
				return fmt.Errorf("table effects has unexpected column types")
			}
		}
		var wave *array.String
		if idx := rec.Schema().FieldIndices("wave"); len(idx) > 0 {
			if wave, _ = rec.Column(idx[0]).(*array.String); wave == nil {
				return fmt.Errorf("table effects: column wave has unexpected type")
			}
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
			e := EffectsLine{
				Analysis: str(0, i), Outcome: str(1, i), Method: str(2, i), Term: str(3, i),
				Estimate: num(4, i), Se: num(5, i), Df: num(6, i), Lo: num(7, i), Hi: num(8, i), P: num(9, i),
				NObs: cols[10].(*array.Int32).Value(i), NClusters: cols[11].(*array.Int32).Value(i),
				Es: num(12, i), esType: str(13, i), note: str(14, i),
			}
			if wave != nil && wave.IsValid(i) {
				e.Wave = wave.Value(i)
			}
			out = append(out, e)
		}
		return nil
	})
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
		if w := effectsWave(s, &effects[i]); !slices.Contains(waves, w) {
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
			if effectsWave(s, &effects[i]) == w {
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
