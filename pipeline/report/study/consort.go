package study

import (
	"slices"
	"strconv"
	"strings"

	"github.com/connectingpeople/cpi/pipeline/report"
	"github.com/connectingpeople/cpi/schemas"
)

// The flow table's analysed stages (compare writes them): the people in
// the primary analysis (complete cases) and in itt_mi of the primary
// outcome at the primary wave, per trust and arm.
const (
	flowAnalysed    = "analysed"
	flowAnalysedITT = "analysed_itt"
)

// reasonNotRecorded is what the diagram says of withdrawals and losses:
// the exports carry no reason (DESIGN §7).
const reasonNotRecorded = "reason not recorded"

// consortPage is the study page's CONSORT flow diagram for a cluster
// design (CONSORT 2010, cluster extension, figure 1): per arm, teams and
// people at allocation, at each wave, withdrawn and lost, and analysed in
// the primary and the ITT analyses. It is embedded in studyPage.
type consortPage struct {
	// ConsortTeams and ConsortTrusts are the study's teams and trusts
	// (the allocation box).
	ConsortTeams, ConsortTrusts int
	ConsortArms                 []consortArm
	// analysedValue are the analysed counts by arm ("*": both) and
	// stage; ittCell, where the ITT population is the primary wave's plus
	// lost, its implied cell of each arm (and "*"); analysedArms the
	// arms of the diagram (layoutAnalysed).
	analysedValue map[string]map[string]int64
	ittCell       map[string]int
	analysedArms  []string
	// consortTeamsAt are the arms' teams with people at each stage, as
	// printed, for the summary.
	consortTeamsAt map[string]map[string]string
}

// consortArm is one arm's column of the diagram.
type consortArm struct {
	Arm   string
	Boxes []consortBox
}

// consortBox is a box of the diagram: a main box (people and teams at a
// stage) or a side box (Side: people leaving, with the reason).
type consortBox struct {
	Label, N, Teams, Reason string
	Side, Analysed          bool
}

// teamsOf is the study's teams by trust and arm.
func teamsOf(s *schemas.Study) map[FlowKey]int {
	out := map[FlowKey]int{}
	for _, t := range s.Teams {
		out[FlowKey{t.Trust, t.Arm}]++
	}
	return out
}

// layoutConsort adds the analysed boxes' counts to disc (after
// layoutFlow, whose arm totals it ties them to) and returns what fills
// the diagram in once disc is protected. Each arm's analysed count is a
// cell, the arms add up to the both-arms total (the primary model's n,
// which the outcomes table prints, so it is avoided most), and where the
// tables say so the ITT population is the arm's interviewed at the
// primary wave plus lost (interviewed at baseline, not withdrawn): a
// reader can add those, so it is a sum of the system. The per-trust
// analysed counts are not printed.
func (pg *studyPage) layoutConsort(s *schemas.Study, flow map[FlowKey]FlowCounts, disc *report.Disclosure) []func() {
	if len(flow) == 0 {
		return nil
	}
	hasAnalysed := false
	for _, c := range flow {
		if _, ok := c[flowAnalysed]; ok {
			hasAnalysed = true
		}
	}
	keys := flowKeysOrdered(s, flow)
	var arms []string
	for _, a := range s.Arms {
		if slices.ContainsFunc(keys, func(k FlowKey) bool { return k.Arm == a }) {
			arms = append(arms, a)
		}
	}
	first, primary := s.BaselineWave(), s.PrimaryWave()
	if hasAnalysed {
		pg.layoutAnalysed(s, flow, arms, disc)
	}
	teams := teamsOf(s)
	pg.ConsortTeams, pg.ConsortTrusts = len(s.Teams), len(s.Trusts)
	waves := flowWaves(s, flow)
	return []func(){func() {
		pg.consortTeamsAt = map[string]map[string]string{}
		for _, a := range arms {
			// teamsAt is the teams with people at a stage: the trust × arm
			// groups with people (each of its teams when it has several:
			// a range). When a printed stage has a hidden cell that is
			// zero, saying how many groups have people would tell which
			// hidden cells are zero: the count is then a range from what
			// the page prints (a shown count above zero, or one marked
			// small, has people; any other hidden one may not). A hidden
			// count known to be above zero is a bound, not a value (see
			// Disclosure).
			teamsAt := func(stage string, printed bool) string {
				exact := true
				if printed {
					for _, k := range keys {
						if cell, v, ok := disc.Lookup(flowCellName(k.Trust, k.Arm, stage)); ok && k.Arm == a && disc.Hidden(cell) && v == 0 {
							exact = false
						}
					}
				}
				lo, hi := 0, 0
				for _, k := range keys {
					if k.Arm != a {
						continue
					}
					n := max(1, teams[k])
					v := flow[k][stage]
					if exact {
						if v > 0 {
							lo, hi = lo+1, hi+n
						}
						continue
					}
					cell, _, _ := disc.Lookup(flowCellName(k.Trust, k.Arm, stage))
					switch {
					case !disc.Hidden(cell):
						if v > 0 {
							lo, hi = lo+1, hi+n
						}
					case disc.Show(cell) == disc.Rule().SmallSymbol() && disc.Rule().SmallSymbol() != disc.Rule().SecondarySymbol():
						lo, hi = lo+1, hi+n
					default:
						hi += n
					}
				}
				return fmtTeams(lo, hi)
			}
			show := func(stage string) string {
				c, _, ok := disc.Lookup(flowCellName("*", a, stage))
				if !ok {
					return "—"
				}
				return disc.Show(c)
			}
			arm := consortArm{Arm: a}
			allocated := 0
			for k, n := range teams {
				if k.Arm == a {
					allocated += n
				}
			}
			arm.Boxes = append(arm.Boxes,
				consortBox{Label: "Recruited", N: show(flowRecruited), Teams: recruitedTeams(allocated, teamsAt(flowRecruited, true))},
				consortBox{Label: "Not interviewed at baseline", N: show(flowNotFirst), Side: true, Reason: reasonNotRecorded},
				consortBox{Label: "Interviewed at baseline", N: show(first), Teams: teamsAt(first, true)})
			pg.consortTeamsAt[a] = map[string]string{flowRecruited: teamsAt(flowRecruited, true)}
			followups := waves[1:]
			for _, w := range followups {
				if w == primary {
					arm.Boxes = append(arm.Boxes,
						consortBox{Label: "Withdrew", N: show(flowWithdrawn), Side: true, Reason: reasonNotRecorded},
						consortBox{Label: "Lost to follow-up", N: show(flowLost), Side: true, Reason: reasonNotRecorded})
				}
				label := "Followed up"
				if len(followups) > 1 {
					label = "Interviewed at " + waveLabel(w)
				}
				arm.Boxes = append(arm.Boxes, consortBox{Label: label, N: show(w), Teams: teamsAt(w, true)})
			}
			if hasAnalysed {
				for _, st := range []struct{ stage, label string }{
					{flowAnalysed, "Analysed, primary (complete cases)"},
					{flowAnalysedITT, "Analysed, ITT (multiple imputation)"},
				} {
					t := teamsAt(st.stage, false)
					pg.consortTeamsAt[a][st.stage] = t
					arm.Boxes = append(arm.Boxes, consortBox{Label: st.label, N: pg.showAnalysed(s, disc, a, st.stage), Teams: t, Analysed: true})
				}
			}
			pg.ConsortArms = append(pg.ConsortArms, arm)
		}
	}}
}

// recruitedTeams is the allocation box's teams: "5 teams" when every team
// allocated recruited, else "5 teams allocated, 3–5 recruiting".
func recruitedTeams(allocated int, recruiting string) string {
	a := fmtTeams(allocated, allocated)
	if recruiting == a {
		return a
	}
	return a + " allocated, " + strings.TrimSuffix(strings.TrimSuffix(recruiting, "s"), " team") + " recruiting"
}

// layoutAnalysed keeps what the analysed boxes need. Their counts are no
// cells of the page's disclosure control: each is shown only when it
// tells nothing that the counts shown do not bound already.
//
//   - The primary analysis's people of an arm are at most the arm's
//     interviewed at the primary wave and its n with a score at baseline
//     and at that wave (outcomes table): an analysed count equal to such a
//     bound that is hidden would reveal it. The arms' counts add up to the
//     primary model's n, which the outcomes table prints. So the arms'
//     counts are shown only when none is small and every arm's bounds
//     are shown, else all are hidden (the small symbol for a small one).
//   - The ITT population is, where the tables agree, the arm's
//     interviewed at the primary wave plus lost (interviewed at baseline,
//     not withdrawn): an implied cell of that sum, shown exactly when the
//     counts shown determine it (so it tells nothing new; a small one is
//     protected like any hidden count). Where the tables disagree it is
//     hidden.
//   - A zero is shown: there is no one to disclose, and no bound is
//     pinned by it.
func (pg *studyPage) layoutAnalysed(s *schemas.Study, flow map[FlowKey]FlowCounts, arms []string, disc *report.Disclosure) {
	primary := s.PrimaryWave()
	pg.analysedArms = arms
	pg.analysedValue = map[string]map[string]int64{}
	pg.ittCell = map[string]int{}
	for _, a := range append(slices.Clone(arms), "*") {
		arm := a
		if a == "*" {
			arm = ""
		}
		pg.analysedValue[a] = map[string]int64{flowAnalysed: sumStage(flow, arm, flowAnalysed), flowAnalysedITT: sumStage(flow, arm, flowAnalysedITT)}
		pc, pv, ok1 := disc.Lookup(flowCellName("*", a, primary))
		lc, lv, ok2 := disc.Lookup(flowCellName("*", a, flowLost))
		if v := pg.analysedValue[a][flowAnalysedITT]; ok1 && ok2 && pv+lv == v {
			c := disc.Implied(flowCellName("*", a, flowAnalysedITT), v)
			disc.Sum(c, pc, lc)
			pg.ittCell[a] = c
		}
	}
}

// analysedShown reports whether the arms' primary analysed counts may be
// shown: none is small (with the model's n, a small arm's count would be
// the other's subtracted from it), and every arm's interviewed at the
// primary wave, and its n of the primary outcome at baseline and at the
// primary wave, are shown.
func (pg *studyPage) analysedShown(s *schemas.Study, disc *report.Disclosure) bool {
	for _, a := range pg.analysedArms {
		if disc.Small(pg.analysedValue[a][flowAnalysed]) {
			return false
		}
		if c, _, ok := disc.Lookup(flowCellName("*", a, s.PrimaryWave())); !ok || disc.Hidden(c) {
			return false
		}
		for _, w := range []string{s.BaselineWave(), s.PrimaryWave()} {
			if c, ok := pg.descCells[DescKey{s.Analysis.PrimaryOutcome, w, a}]; ok && disc.Hidden(c) {
				return false
			}
		}
	}
	return true
}

// showAnalysed is an analysed box's count as the page prints it (arm "*":
// both arms), once disc, the page's disclosure control, is protected.
func (pg *studyPage) showAnalysed(s *schemas.Study, disc *report.Disclosure, arm, stage string) string {
	v, ok := pg.analysedValue[arm][stage]
	if !ok {
		return "—"
	}
	shown := false
	switch {
	case stage == flowAnalysed && arm == "*":
		return report.ShowModelN(v, s.Disclosure) // the primary model's n
	case stage == flowAnalysed:
		shown = pg.analysedShown(s, disc)
	default:
		if c, ok := pg.ittCell[arm]; ok {
			shown, _ = disc.Determined(c) // an error shows nothing
		}
	}
	switch {
	case v == 0:
		return "0"
	case shown && !disc.Small(v):
		return strconv.FormatInt(v, 10)
	case disc.Small(v):
		return disc.Rule().SmallSymbol()
	}
	return disc.Rule().SecondarySymbol()
}

// ITTModelN is how a page prints the number analysed by itt_mi (n, its
// effects row's n_obs): that population is everyone interviewed at
// baseline and not withdrawn, the flow's analysed_itt over both arms, so
// printing it as a model's n would let a reader subtract the shown
// interviewed at the primary wave and recover a hidden number lost. It is
// shown as the ITT analysed box is (only when the counts shown determine
// it) and hidden when the tables disagree. Call it once the page's
// disclosure control is protected (after LayoutCountsWith).
func (pg *studyPage) ITTModelN(s *schemas.Study, n int64) string {
	if pg.disclosure == nil {
		return s.Disclosure.SecondarySymbol()
	}
	if v, ok := pg.analysedValue["*"][flowAnalysedITT]; !ok || v != n {
		if pg.disclosure.Small(n) {
			return s.Disclosure.SmallSymbol()
		}
		return s.Disclosure.SecondarySymbol()
	}
	return pg.showAnalysed(s, pg.disclosure, "*", flowAnalysedITT)
}

// sumStage is a stage's count over the trusts of arm (every arm: "").
func sumStage(flow map[FlowKey]FlowCounts, arm, stage string) int64 {
	var n int64
	for k, c := range flow {
		if arm == "" || k.Arm == arm {
			n += c[stage]
		}
	}
	return n
}

// fmtTeams is "1 team", "5 teams" or, when the page cannot say exactly,
// "3–5 teams".
func fmtTeams(lo, hi int) string {
	switch {
	case lo != hi:
		return strconv.Itoa(lo) + "–" + strconv.Itoa(hi) + " teams"
	case lo == 1:
		return "1 team"
	}
	return strconv.Itoa(lo) + " teams"
}
