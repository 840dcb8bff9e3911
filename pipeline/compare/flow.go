package compare

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// The fixed stages of the participant flow; between recruited and
// withdrawn the flow has one stage per wave of the study, named by the wave
// (DESIGN §13). FlowBaseline and FlowFollowup are the default study's wave
// stages, which the study report names its cells by.
const (
	FlowRecruited = "recruited"
	FlowBaseline  = "baseline"
	FlowFollowup  = "followup"
	FlowWithdrawn = "withdrawn"
	FlowLost      = "lost"
	// FlowAnalysed is the primary analysis's population of the primary
	// outcome at the primary wave (complete cases), FlowAnalysedITT that
	// of itt_mi (interviewed at the first wave, not withdrawn).
	FlowAnalysed    = "analysed"
	FlowAnalysedITT = "analysed_itt"
)

// FlowStages lists the flow table's stages of a study in diagram order:
// recruited, the waves in the study's order, withdrawn, lost, analysed,
// analysed_itt.
func FlowStages(s *schemas.Study) []string {
	out := append([]string{FlowRecruited}, s.Waves...)
	return append(out, FlowWithdrawn, FlowLost, FlowAnalysed, FlowAnalysedITT)
}

// FlowCounts is one trust × arm's participant flow. Waves holds the count
// of every wave's stage; Baseline and Followup repeat those of the first
// wave and of the primary wave (analysis.primary_wave), the two the flow
// diagram draws. Analysed and AnalysedITT are the people in the primary
// analysis and in itt_mi of the primary outcome at the primary wave.
type FlowCounts struct {
	Recruited, Baseline, Followup, Withdrawn, Lost int64
	Analysed, AnalysedITT                          int64
	Waves                                          map[string]int64
}

// NotBaseline is the recruited participants not interviewed at baseline.
func (c FlowCounts) NotBaseline() int64 { return c.Recruited - c.Baseline }

// Stage returns the count of a stage by name: a fixed stage or a wave.
func (c FlowCounts) Stage(name string) int64 {
	switch name {
	case FlowRecruited:
		return c.Recruited
	case FlowWithdrawn:
		return c.Withdrawn
	case FlowLost:
		return c.Lost
	case FlowAnalysed:
		return c.Analysed
	case FlowAnalysedITT:
		return c.AnalysedITT
	}
	return c.Waves[name]
}

// Add adds o's counts to c's.
func (c *FlowCounts) Add(o FlowCounts) {
	c.Recruited += o.Recruited
	c.Baseline += o.Baseline
	c.Followup += o.Followup
	c.Withdrawn += o.Withdrawn
	c.Lost += o.Lost
	c.Analysed += o.Analysed
	c.AnalysedITT += o.AnalysedITT
	for w, n := range o.Waves {
		c.addWave(w, n)
	}
}

func (c *FlowCounts) addWave(w string, n int64) {
	if c.Waves == nil {
		c.Waves = map[string]int64{}
	}
	c.Waves[w] += n
}

// setStage sets a stage's count: a fixed stage or a wave (first is the
// first wave, primary the primary wave).
func (c *FlowCounts) setStage(name string, n int64, first, primary string) {
	switch name {
	case FlowRecruited:
		c.Recruited = n
	case FlowWithdrawn:
		c.Withdrawn = n
	case FlowLost:
		c.Lost = n
	case FlowAnalysed:
		c.Analysed = n
	case FlowAnalysedITT:
		c.AnalysedITT = n
	default:
		if c.Waves == nil {
			c.Waves = map[string]int64{}
		}
		c.Waves[name] = n
		if name == first {
			c.Baseline = n
		}
		if name == primary {
			c.Followup = n
		}
	}
}

// FlowKey is a trust and an arm.
type FlowKey struct{ Trust, Arm string }

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
	return writeFlow(ctx, env, tx, d, 0)
}

// flowOutcomes is the outcome the flow's analysed stages count: the
// primary one (none when the plan has no primary outcome).
func flowOutcomes(s *schemas.Study) []string {
	if s.Analysis.PrimaryOutcome == "" {
		return nil
	}
	return []string{s.Analysis.PrimaryOutcome}
}

// writeFlow writes the flow table, its analysed stages counted from d
// (o: the primary outcome's index in d's outcomes; none when out of
// range).
func writeFlow(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, d *cmpColumns, o int) error {
	counts, err := readFlow(ctx, env.Study, tx.Dir)
	if err != nil {
		return fmt.Errorf("flow: %w", err)
	}
	countAnalysed(env.Study, d, o, counts)
	keys := make([]FlowKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return CmpKeys([]string{keys[i].Trust, keys[i].Arm}, []string{keys[j].Trust, keys[j].Arm}) < 0
	})
	stages := FlowStages(env.Study)
	sort.Strings(stages)
	tb := env.Study.Tables.Table("flow")
	cTrust, cArm, cStage, cN := warehouse.ColIndex(tb, "trust"), warehouse.ColIndex(tb, "arm"), warehouse.ColIndex(tb, "stage"), warehouse.ColIndex(tb, "n")
	err = WriteTable(env, tx, "flow", func(rw *warehouse.RowWriter) error {
		for _, k := range keys {
			for _, st := range stages {
				rw.Str(cTrust, k.Trust)
				rw.Str(cArm, k.Arm)
				rw.Str(cStage, st)
				rw.Int64(cN, counts[k].Stage(st))
				if err := rw.RowDone(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("flow: %w", err)
	}
	return nil
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
			k := FlowKey{d.trusts.levels[d.trust[i]], d.arms.levels[d.arm[i]]}
			fc, ok := counts[k]
			if !ok {
				fc = newFlowCounts(s)
				counts[k] = fc
			}
			set(fc)
		}
	}
	add(buildColFrame(s, d, o, wave, hasBase, completeCases, nil, nil), func(fc *FlowCounts) { fc.Analysed++ })
	add(buildColFrame(s, d, o, wave, hasBase, ittPopulation, ittPopulation.Exclude(c), nil), func(fc *FlowCounts) { fc.AnalysedITT++ })
}

// flowPerson is the flow's view of one participant being read from
// interviews: their rows are consecutive (the table is sorted by study_id).
type flowPerson struct {
	id         string
	key        FlowKey
	withdrawn  bool
	interviews []bool // per wave of the study
}

// count adds the participant to counts.
func (p *flowPerson) count(s *schemas.Study, counts map[FlowKey]*FlowCounts) {
	if p.id == "" {
		return
	}
	c, ok := counts[p.key]
	if !ok {
		c = &FlowCounts{}
		counts[p.key] = c
	}
	c.Recruited++
	if !p.interviews[0] {
		return
	}
	c.Baseline++
	c.addWave(s.Waves[0], 1)
	if p.withdrawn {
		c.Withdrawn++
		return
	}
	for i, w := range s.Waves[1:] {
		if p.interviews[i+1] {
			c.addWave(w, 1)
		}
	}
	if p.interviews[s.WaveIndex(s.PrimaryWave())] {
		c.Followup++
	} else {
		c.Lost++
	}
}

// readFlow counts the flow from interviews, with an entry for every trust
// × arm of the study's teams and every wave.
func readFlow(ctx context.Context, s *schemas.Study, dir string) (map[FlowKey]*FlowCounts, error) {
	if err := checkInterviewsPartitions(dir); err != nil {
		return nil, err
	}
	counts := map[FlowKey]*FlowCounts{}
	for _, t := range s.Teams {
		counts[FlowKey{t.Trust, t.Arm}] = newFlowCounts(s)
	}
	p := &flowPerson{interviews: make([]bool, len(s.Waves))}
	err := warehouse.ScanTable(ctx, dir, "interviews", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "study_id", "wave", "trust", "arm", "withdrawn", "interviewed")
		if err != nil {
			return err
		}
		sid, wave, trust, arm := cols[0].(*array.String), cols[1].(*array.String), cols[2].(*array.String), cols[3].(*array.String)
		wd, iv := cols[4].(*array.Boolean), cols[5].(*array.Boolean)
		on := func(a *array.Boolean, i int) bool { return a.IsValid(i) && a.Value(i) }
		for i := 0; i < int(rec.NumRows()); i++ {
			k := FlowKey{trust.Value(i), arm.Value(i)}
			if id := sid.Value(i); id != p.id || k != p.key {
				p.count(s, counts)
				p.id, p.key, p.withdrawn = strings.Clone(id), k, false
				clear(p.interviews)
			}
			p.withdrawn = p.withdrawn || on(wd, i)
			if w := s.WaveIndex(wave.Value(i)); w >= 0 && on(iv, i) {
				p.interviews[w] = true
			}
		}
		return nil
	})
	p.count(s, counts)
	return counts, err
}

// checkInterviewsPartitions makes sure every trust with participants has
// its interviews: a warehouse built before the interviews table existed
// has participants without them until its exports are ingested again.
func checkInterviewsPartitions(dir string) error {
	partitions := func(table string) (map[string]bool, error) {
		files, err := warehouse.TableFiles(dir, table)
		out := map[string]bool{}
		for _, f := range files {
			out[filepath.Base(filepath.Dir(f))] = true
		}
		return out, err
	}
	people, err := partitions("participants")
	if err != nil {
		return err
	}
	interviews, err := partitions("interviews")
	if err != nil {
		return err
	}
	for _, p := range slices.Sorted(maps.Keys(people)) {
		if !interviews[p] {
			return fmt.Errorf("participants of %s have no interviews table (built by an older cpi): run cpi rebuild", p)
		}
	}
	return nil
}

// newFlowCounts is a zero flow with every wave of s.
func newFlowCounts(s *schemas.Study) *FlowCounts {
	c := &FlowCounts{Waves: make(map[string]int64, len(s.Waves))}
	for _, w := range s.Waves {
		c.Waves[w] = 0
	}
	return c
}

// ReadFlowTable reads the flow table of a generation into counts per trust
// × arm (every stage that is not a fixed one is a wave of s).
func ReadFlowTable(ctx context.Context, s *schemas.Study, genDir string) (map[FlowKey]FlowCounts, error) {
	out := map[FlowKey]FlowCounts{}
	first, primary := s.BaselineWave(), s.PrimaryWave()
	err := warehouse.ScanTable(ctx, genDir, "flow", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "trust", "arm", "stage", "n")
		if err != nil {
			return err
		}
		trust, arm, stage := cols[0].(*array.String), cols[1].(*array.String), cols[2].(*array.String)
		n := cols[3].(*array.Int64)
		for i := 0; i < int(rec.NumRows()); i++ {
			k := FlowKey{trust.Value(i), arm.Value(i)}
			c := out[k]
			c.setStage(strings.Clone(stage.Value(i)), n.Value(i), first, primary)
			out[k] = c
		}
		return nil
	})
	return out, err
}
