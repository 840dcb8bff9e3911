package describe

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

// WriteFlow writes the flow table (unpartitioned, sorted by trust, arm,
// stage) as compare.Flow describes it: the stages counted from interviews
// here (CountFlow), the analysed stages by analysed, which adds them to
// the counts.
func WriteFlow(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, analysed func(counts map[FlowKey]*FlowCounts)) error {
	counts, err := CountFlow(ctx, env.Study, tx.Dir)
	if err != nil {
		return err
	}
	analysed(counts)
	return WriteFlowCounts(env, tx, counts)
}

// CountFlow counts the flow's stages from interviews, with an entry for
// every trust × arm of the study's teams and every wave; the analysed
// stages are left at zero.
func CountFlow(ctx context.Context, s *schemas.Study, dir string) (map[FlowKey]*FlowCounts, error) {
	counts, err := readFlow(ctx, s, dir)
	if err != nil {
		return nil, fmt.Errorf("flow: %w", err)
	}
	return counts, nil
}

// WriteFlowCounts writes the flow table of counts.
func WriteFlowCounts(env warehouse.Env, tx *warehouse.Tx, counts map[FlowKey]*FlowCounts) error {
	keys := slices.SortedFunc(maps.Keys(counts), func(a, b FlowKey) int {
		if c := strings.Compare(a.Trust, b.Trust); c != 0 {
			return c
		}
		return strings.Compare(a.Arm, b.Arm)
	})
	stages := FlowStages(env.Study)
	sort.Strings(stages)
	tb := env.Study.Tables.Table("flow")
	cTrust, cArm, cStage, cN := warehouse.ColIndex(tb, "trust"), warehouse.ColIndex(tb, "arm"), warehouse.ColIndex(tb, "stage"), warehouse.ColIndex(tb, "n")
	err := warehouse.WriteTable(env, tx, "flow", func(rw *warehouse.RowWriter) error {
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
		counts[FlowKey{t.Trust, t.Arm}] = NewFlowCounts(s)
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

// NewFlowCounts is a zero flow with every wave of s.
func NewFlowCounts(s *schemas.Study) *FlowCounts {
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
