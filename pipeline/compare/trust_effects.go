package compare

import (
	"fmt"
	"math"
	"slices"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/stats"
)

// MethodByTrust is the method of the trust_effects table: one model over
// all trusts, y_w ~ 0 + trust + trust:arm + y_baseline (a common baseline
// slope; without y_baseline for an outcome without a baseline), by OLS with
// CR2 standard errors clustered by team and a Satterthwaite df for each
// trust's arm coefficient (clubSandwich::coef_test).
const MethodByTrust = "cr2_by_trust"

// trustRow is one row of trust_effects; NaN stands for null.
type trustRow struct {
	outcome   string  `col:"outcome"`
	wave      string  `col:"wave"`
	trust     string  `col:"trust"`
	method    string  `col:"method"`
	estimate  float64 `col:"estimate"`
	stdError  float64 `col:"std_error"`
	df        float64 `col:"df"`
	ciLow     float64 `col:"ci_low"`
	ciHigh    float64 `col:"ci_high"`
	pValue    float64 `col:"p_value"`
	nObs      int     `col:"n_obs"`
	nClusters int     `col:"n_clusters"`
	note      string  `col:"note"`
}

// trustDesign is the design of the per-trust model over a frame: the
// trust dummies (in the frame's strata order), the trust × arm columns,
// then y_baseline.
type trustDesign struct {
	f        *colFrame
	t        int
	withBase bool
}

func (d trustDesign) k() int {
	if d.withBase {
		return 2*d.t + 1
	}
	return 2 * d.t
}

func (d trustDesign) row(i int, buf []float64) {
	clear(buf)
	s := int(d.f.stratum[i])
	buf[s] = 1
	buf[d.t+s] = d.f.arm[i]
	if d.withBase {
		buf[2*d.t] = d.f.yBase[i]
	}
}

// trustEffects fits the per-trust model of the outcome at the wave over
// the complete cases (the primary analysis's population) and returns one
// row per trust of the study (and any other trust present).
func (c *outcomeComparison) trustEffects() []trustRow {
	// The complete cases' frame of the analyses, when one is still held
	// (Compare calls this before the last of them lets it go), else a new
	// one.
	f := c.frames[completeCases.Key]
	var g *teamGroups
	if f == nil {
		f = buildColFrame(c.s, c.d, c.index, c.wave, c.hasBase, completeCases, nil, c.pool)
		g = newTeamGroups(f, f.arm)
		defer f.release(c.pool)
	} else {
		g = c.teamGroups(TermArm, f, f.arm)
	}
	trusts := slices.Clone(c.s.TrustCodes())
	for _, t := range f.strata {
		if !slices.Contains(trusts, t) {
			trusts = append(trusts, t)
		}
	}
	rows := make([]trustRow, len(trusts))
	// Per trust: participants, and the teams of each arm.
	nObs := make([]int, len(f.strata))
	teams := make([][2]int, len(f.strata))
	seen := make([][2]bool, len(f.teams)*len(f.strata)) // by cluster, trust and arm
	for gi, s := range g.stratum {
		nObs[s] += g.n[gi]
		a, cs := int(g.term[gi]), g.cluster[gi]*len(f.strata)+int(s)
		if !seen[cs][a] {
			seen[cs][a] = true
			teams[s][a]++
		}
	}
	nan := math.NaN()
	var fit *stats.SuffFit
	var cr2 *stats.CR2Result
	var fitErr error
	des := trustDesign{f: f, t: len(f.strata), withBase: c.hasBase}
	if len(f.rows) > des.k() && len(f.teams) >= 2 {
		fit, cr2, fitErr = fitByTrust(des, g)
	} else {
		fitErr = fmt.Errorf("too few participants or teams: %d participants, %d teams for %d coefficients", len(f.rows), len(f.teams), des.k())
	}
	for ti, trust := range trusts {
		r := trustRow{outcome: c.outcome, wave: c.waveName, trust: trust, method: MethodByTrust,
			estimate: nan, stdError: nan, df: nan, ciLow: nan, ciHigh: nan, pValue: nan}
		rows[ti] = r
		s := slices.Index(f.strata, trust)
		if s < 0 {
			rows[ti].note = "no participants with " + c.outcome + " in the analysis population"
			continue
		}
		nI, nC := teams[s][1], teams[s][0]
		rows[ti].nObs, rows[ti].nClusters = nObs[s], nI+nC
		switch {
		case nI == 0 || nC == 0:
			rows[ti].note = fmt.Sprintf("not estimable: %d %s and %d %s teams in the trust", nI, c.s.Arms[0], nC, c.s.Arms[1])
			continue
		case fitErr != nil:
			rows[ti].note = "fit failed: " + fitErr.Error()
			continue
		case (nI < 2 || nC < 2) && !des.withBase:
			rows[ti].note = fmt.Sprintf("not estimable: %d %s and %d %s team(s) in the trust and no baseline: the team means fit the outcome exactly, so nothing is left to estimate the arm effect's error", nI, c.s.Arms[0], nC, c.s.Arms[1])
			continue
		}
		j := des.t + s
		if slices.Contains(fit.Aliased, j) {
			rows[ti].note = "not estimable: the trust's arm column is aliased"
			continue
		}
		t := cr2.Test(j, c.level())
		rows[ti].estimate, rows[ti].stdError, rows[ti].df = t.Estimate, t.StdError, t.DF
		rows[ti].ciLow, rows[ti].ciHigh, rows[ti].pValue = t.CILow, t.CIHigh, t.PValue
		var notes []string
		if nI < 2 || nC < 2 {
			notes = append(notes, fmt.Sprintf("%d %s and %d %s team(s) in the trust: the arm effect is confounded with the teams; the CR2 standard error carries only the baseline slope's uncertainty, not the variation between teams", nI, c.s.Arms[0], nC, c.s.Arms[1]))
		}
		if t.DF < 4 {
			notes = append(notes, fmt.Sprintf("Satterthwaite df %.1f: few teams carry the estimate, so the interval is wide", t.DF))
		}
		rows[ti].note = joinNotes(notes...)
	}
	return rows
}

// fitByTrust fits the per-trust model from per-team sums: the design's
// rows are constant within the groups of team, trust and arm (g) but for
// y_baseline, its last column.
func fitByTrust(des trustDesign, g *teamGroups) (*stats.SuffFit, *stats.CR2Result, error) {
	k := des.k()
	cs, err := stats.NewClusterSums(k, false)
	if err != nil {
		return nil, nil, err
	}
	vary := -1
	if des.withBase {
		vary = k - 1
	}
	m, err := g.moments(des.f) // the primary model's, when its frame is held
	if err == nil {
		err = cs.AddMoments(m, g.cluster, func(gi int, buf []float64) { des.row(int(g.first[gi]), buf) }, vary)
	}
	if err != nil {
		return nil, nil, err
	}
	fit, err := stats.SuffOLS(cs)
	if err != nil {
		return nil, nil, err
	}
	cr2, err := fit.CR2()
	if err != nil {
		return nil, nil, err
	}
	return fit, cr2, nil
}

// writeTrustEffects writes the trust_effects table sorted by its key.
func writeTrustEffects(env warehouse.Env, tx *warehouse.Tx, rows []trustRow) error {
	return warehouse.WriteRecords(env, tx, "trust_effects", rows)
}
