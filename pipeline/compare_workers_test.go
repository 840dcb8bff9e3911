package pipeline

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/connectingpeople/cpi/pipeline/compare"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// TestCompareWorkersSameTables: the bundled study (10 outcomes, every
// analysis of the plan, itt_mi and itt_delta included) fitted on one
// goroutine and on two (the lanes of the outcomes side by side) and three
// writes the same bytes in every table of the stage; and the effects have
// estimates for every outcome, so the comparison is of fitted numbers.
func TestCompareWorkersSameTables(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the bundled study three times")
	}
	env := compareTestEnv(t)
	tables := []string{"effects", "balance", "trust_effects", "tipping_point", "missing_data",
		"descriptives", "service_use", "flow", "cost_effectiveness", "ce_bootstrap"}
	var want map[string][]byte
	for _, n := range []int{1, 2, 3} {
		wh := filepath.Join(t.TempDir(), "w")
		ctx := compare.WithWorkers(context.Background(), n)
		if _, err := RunStages(ctx, env, wh, "run", RunOptions{Create: true}, RunAll(filepath.Join("..", "testdata", "synth"))...); err != nil {
			t.Fatalf("%d workers: %v", n, err)
		}
		w, err := warehouse.OpenWarehouse(wh, false)
		if err != nil {
			t.Fatal(err)
		}
		gen, err := w.CurrentDir()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]byte{}
		for _, tb := range tables {
			files, _ := filepath.Glob(filepath.Join(gen, "tables", tb, "*.parquet"))
			if len(files) == 0 {
				t.Fatalf("%d workers: no %s", n, tb)
			}
			for _, f := range files {
				if got[f[len(gen):]], err = os.ReadFile(f); err != nil {
					t.Fatal(err)
				}
			}
		}
		if want == nil {
			want = got
			effects, _ := compareTestReadEffects(t, gen)
			for _, o := range env.Study.Analysis.Outcomes {
				for _, k := range []string{"primary/" + o + "/cr2/", "weighted/" + o + "/cr2/", "itt_mi/" + o + "/cr2_mi/"} {
					if effects[k+compare.TermArm].estimate == nil {
						t.Errorf("%s%s: no estimate", k, compare.TermArm)
					}
				}
			}
			continue
		}
		for f, b := range want {
			if !bytes.Equal(got[f], b) {
				t.Errorf("%d workers: %s differs from one worker's", n, f)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%d workers: %d files, one worker %d", n, len(got), len(want))
		}
	}
}
