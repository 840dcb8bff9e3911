package report

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// trustEffectsMethod is the method of the per-trust estimates the forest
// plot shows (compare's trust_effects table: one model over all trusts,
// CR2 by team, a Satterthwaite df per trust).
const trustEffectsMethod = "cr2_by_trust"

// readTrustForest reads the forest plot's per-trust points from the
// trust_effects table: the primary outcome at the primary wave, the trusts
// in the study's order. A trust without a row is left out; a row without
// an estimate keeps its note.
func readTrustForest(ctx context.Context, s *schemas.Study, genDir string) ([]forestPoint, error) {
	o, wave := s.Analysis.PrimaryOutcome, s.PrimaryWave()
	byTrust := map[string]forestPoint{}
	err := warehouse.ScanTable(ctx, genDir, "trust_effects", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "outcome", "wave", "trust", "method", "estimate", "ci_low", "ci_high", "note")
		if err != nil {
			return err
		}
		str := make([]*array.String, 4)
		for c := range str {
			if str[c], _ = cols[c].(*array.String); str[c] == nil {
				return fmt.Errorf("table trust_effects: column %d has an unexpected type", c)
			}
		}
		num := make([]*array.Float64, 3)
		for c := range num {
			if num[c], _ = cols[4+c].(*array.Float64); num[c] == nil {
				return fmt.Errorf("table trust_effects: column %d has an unexpected type", 4+c)
			}
		}
		note, _ := cols[7].(*array.String)
		if note == nil {
			return fmt.Errorf("table trust_effects: column note has an unexpected type")
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if str[0].Value(i) != o || str[1].Value(i) != wave || str[3].Value(i) != trustEffectsMethod {
				continue
			}
			p := forestPoint{label: str[2].Value(i)}
			if note.IsValid(i) {
				p.note = note.Value(i)
			}
			if num[0].IsValid(i) && num[1].IsValid(i) && num[2].IsValid(i) {
				p.est, p.lo, p.hi, p.ok = num[0].Value(i), num[1].Value(i), num[2].Value(i), true
			}
			byTrust[p.label] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read trust_effects: %w", err)
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

// readBalanceCounts reads n_intervention and n_control of the balance rows
// of analysis (weighted:<outcome>) at wave.
func readBalanceCounts(ctx context.Context, genDir, analysis, wave string) (balanceCounts, error) {
	b := balanceCounts{n: map[string][2]int32{}}
	err := warehouse.ScanTable(ctx, genDir, "balance", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "analysis", "wave", "covariate", "n_intervention", "n_control")
		if err != nil {
			return err
		}
		an, _ := cols[0].(*array.String)
		wv, _ := cols[1].(*array.String)
		cv, _ := cols[2].(*array.String)
		ni, _ := cols[3].(*array.Int32)
		nc, _ := cols[4].(*array.Int32)
		if an == nil || wv == nil || cv == nil || ni == nil || nc == nil {
			return fmt.Errorf("table balance has unexpected column types")
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if an.Value(i) == analysis && wv.Value(i) == wave {
				b.n[cv.Value(i)] = [2]int32{ni.Value(i), nc.Value(i)}
			}
		}
		return nil
	})
	if err != nil {
		return b, fmt.Errorf("read balance: %w", err)
	}
	return b, nil
}
