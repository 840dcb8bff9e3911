package compare

import (
	"context"
	"fmt"

	"github.com/connectingpeople/cpi/pipeline/compare/describe"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// The participant flow's counting lives in package describe; compare
// counts its analysed stages (the frames its analyses fit). These name
// describe's for compare's callers.
type (
	FlowKey    = describe.FlowKey
	FlowCounts = describe.FlowCounts
)

const FlowAnalysed = describe.FlowAnalysed

// FlowStages is describe.FlowStages.
func FlowStages(s *schemas.Study) []string { return describe.FlowStages(s) }

// ReadFlowTable is describe.ReadFlowTable.
func ReadFlowTable(ctx context.Context, s *schemas.Study, genDir string) (map[FlowKey]FlowCounts, error) {
	return describe.ReadFlowTable(ctx, s, genDir)
}

// Flow writes the flow table (unpartitioned, sorted by trust, arm, stage):
// the participant flow per trust × arm, counted from interviews (DESIGN §7,
// §13). Each participant counts once per stage they reach:
//
//   - recruited: every participant (interviewed or not);
//   - the first wave (baseline): a dated interview at it was accepted;
//   - every later wave: interviewed at the first wave, interviewed at this
//     wave, and not withdrawn;
//   - withdrawn: interviewed at the first wave and withdrawn;
//   - lost: interviewed at the first wave, not interviewed at the primary
//     wave (analysis.primary_wave, by default the last) and not withdrawn;
//   - analysed: in the primary analysis of the primary outcome at the
//     primary wave (its complete cases: the effects row's n_obs, summed
//     over trusts);
//   - analysed_itt: in itt_mi's population of the primary outcome at the
//     primary wave (interviewed at the first wave, not withdrawn, in a
//     team of the two arms: the itt_mi row's n_obs, summed over trusts).
//
// So the counts add up by construction: first wave = primary wave +
// withdrawn + lost, recruited = first wave + those not interviewed at it
// (who include anyone withdrawn before the baseline interview, and anyone
// followed up without a baseline interview, who is in no analysis that
// needs a baseline), and no wave after the first counts more than it.
// Every trust × arm of the study's teams has its rows, zeros included.
// Counts are raw: reports apply disclosure control. Flow fails only when
// interviews cannot be read.
func Flow(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
	d, err := readCompareColumns(ctx, env, tx.Dir, flowOutcomes(env.Study))
	if err != nil {
		return fmt.Errorf("flow: %w", err)
	}
	return describe.WriteFlow(ctx, env, tx, func(counts map[FlowKey]*FlowCounts) { countAnalysed(env.Study, d, 0, counts) })
}

// flowOutcomes is the outcome the flow's analysed stages count: the
// primary one (none when the plan has no primary outcome).
func flowOutcomes(s *schemas.Study) []string {
	if s.Analysis.PrimaryOutcome == "" {
		return nil
	}
	return []string{s.Analysis.PrimaryOutcome}
}

// countAnalysed adds to counts, per trust × arm, the participants of the
// primary analysis (complete cases) and of itt_mi of outcome o of d at
// the primary wave: the frames those analyses fit.
func countAnalysed(s *schemas.Study, d *cmpColumns, o int, counts map[FlowKey]*FlowCounts) {
	if d == nil || o < 0 || o >= len(d.vals) || len(s.Analysis.Outcomes) == 0 {
		return
	}
	wave := s.WaveIndex(s.PrimaryWave())
	if wave <= 0 {
		return
	}
	outcome := s.Analysis.PrimaryOutcome
	hasBase := OutcomeHasBaseline(s, outcome)
	c := &outcomeComparison{s: s, d: d}
	add := func(f *colFrame, set func(*FlowCounts)) {
		for _, i := range f.rows {
			k := FlowKey{Trust: d.trusts.levels[d.trust[i]], Arm: d.arms.levels[d.arm[i]]}
			fc, ok := counts[k]
			if !ok {
				fc = describe.NewFlowCounts(s)
				counts[k] = fc
			}
			set(fc)
		}
	}
	add(buildColFrame(s, d, o, wave, hasBase, completeCases, nil, nil), func(fc *FlowCounts) { fc.Analysed++ })
	add(buildColFrame(s, d, o, wave, hasBase, ittPopulation, ittPopulation.Exclude(c), nil), func(fc *FlowCounts) { fc.AnalysedITT++ })
}
