package compare

import (
	"context"
	"fmt"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// The stages of the participant flow, in the order of the flow diagram.
const (
	FlowRecruited = "recruited"
	FlowBaseline  = "baseline"
	FlowFollowup  = "followup"
	FlowWithdrawn = "withdrawn"
	FlowLost      = "lost"
)

// FlowStages lists the flow table's stages in diagram order.
var FlowStages = []string{FlowRecruited, FlowBaseline, FlowFollowup, FlowWithdrawn, FlowLost}

// FlowCounts is one trust × arm's participant flow.
type FlowCounts struct {
	Recruited, Baseline, Followup, Withdrawn, Lost int64
}

// NotBaseline is the recruited participants not interviewed at baseline.
func (c FlowCounts) NotBaseline() int64 { return c.Recruited - c.Baseline }

// Stage returns the count of a stage by name.
func (c FlowCounts) Stage(name string) int64 {
	switch name {
	case FlowRecruited:
		return c.Recruited
	case FlowBaseline:
		return c.Baseline
	case FlowFollowup:
		return c.Followup
	case FlowWithdrawn:
		return c.Withdrawn
	case FlowLost:
		return c.Lost
	}
	return 0
}

func (c *FlowCounts) Add(o FlowCounts) {
	c.Recruited += o.Recruited
	c.Baseline += o.Baseline
	c.Followup += o.Followup
	c.Withdrawn += o.Withdrawn
	c.Lost += o.Lost
}

// FlowKey is a trust and an arm.
type FlowKey struct{ Trust, Arm string }

// Flow writes the flow table (unpartitioned, sorted by trust, arm, stage):
// the participant flow per trust × arm, counted from participants
// (DESIGN §7). Each participant row counts once per stage it reaches:
//
//   - recruited: every participant row (recruited, interviewed or not);
//   - baseline: interviewed_baseline (a dated baseline interview);
//   - followup: interviewed at baseline, interviewed at follow-up and not
//     withdrawn;
//   - withdrawn: interviewed at baseline and withdrawn (withdrawn = true);
//   - lost: interviewed at baseline, not interviewed at follow-up and not
//     withdrawn.
//
// So the counts add up by construction: baseline = followup + withdrawn +
// lost, and recruited = baseline + those not interviewed at baseline (who
// include anyone withdrawn before the baseline interview, and anyone
// followed up without a baseline interview, who is in no analysis that
// needs a baseline). Every trust × arm of the study's teams has its five
// rows, zeros included. Counts are raw: reports apply disclosure control.
// Flow fails only when participants cannot be read.
func Flow(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
	counts, err := readFlow(ctx, env, tx.Dir)
	if err != nil {
		return fmt.Errorf("flow: %w", err)
	}
	keys := make([]FlowKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return CmpKeys([]string{keys[i].Trust, keys[i].Arm}, []string{keys[j].Trust, keys[j].Arm}) < 0
	})
	stages := append([]string(nil), FlowStages...)
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

// readFlow counts the flow from participants, with a zero entry for every
// trust × arm of the study's teams.
func readFlow(ctx context.Context, env warehouse.Env, dir string) (map[FlowKey]*FlowCounts, error) {
	counts := map[FlowKey]*FlowCounts{}
	for _, t := range env.Study.Teams {
		counts[FlowKey{t.Trust, t.Arm}] = &FlowCounts{}
	}
	err := warehouse.ScanTable(ctx, dir, "participants", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "trust", "arm", "withdrawn", "interviewed_baseline", "interviewed_followup")
		if err != nil {
			return err
		}
		trust, arm := cols[0].(*array.String), cols[1].(*array.String)
		wd, ib, ifu := cols[2].(*array.Boolean), cols[3].(*array.Boolean), cols[4].(*array.Boolean)
		on := func(a *array.Boolean, i int) bool { return a.IsValid(i) && a.Value(i) }
		for i := 0; i < int(rec.NumRows()); i++ {
			k := FlowKey{trust.Value(i), arm.Value(i)}
			c, ok := counts[k]
			if !ok {
				c = &FlowCounts{}
				counts[k] = c
			}
			c.Recruited++
			if !on(ib, i) {
				continue
			}
			c.Baseline++
			switch {
			case on(wd, i):
				c.Withdrawn++
			case on(ifu, i):
				c.Followup++
			default:
				c.Lost++
			}
		}
		return nil
	})
	return counts, err
}

// ReadFlowTable reads the flow table of a generation into counts per trust
// × arm.
func ReadFlowTable(ctx context.Context, genDir string) (map[FlowKey]FlowCounts, error) {
	out := map[FlowKey]FlowCounts{}
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
			v := n.Value(i)
			switch stage.Value(i) {
			case FlowRecruited:
				c.Recruited = v
			case FlowBaseline:
				c.Baseline = v
			case FlowFollowup:
				c.Followup = v
			case FlowWithdrawn:
				c.Withdrawn = v
			case FlowLost:
				c.Lost = v
			}
			out[k] = c
		}
		return nil
	})
	return out, err
}
