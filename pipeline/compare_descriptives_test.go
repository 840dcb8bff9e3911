package pipeline

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// TestDescriptives recomputes the descriptives table from the test
// participants themselves: per arm and ALL, at baseline and followup, the
// n, mean and sample SD of those not withdrawn with a value (the withdrawn
// TEWV-X01 has a baseline value and is left out; EPUT-X02 counts at
// baseline only; HPFT-X03 nowhere). Every other outcome has n = 0 rows.
func TestDescriptives(t *testing.T) {
	env, dir := reportStudyTestWarehouse(t)
	ps, _ := compareTestAncova(t)
	type key struct{ outcome, wave, arm string }
	type stat struct {
		n        int
		mean, sd float64
	}
	got := map[key]stat{}
	var prev []string
	err := warehouse.ScanTable(context.Background(), dir, "descriptives", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "outcome", "wave", "arm", "n", "mean", "sd")
		if err != nil {
			return err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			k := key{cols[0].(*array.String).Value(i), cols[1].(*array.String).Value(i), cols[2].(*array.String).Value(i)}
			if cur := []string{k.outcome, k.wave, k.arm}; prev != nil && fmt.Sprint(cur) <= fmt.Sprint(prev) && cur[0] == prev[0] && cur[1] == prev[1] {
				return fmt.Errorf("rows out of key order: %v after %v", cur, prev)
			}
			prev = []string{k.outcome, k.wave, k.arm}
			st := stat{n: int(cols[3].(*array.Int32).Value(i)), mean: math.NaN(), sd: math.NaN()}
			if m := cols[4].(*array.Float64); m.IsValid(i) {
				st.mean = m.Value(i)
			}
			if s := cols[5].(*array.Float64); s.IsValid(i) {
				st.sd = s.Value(i)
			}
			got[k] = st
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s := env.Study
	if want := len(s.Analysis.Outcomes) * len(s.Waves) * (len(s.Arms) + 1); len(got) != want {
		t.Fatalf("%d rows, want %d (outcomes × waves × (arms + ALL))", len(got), want)
	}
	// The participants: the reference data set plus the three extra ones.
	extra := []compareTestParticipant{
		{arm: "intervention", withdrawn: true, interviewedB: true, yBase: 3, yFU: math.NaN()},
		{arm: "control", interviewedB: true, yBase: 10, yFU: math.NaN()},
		{arm: "control", yBase: math.NaN(), yFU: math.NaN()},
	}
	all := append(append([]compareTestParticipant(nil), ps...), extra...)
	for _, wave := range []string{"baseline", "followup"} {
		for _, arm := range []string{"intervention", "control", "ALL"} {
			var xs []float64
			for _, p := range all {
				v, ok := p.yBase, p.interviewedB
				if wave == "followup" {
					v, ok = p.yFU, p.interviewF
				}
				if p.withdrawn || !ok || math.IsNaN(v) || (arm != "ALL" && p.arm != arm) {
					continue
				}
				xs = append(xs, v)
			}
			var sum float64
			for _, x := range xs {
				sum += x
			}
			mean := sum / float64(len(xs))
			var ss float64
			for _, x := range xs {
				ss += (x - mean) * (x - mean)
			}
			sd := math.Sqrt(ss / float64(len(xs)-1))
			g := got[key{"rguk.total", wave, arm}]
			if g.n != len(xs) || math.Abs(g.mean-mean) > 1e-9 || math.Abs(g.sd-sd) > 1e-9 {
				t.Errorf("rguk.total %s %s: n %d mean %.6f sd %.6f, want %d %.6f %.6f", wave, arm, g.n, g.mean, g.sd, len(xs), mean, sd)
			}
		}
	}
	// The arms add up to ALL.
	for k, g := range got {
		if k.arm != "ALL" {
			continue
		}
		i, c := got[key{k.outcome, k.wave, "intervention"}], got[key{k.outcome, k.wave, "control"}]
		if i.n+c.n != g.n {
			t.Errorf("%v: %d + %d ≠ %d", k, i.n, c.n, g.n)
		}
		if k.outcome != "rguk.total" && (g.n != 0 || !math.IsNaN(g.mean)) {
			t.Errorf("%v: n %d mean %v, want 0 and null (no scores)", k, g.n, g.mean)
		}
	}
}
