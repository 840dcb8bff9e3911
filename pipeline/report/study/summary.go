package study

import (
	"math"
	"strconv"

	"github.com/connectingpeople/cpi/pipeline/report"
	"github.com/connectingpeople/cpi/schemas"
)

// summaryPage is the study page's one-paragraph summary of the primary
// result (embedded in studyPage): every number from the tables, every
// count of people as the page's disclosure control shows it.
type summaryPage struct {
	HasSummary bool
	Summary    summaryFacts
}

// summaryFacts fill the summary paragraph (templates/study_front.tmpl).
type summaryFacts struct {
	Trusts                    int
	Teams                     []summaryArm // per arm: teams allocated
	Recruited, Baseline       string       // people, both arms
	Analysed                  string       // people in the primary analysis
	AnalysedArms              []summaryArm // per arm
	Outcome, Title, Wave      string
	Estimate, Lo, Hi, P       string
	Higher                    bool // the estimate is above zero
	Magnitude                 string
	Clear                     bool // the interval excludes zero
	CILevel                   string
	HasITT                    bool
	ITTEstimate, ITTLo, ITTHi string
	ITTN, ITTM                string
}

// summaryArm is an arm with a number.
type summaryArm struct{ Arm, N string }

// layoutSummary lays out the summary from the flow's cells (layoutFlow and
// layoutConsort, protected) and the effects rows: the primary analysis
// (method cr2) of the primary outcome at the primary wave, and itt_mi's.
// Without that effects row there is no summary.
func (pg *studyPage) layoutSummary(s *schemas.Study, effects []EffectsLine) {
	find := func(analysis, method string) *EffectsLine {
		for i := range effects {
			e := &effects[i]
			if e.Outcome == s.Analysis.PrimaryOutcome && e.Wave == s.PrimaryWave() && e.Analysis == analysis && e.Method == method && e.Term == "arm_intervention" {
				return e
			}
		}
		return nil
	}
	e := find("primary", "cr2")
	disc := pg.disclosure
	if e == nil || math.IsNaN(e.Estimate) || disc == nil {
		return
	}
	show := func(name string) string {
		if c, _, ok := disc.Lookup(name); ok {
			return disc.Show(c)
		}
		return "—"
	}
	f := summaryFacts{
		Trusts: len(s.Trusts), Recruited: show(flowCellName("*", "*", flowRecruited)), Baseline: show(flowCellName("*", "*", s.BaselineWave())),
		Outcome: s.Analysis.PrimaryOutcome, Title: outcomeTitle(s, s.Analysis.PrimaryOutcome), Wave: waveLabel(s.PrimaryWave()),
		Estimate: fmtNum(e.Estimate, 2), Lo: fmtNum(e.Lo, 2), Hi: fmtNum(e.Hi, 2), P: fmtP(e.P),
		Higher: e.Estimate > 0, Magnitude: fmtNum(math.Abs(e.Estimate), 2), Clear: e.Lo > 0 || e.Hi < 0,
		CILevel: fmtNum(100*ciLevel(s), 0),
	}
	f.Analysed = report.ShowModelN(int64(e.NObs), s.Disclosure)
	teams := teamsOf(s)
	for _, a := range pg.Arms {
		n := 0
		for k, c := range teams {
			if k.Arm == a {
				n += c
			}
		}
		f.Teams = append(f.Teams, summaryArm{Arm: a, N: strconv.Itoa(n)})
		if _, ok := pg.analysedValue[a]; ok {
			f.AnalysedArms = append(f.AnalysedArms, summaryArm{Arm: a, N: pg.showAnalysed(s, disc, a, flowAnalysed)})
		}
	}
	if itt := find("itt_mi", "cr2_mi"); itt != nil && !math.IsNaN(itt.Estimate) {
		f.HasITT = true
		f.ITTEstimate, f.ITTLo, f.ITTHi = fmtNum(itt.Estimate, 2), fmtNum(itt.Lo, 2), fmtNum(itt.Hi, 2)
		if _, ok := pg.analysedValue["*"]; ok {
			f.ITTN = pg.showAnalysed(s, disc, "*", flowAnalysedITT)
		} else {
			f.ITTN = report.ShowModelN(int64(itt.NObs), s.Disclosure)
		}
	}
	pg.HasSummary, pg.Summary = true, f
}

// ciLevel is the study's confidence level (0.95 by default).
func ciLevel(s *schemas.Study) float64 {
	if l := s.Analysis.CILevel; l > 0 && l < 1 {
		return l
	}
	return 0.95
}
