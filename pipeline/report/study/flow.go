package study

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/report"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// The flow table's fixed stages (DESIGN §13): beside them there is one
// stage per wave, named by the wave.
const (
	flowRecruited = "recruited"
	flowWithdrawn = "withdrawn"
	flowLost      = "lost"
	// flowNotFirst is the page's derived count: recruited but not
	// interviewed at the first wave (recruited − first wave).
	flowNotFirst = "not_baseline"
)

// FlowKey is a trust and an arm: a row of the flow diagram's table.
type FlowKey struct{ Trust, Arm string }

// FlowCounts is one trust × arm's participant flow: the flow table's n by
// stage (recruited, each wave's name, withdrawn, lost). A stage the table
// does not have is absent.
type FlowCounts map[string]int64

// ReadFlow reads the flow table of the generation at genDir through the
// table layer: counts by trust × arm and stage. It keeps every stage the
// table has; the page shows the study's stages (flowStages). A table not
// written yet gives an empty map.
func ReadFlow(ctx context.Context, genDir string) (map[FlowKey]FlowCounts, error) {
	out := map[FlowKey]FlowCounts{}
	err := warehouse.ScanTable(ctx, genDir, "flow", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "trust", "arm", "stage", "n")
		if err != nil {
			return err
		}
		trust, _ := cols[0].(*array.String)
		arm, _ := cols[1].(*array.String)
		stage, _ := cols[2].(*array.String)
		n, _ := cols[3].(*array.Int64)
		if trust == nil || arm == nil || stage == nil || n == nil {
			return fmt.Errorf("table flow has unexpected column types")
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			k := FlowKey{trust.Value(i), arm.Value(i)}
			c := out[k]
			if c == nil {
				c = FlowCounts{}
				out[k] = c
			}
			c[stage.Value(i)] = n.Value(i)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("flow: %w", err)
	}
	return out, nil
}

// flowWaves lists the waves the page's flow shows, in the study's order:
// the first wave and the primary wave always (the flow's sums need them),
// and every other wave of the study that the flow table has.
func flowWaves(s *schemas.Study, flow map[FlowKey]FlowCounts) []string {
	var out []string
	for i, w := range s.Waves {
		keep := i == 0 || w == s.PrimaryWave()
		for _, c := range flow {
			if _, ok := c[w]; ok {
				keep = true
				break
			}
		}
		if keep {
			out = append(out, w)
		}
	}
	return out
}

// flowStages lists the page's flow stages in the table's column order:
// recruited, not interviewed at the first wave, each wave shown, withdrawn,
// lost.
func flowStages(waves []string) []string {
	out := []string{flowRecruited, flowNotFirst}
	out = append(out, waves...)
	return append(out, flowWithdrawn, flowLost)
}

// stage is a stage's count; flowNotFirst is recruited − the first wave.
func (c FlowCounts) stage(name, first string) int64 {
	if name == flowNotFirst {
		return c[flowRecruited] - c[first]
	}
	return c[name]
}

func (c FlowCounts) add(o FlowCounts) {
	for k, v := range o {
		c[k] += v
	}
}

// flowKeysOrdered lists trust × arm keys: trusts in study order (then
// others), arms in study order (then others).
func flowKeysOrdered(s *schemas.Study, flow map[FlowKey]FlowCounts) []FlowKey {
	keys := make([]FlowKey, 0, len(flow))
	for k := range flow {
		keys = append(keys, k)
	}
	trusts := s.TrustCodes()
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if ra, rb := rank(trusts, a.Trust), rank(trusts, b.Trust); ra != rb {
			return ra < rb
		}
		if a.Trust != b.Trust {
			return a.Trust < b.Trust
		}
		if ra, rb := rank(s.Arms, a.Arm), rank(s.Arms, b.Arm); ra != rb {
			return ra < rb
		}
		return a.Arm < b.Arm
	})
	return keys
}

// rank is v's position in list, or len(list) when it is not there.
func rank(list []string, v string) int {
	if i := slices.Index(list, v); i >= 0 {
		return i
	}
	return len(list)
}

// Avoid ranks of the page's counts for secondary suppression: an arm's
// size at baseline is Table 1's denominator, so it is hidden last.
const (
	avoidCell = iota
	avoidArmTotal
	avoidStudyTotal
	avoidArmSize
)

// flowCellName names a flow count in the page's disclosure control; trust
// or arm "*" is the total over them.
func flowCellName(trust, arm, stage string) string {
	return "flow|" + trust + "|" + arm + "|" + stage
}

// waveLabel is a wave's name as the page prints it.
func waveLabel(w string) string { return strings.ReplaceAll(w, "_", " ") }

// layoutFlow adds the flow diagram's and table's counts to disc, with their
// sums (recruited = first wave + not interviewed at it; first wave =
// primary wave + withdrew + lost, lost being those interviewed at the
// first wave, not withdrawn and not interviewed at the primary wave; the
// trusts add up to the arm, the arms to both), and returns what fills the
// page in once disc is protected. Waves between are counts of their own,
// tied only by the trust and arm totals.
func (pg *studyPage) layoutFlow(s *schemas.Study, flow map[FlowKey]FlowCounts, disc *report.Disclosure) []func() {
	if len(flow) == 0 {
		return nil
	}
	pg.HasFlow = true
	waves := flowWaves(s, flow)
	first, primary := s.BaselineWave(), s.PrimaryWave()
	stages := flowStages(waves)
	idx := func(stage string) int { return slices.Index(stages, stage) }
	iRec, iNot, iFirst, iPrim, iWd, iLost := idx(flowRecruited), idx(flowNotFirst), idx(first), idx(primary), idx(flowWithdrawn), idx(flowLost)

	keys := flowKeysOrdered(s, flow)
	var arms []string
	for _, k := range keys {
		if !slices.Contains(arms, k.Arm) {
			arms = append(arms, k.Arm)
		}
	}
	sort.SliceStable(arms, func(i, j int) bool { return rank(s.Arms, arms[i]) < rank(s.Arms, arms[j]) })
	type group struct {
		trust, arm string
		total      bool
		c          FlowCounts
		cells      []int
	}
	var groups []*group
	armTotal := map[string]FlowCounts{}
	all := FlowCounts{}
	for _, k := range keys {
		c := flow[k]
		groups = append(groups, &group{trust: k.Trust, arm: k.Arm, c: c})
		if armTotal[k.Arm] == nil {
			armTotal[k.Arm] = FlowCounts{}
		}
		armTotal[k.Arm].add(c)
		all.add(c)
	}
	byArm := map[string]*group{}
	for _, a := range arms {
		byArm[a] = &group{trust: "*", arm: a, total: true, c: armTotal[a]}
		groups = append(groups, byArm[a])
	}
	both := &group{trust: "*", arm: "*", total: true, c: all}
	groups = append(groups, both)
	for _, g := range groups {
		g.cells = make([]int, len(stages))
		for st, name := range stages {
			avoid := avoidCell
			switch {
			case g == both:
				avoid = avoidStudyTotal
			case g.total && name == first:
				avoid = avoidArmSize
			case g.total:
				avoid = avoidArmTotal
			}
			g.cells[st] = disc.Count(flowCellName(g.trust, g.arm, name), g.c.stage(name, first), avoid)
		}
		disc.Sum(g.cells[iRec], g.cells[iFirst], g.cells[iNot])
		disc.Sum(g.cells[iFirst], g.cells[iPrim], g.cells[iWd], g.cells[iLost])
	}
	for st := range stages {
		var armCells []int
		for _, a := range arms {
			var parts []int
			for _, g := range groups {
				if !g.total && g.arm == a {
					parts = append(parts, g.cells[st])
				}
			}
			disc.Sum(byArm[a].cells[st], parts...)
			armCells = append(armCells, byArm[a].cells[st])
		}
		disc.Sum(both.cells[st], armCells...)
	}

	// The follow-up waves' labels: "Followed up" when there is one.
	followups := waves[1:]
	label := func(w string) (box, head string) {
		if len(followups) == 1 {
			return "Followed up", "Followed up"
		}
		return "Interviewed at " + waveLabel(w), waveLabel(w)
	}
	pg.FlowHeads = nil
	for _, w := range followups {
		_, head := label(w)
		pg.FlowHeads = append(pg.FlowHeads, head)
	}
	pg.FlowPrimary = waveLabel(primary)
	pg.FlowManyWaves = len(followups) > 1
	return []func(){func() {
		for _, g := range groups {
			cells := make([]string, len(g.cells))
			for st, c := range g.cells {
				cells[st] = disc.Show(c)
			}
			trust, arm := g.trust, g.arm
			if trust == "*" {
				trust = "All trusts"
			}
			if arm == "*" {
				arm = "both arms"
			}
			pg.FlowRows = append(pg.FlowRows, flowLine{Trust: trust, Arm: arm, Total: g.total, Cells: cells})
		}
		for _, a := range arms {
			c := byArm[a].cells
			box := flowBox{Arm: a, Recruited: disc.Show(c[iRec]), NotBaseline: disc.Show(c[iNot]), Baseline: disc.Show(c[iFirst]),
				Withdrawn: disc.Show(c[iWd]), Lost: disc.Show(c[iLost])}
			for _, w := range followups {
				l, _ := label(w)
				box.Waves = append(box.Waves, flowWaveBox{Label: l, N: disc.Show(c[idx(w)]), Primary: w == primary})
			}
			pg.FlowArms = append(pg.FlowArms, box)
		}
	}}
}
