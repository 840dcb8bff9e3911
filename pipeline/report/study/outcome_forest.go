package study

import (
	"math"
	"strings"

	"github.com/connectingpeople/cpi/pipeline/report/chart"
	"github.com/connectingpeople/cpi/schemas"
)

// outcomeForestLine is a row of the forest plot across outcomes, as its
// CSV gives it.
type outcomeForestLine struct {
	Outcome, SD, Estimate, CI, Weight, Direction string
}

// outcomeForestPoint is an outcome's primary estimate on the standardised
// scale, oriented so that a positive value favours the intervention.
type outcomeForestPoint struct {
	label, outcome  string
	est, lo, hi, se float64
	sd              float64
	sdNote          string // "" for the baseline SD
	reversed, known bool
	ok              bool
}

// scaleBetter is the scale's direction from the instrument definitions:
// "higher", "lower" or "" (not stated).
func scaleBetter(s *schemas.Study, outcome string) string {
	inst, scale, _ := strings.Cut(outcome, ".")
	in, ok := s.Instrument(inst)
	if !ok {
		return ""
	}
	for _, sc := range in.Scales {
		if sc.Name == scale {
			return sc.Better
		}
	}
	return ""
}

// layoutOutcomeForest lays out the forest plot across outcomes: the
// primary analysis (cr2) of every outcome at the primary wave, divided by
// the outcome's SD at baseline over both arms (descriptives, ALL), or at
// the primary wave when it has no baseline (GAS, QALYs), and multiplied by
// −1 for an outcome whose lower values are better, so that every row reads
// "right favours the intervention". Squares are sized by the weight
// 1/SE² on that scale (their area proportional to it).
func (pg *studyPage) layoutOutcomeForest(s *schemas.Study, effects []EffectsLine) {
	sec := pg.Sec
	w := s.PrimaryWave()
	var pts []outcomeForestPoint
	for _, o := range s.Analysis.Outcomes {
		var e *EffectsLine
		for i := range effects {
			x := &effects[i]
			if x.Analysis == analysisPrimary && x.Method == "cr2" && x.Term == "arm_intervention" && x.Outcome == o && x.Wave == w {
				e = x
			}
		}
		if e == nil {
			continue
		}
		p := outcomeForestPoint{label: o, outcome: o}
		st, ok := pg.desc[DescKey{o, s.BaselineWave(), "ALL"}]
		if !ok || s.OutcomeBaseline(o) != o || st.N < 2 || math.IsNaN(st.SD) || st.SD <= 0 {
			st = pg.desc[DescKey{o, w, "ALL"}]
			p.sdNote = waveLabel(w)
		}
		p.sd = st.SD
		switch scaleBetter(s, o) {
		case "higher":
			p.known = true
		case "lower":
			p.known, p.reversed = true, true
		}
		sign := 1.0
		if p.reversed {
			sign = -1
		}
		if p.sd > 0 && !math.IsNaN(e.Estimate) && !math.IsNaN(e.Lo) && !math.IsNaN(e.Hi) {
			p.ok = true
			p.est, p.lo, p.hi, p.se = sign*e.Estimate/p.sd, sign*e.Lo/p.sd, sign*e.Hi/p.sd, e.Se/p.sd
			if p.lo > p.hi {
				p.lo, p.hi = p.hi, p.lo
			}
		}
		pts = append(pts, p)
	}
	if len(pts) == 0 {
		return
	}
	total := 0.0
	for _, p := range pts {
		if p.ok && p.se > 0 {
			total += 1 / (p.se * p.se)
		}
	}
	var sdNotes []string
	for _, p := range pts {
		l := outcomeForestLine{Outcome: p.outcome, SD: fmtNum(p.sd, outcomeDecimals(p.outcome)), Estimate: "—", CI: "—", Weight: "—", Direction: "not stated"}
		if p.ok {
			l.Estimate, l.CI = fmtNum(p.est, 2), fmtNum(p.lo, 2)+" to "+fmtNum(p.hi, 2)
			if p.se > 0 && total > 0 {
				l.Weight = fmtNum(100/(p.se*p.se)/total, 1) + "%"
			}
		}
		switch {
		case p.reversed:
			l.Direction = "lower is better (reversed)"
		case p.known:
			l.Direction = "higher is better"
		}
		if p.sdNote != "" {
			sdNotes = append(sdNotes, p.outcome)
		}
		sec.OutcomeForestRows = append(sec.OutcomeForestRows, l)
	}
	sec.OutcomeForestSD = "baseline SD"
	if len(sdNotes) > 0 {
		sec.OutcomeForestSD += "; " + strings.Join(sdNotes, ", ") + " (no baseline of its own): SD at " + waveLabel(w)
	}
	rows := make([]chart.ForestRow, len(pts))
	for i, p := range pts {
		rows[i] = chart.ForestRow{Label: p.label, Est: p.est, Lo: p.lo, Hi: p.hi, SE: p.se, OK: p.ok, Reversed: p.reversed, Known: p.known}
	}
	sec.OutcomeForest = chart.OutcomeForest(rows, s.Arms)
}
