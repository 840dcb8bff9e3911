package report

// This file holds every remaining use of the compare stage and of stats in
// the report package, and nothing else: the forest plot's per-trust fits
// (trustForestPoints) and the balance table's small-cell check
// (balanceSmallCells), which read participants and scores through
// compare's analysis frame. Both move to tables compare writes
// (trust_effects, with a cluster-aware method; balance's n_intervention
// and n_control); then this file is deleted and LoadStudyReport reads
// those tables instead.

import (
	"context"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/pipeline/compare"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
	"github.com/connectingpeople/cpi/stats"
)

// legacyData is compare's analysis data of the primary outcome.
type legacyData struct {
	d *compare.CompareData
}

// readLegacyData reads participants and the primary outcome's scores as
// compare does.
func readLegacyData(ctx context.Context, env warehouse.Env, genDir string) (*legacyData, error) {
	d, err := compare.ReadCompareData(ctx, env, genDir, []string{env.Study.Analysis.PrimaryOutcome})
	if err != nil {
		return nil, err
	}
	return &legacyData{d: d}, nil
}

// trustForestPoints fits the primary model y_followup ~ arm + y_baseline
// within each trust by OLS with classical standard errors (a trust has
// one team per arm: no cluster-robust error there).
func (l *legacyData) trustForestPoints(s *schemas.Study) []forestPoint {
	o := s.Analysis.PrimaryOutcome
	hasBase := compare.OutcomeHasBaseline(s, o)
	f := compare.BuildFrame(s, l.d, o, hasBase, nil)
	level := 0.95
	if lv := s.Analysis.CILevel; lv > 0 && lv < 1 {
		level = lv
	}
	var pts []forestPoint
	for _, trust := range compare.StrataOrder(s, f.Trusts) {
		var rows []int
		for i, t := range f.Trusts {
			if t == trust {
				rows = append(rows, i)
			}
		}
		p := forestPoint{label: trust}
		k := 2
		if hasBase {
			k = 3
		}
		nArm := 0.0
		for _, i := range rows {
			nArm += f.Arm[i]
		}
		switch {
		case nArm < 2 || float64(len(rows))-nArm < 2:
			p.note = "not estimable: needs participants in both arms"
		case len(rows) <= k:
			p.note = "not estimable: too few participants"
		default:
			x := mat.NewDense(len(rows), k, nil)
			y := make([]float64, len(rows))
			for r, i := range rows {
				x.Set(r, 0, 1)
				x.Set(r, 1, f.Arm[i])
				if hasBase {
					x.Set(r, 2, f.YBase[i])
				}
				y[r] = f.YFU[i]
			}
			fit, err := stats.OLS(x, y, nil)
			if err != nil {
				p.note = "not estimable: " + err.Error()
				break
			}
			ct := fit.CoefTest(1, level)
			p.est, p.lo, p.hi, p.ok = ct.Estimate, ct.CILow, ct.CIHigh, true
		}
		pts = append(pts, p)
	}
	return pts
}

// balanceSmallCells reports, for a balance row's covariate ("name=level"
// or a 0/1 covariate's name), whether fewer than the study's MinCount
// people of an arm in the outcome's complete cases (not withdrawn, with
// baseline and follow-up) have it, or lack it.
func (l *legacyData) balanceSmallCells(s *schemas.Study, outcome string) func(string) bool {
	d := l.d
	base, fu := d.Base[outcome], d.Fu[outcome]
	n := map[string]int{}
	has := map[[2]string]int{}
	for i := range d.Parts {
		p := &d.Parts[i]
		if p.Withdrawn || i >= len(fu) || math.IsNaN(fu[i]) || (base != nil && math.IsNaN(base[i])) {
			continue
		}
		n[p.Arm]++
		for _, c := range append(slices.Clone(compare.CategoricalCovariates), compare.NumericCovariates...) {
			lv, num := p.Covariate(c)
			switch {
			case lv != "":
				has[[2]string{c + "=" + lv, p.Arm}]++
			case num == 1:
				has[[2]string{c, p.Arm}]++
			}
		}
	}
	min := s.Disclosure.MinCount
	return func(cov string) bool {
		if !strings.Contains(cov, "=") && !slices.Contains(compare.NumericCovariates, cov) {
			return false // a continuous covariate (the baseline score): no count to give away
		}
		for _, arm := range s.Arms {
			k := has[[2]string{cov, arm}]
			if k < min || n[arm]-k < min {
				return true
			}
		}
		return false
	}
}
