package pipeline

import (
	"context"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/synth"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// Last year's canonical exports, without the nine service-use columns,
// are still read from every trust, whatever its dialect (BDCT's is
// semicolons in Windows-1252, HPFT's a workbook): every row accepted, one
// missing_column warning per service, and those participants' costs null
// (items_answered 0), never £0. This year's canonical exports, with them,
// are read too, and their costs are not null.
func TestEconomicOldCanonicalExports(t *testing.T) {
	env := compareTestEnv(t)
	s := env.Study
	dir := t.TempDir()
	files, err := synth.WriteSynth(context.Background(), s, synth.SynthOptions{Seed: 1, Canonical: true}, dir)
	if err != nil {
		t.Fatal(err)
	}
	old := []string{"BDCT", "HPFT", "TEWV"}
	var paths []string
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		paths = append(paths, p)
		if f.Kind != schemas.KindParticipants || !slices.Contains(old, f.Trust) {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var keep []int
		for i, h := range recs[0] {
			if !strings.HasPrefix(h, "su_") {
				keep = append(keep, i)
			}
		}
		if len(recs[0])-len(keep) != 9 {
			t.Fatalf("%s: %d service-use columns, want 9", f.Name, len(recs[0])-len(keep))
		}
		var out strings.Builder
		w := csv.NewWriter(&out)
		for _, r := range recs {
			var cells []string
			for _, i := range keep {
				cells = append(cells, r[i])
			}
			w.Write(cells)
		}
		w.Flush()
		if err := os.WriteFile(p, []byte(out.String()), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	checks, err := ingest.Validate(context.Background(), env, paths)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]synth.SynthFile{}
	for _, f := range files {
		byName[f.Name] = f
	}
	if len(checks) != len(files) {
		t.Fatalf("%d checks of %d files", len(checks), len(files))
	}
	for _, c := range checks {
		f := byName[c.Name]
		var missing int
		for _, p := range c.Problems {
			if p.Code == ingest.WarnMissingColumn && strings.HasPrefix(p.Column, "su_") {
				missing++
			}
		}
		want := 0
		if f.Kind == schemas.KindParticipants && slices.Contains(old, f.Trust) {
			want = 9
		}
		if c.Quarantine != "" || c.RowsRejected != 0 || c.RowsAccepted != f.Rows || missing != want {
			t.Errorf("%s: quarantine %q, %d of %d rows accepted (%d rejected), %d service-use columns missing; want all accepted, %d missing",
				f.Name, c.Quarantine, c.RowsAccepted, f.Rows, c.RowsRejected, missing, want)
		}
	}

	wh := filepath.Join(t.TempDir(), "w")
	if _, err := RunStages(context.Background(), env, wh, "run", RunOptions{Create: true}, RunAll(dir)...); err != nil {
		t.Fatal(err)
	}
	w, err := warehouse.OpenWarehouse(wh, false)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := w.CurrentDir()
	if err != nil {
		t.Fatal(err)
	}
	costs := map[string][2]int{} // trust → rows, non-null
	for _, r := range compareTestReadTable(t, gen, "scores") {
		if r.str["instrument"] != "csri" {
			continue
		}
		c := costs[r.str["trust"]]
		c[0]++
		if !math.IsNaN(r.num["value"]) {
			c[1]++
		} else if slices.Contains(old, r.str["trust"]) && r.num["items_answered"] != 0 {
			t.Errorf("%s: a cost from an export without service use has %v items answered", r.str["trust"], r.num["items_answered"])
		}
		costs[r.str["trust"]] = c
	}
	for _, tr := range s.TrustCodes() {
		c := costs[tr]
		if c[0] == 0 {
			t.Errorf("%s: no csri rows", tr)
		}
		if old := slices.Contains(old, tr); (old && c[1] != 0) || (!old && c[1] < c[0]*9/10) {
			t.Errorf("%s (old format %v): %d of %d costs not null", tr, old, c[1], c[0])
		}
	}
}
