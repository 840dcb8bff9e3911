package study

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// trustEffectsMethod is the method of the per-trust estimates the forest
// plot shows (compare's trust_effects table: one model over all trusts,
// CR2 by team, a Satterthwaite df per trust).
const trustEffectsMethod = "cr2_by_trust"

// trustEffect is a row of the trust_effects table, as the forest reads it.
type trustEffect struct {
	Outcome  string  `col:"outcome"`
	Wave     string  `col:"wave"`
	Trust    string  `col:"trust"`
	Method   string  `col:"method"`
	Estimate float64 `col:"estimate"`
	CILow    float64 `col:"ci_low"`
	CIHigh   float64 `col:"ci_high"`
	Note     string  `col:"note"`
}

// readTrustForest reads the forest plot's per-trust points from the
// trust_effects table: the primary outcome at the primary wave, the trusts
// in the study's order. A trust without a row is left out; a row without
// an estimate keeps its note.
func readTrustForest(ctx context.Context, s *schemas.Study, genDir string) ([]forestPoint, error) {
	rows, err := warehouse.ReadRecords[trustEffect](ctx, genDir, "trust_effects")
	if err != nil {
		return nil, fmt.Errorf("read trust_effects: %w", err)
	}
	byTrust := map[string]forestPoint{}
	for _, r := range rows {
		if r.Outcome != s.Analysis.PrimaryOutcome || r.Wave != s.PrimaryWave() || r.Method != trustEffectsMethod {
			continue
		}
		p := forestPoint{label: r.Trust, note: r.Note}
		if !math.IsNaN(r.Estimate) && !math.IsNaN(r.CILow) && !math.IsNaN(r.CIHigh) {
			p.est, p.lo, p.hi, p.ok = r.Estimate, r.CILow, r.CIHigh, true
		}
		byTrust[r.Trust] = p
	}
	var pts []forestPoint
	for _, t := range s.TrustCodes() {
		if p, ok := byTrust[t]; ok {
			pts = append(pts, p)
		}
	}
	return pts, nil
}

// balanceCounts are the balance table's participant counts of the weighted
// analysis of the primary outcome at the primary wave, by covariate row
// and arm (n_intervention, n_control).
type balanceCounts struct {
	n map[string][2]int32
}

// smallCells returns whether a balance row's covariate (a dummy
// "name=level" or a 0/1 covariate) is had, or not had, by fewer than the
// study's minimum count of one arm's participants in the analysis: its
// SMD and variance ratio would then give that count away. A continuous
// covariate (the baseline score) has no count to give away; its counts
// are the arms' sizes.
func (b balanceCounts) smallCells(s *schemas.Study) func(string) bool {
	binary := map[string]bool{}
	for _, d := range s.DemographicFields() {
		if d.Binary {
			binary[d.Name] = true
		}
	}
	isCount := func(cov string) bool {
		return strings.Contains(cov, "=") || binary[cov]
	}
	// The arms' sizes: a continuous covariate's counts; else the sum of
	// the levels of one categorical covariate (every participant of the
	// analysis has one level of each).
	var size [2]int32
	found := false
	covs := make([]string, 0, len(b.n))
	for c := range b.n {
		covs = append(covs, c)
	}
	slices.Sort(covs)
	for _, c := range covs {
		if !isCount(c) {
			size, found = b.n[c], true
			break
		}
	}
	if !found {
		sums := map[string][2]int32{}
		for _, c := range covs {
			name, _, ok := strings.Cut(c, "=")
			if !ok {
				continue
			}
			v := sums[name]
			v[0] += b.n[c][0]
			v[1] += b.n[c][1]
			sums[name] = v
		}
		for _, v := range sums {
			size = [2]int32{max(size[0], v[0]), max(size[1], v[1])}
		}
	}
	min := int32(s.Disclosure.MinCount)
	return func(cov string) bool {
		if !isCount(cov) {
			return false
		}
		k := b.n[cov]
		for a := range 2 {
			if k[a] < min || size[a]-k[a] < min {
				return true
			}
		}
		return false
	}
}

// balanceCount is a balance row's analysis, wave, covariate and counts.
type balanceCount struct {
	Analysis  string `col:"analysis"`
	Wave      string `col:"wave"`
	Covariate string `col:"covariate"`
	NI        int32  `col:"n_intervention"`
	NC        int32  `col:"n_control"`
}

// readBalanceCounts reads n_intervention and n_control of the balance rows
// of analysis (weighted:<outcome>) at wave.
func readBalanceCounts(ctx context.Context, genDir, analysis, wave string) (balanceCounts, error) {
	b := balanceCounts{n: map[string][2]int32{}}
	rows, err := warehouse.ReadRecords[balanceCount](ctx, genDir, "balance")
	if err != nil {
		return b, fmt.Errorf("read balance: %w", err)
	}
	for _, r := range rows {
		if r.Analysis == analysis && r.Wave == wave {
			b.n[r.Covariate] = [2]int32{r.NI, r.NC}
		}
	}
	return b, nil
}
