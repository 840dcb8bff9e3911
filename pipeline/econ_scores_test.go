package pipeline

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/connectingpeople/cpi/pipeline/synth"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// econTestUnitCosts are DESIGN §13's illustrative unit costs (price year
// 2019), written out here rather than read from the unit-cost table.
var econTestUnitCosts = map[string]float64{
	"su_gp": 39, "su_practice_nurse": 12, "su_cmht": 128, "su_psychiatrist": 170, "su_ae": 160,
	"su_inpatient_days": 435, "su_social_worker": 55, "su_day_centre": 40, "su_peer_support": 20,
}

// econTestDecrements are DESIGN §8's England EQ-5D-5L decrements.
var econTestDecrements = map[string][]float64{
	"eq5d_mo": {0, .058, .076, .207, .274}, "eq5d_sc": {0, .050, .080, .164, .203},
	"eq5d_ua": {0, .050, .063, .162, .184}, "eq5d_pd": {0, .063, .084, .276, .335},
	"eq5d_ad": {0, .078, .104, .285, .289},
}

// The bundled study's csri.cost (every wave) and eq5d5l.qaly (followup)
// equal a recomputation from the generator's own answers: cost = Σ units
// × DESIGN's unit cost, null when any service is blank; qaly = 6/12 ×
// (u_baseline + u_followup)/2, null when either index is. The unit-cost
// table is named in the scores table's metadata.
func TestEconomicScoresBundled(t *testing.T) {
	env := compareTestEnv(t)
	_, gen := runBundled(t, env)

	type key struct{ id, wave string }
	cost := map[key]float64{} // NaN: null
	costAnswered := map[key]int{}
	stays := 0
	index := map[key]float64{}
	s := env.Study
	err := synth.Synthesize(context.Background(), s, synth.SynthOptions{Seed: 1}, func(trust string, r *synth.SynthInterview) error {
		if !r.Interviewed() {
			return nil
		}
		k := key{trust + "-" + r.ParticipantID, r.Wave}
		c, n, dec, nd := 0.0, 0, 0.0, 0
		for i, name := range r.ItemNames {
			v := r.Items[i]
			if uc, ok := econTestUnitCosts[name]; ok && v.Valid {
				c += float64(v.Value) * uc
				n++
			}
			if name == "su_inpatient_days" && v.Valid && v.Value > 0 {
				stays++
			}
			if d, ok := econTestDecrements[name]; ok && v.Valid {
				dec += d[v.Value-1]
				nd++
			}
		}
		costAnswered[k] = n
		cost[k] = math.NaN()
		if n == 9 {
			cost[k] = c
		}
		index[k] = math.NaN()
		if nd == 5 {
			index[k] = 1 - dec
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	rows := compareTestReadTable(t, gen, "scores")
	var nCost, nQALY, nullCost, zeroCost, nullQALY int
	for _, r := range rows {
		k := key{r.str["study_id"], r.str["wave"]}
		switch r.str["instrument"] + "." + r.str["scale"] {
		case "csri.cost":
			nCost++
			want, ok := cost[k]
			if !ok {
				t.Fatalf("a csri.cost row for a participant-wave the generator did not interview")
			}
			got := r.num["value"]
			if math.IsNaN(want) != math.IsNaN(got) || (!math.IsNaN(want) && math.Abs(got-want) > 1e-9) {
				t.Errorf("%v: cost %v, want %v", k, got, want)
			}
			if int(r.num["items_answered"]) != costAnswered[k] || r.num["items_total"] != 9 {
				t.Errorf("%v: items %v/%v, want %d/9", k, r.num["items_answered"], r.num["items_total"], costAnswered[k])
			}
			switch {
			case math.IsNaN(got):
				nullCost++
			case got == 0:
				zeroCost++
			}
		case "eq5d5l.qaly":
			nQALY++
			if k.wave != "followup" {
				t.Errorf("a qaly row at wave %s", k.wave)
				continue
			}
			u0, u1 := index[key{k.id, "baseline"}], index[k]
			want := 0.5 * (u0 + u1) / 2
			got := r.num["value"]
			if math.IsNaN(want) != math.IsNaN(got) || (!math.IsNaN(want) && math.Abs(got-want) > 1e-12) {
				t.Errorf("%v: qaly %v, want %v (u0 %v, u1 %v)", k, got, want, u0, u1)
			}
			if math.IsNaN(got) {
				nullQALY++
			}
			if !math.IsNaN(r.num["base"]) || !math.IsNaN(r.num["chg"]) {
				t.Errorf("%v: qaly has a base or change", k)
			}
		}
	}
	if nCost != len(cost) {
		t.Errorf("%d csri.cost rows, want one per interview: %d", nCost, len(cost))
	}
	followups := 0
	for k := range cost {
		if k.wave == "followup" {
			followups++
		}
	}
	if nQALY != followups {
		t.Errorf("%d qaly rows, want one per follow-up interview: %d", nQALY, followups)
	}
	// Skewed service use: some blanks (null, never £0), some people using
	// nothing at all, a few inpatient stays (under one interview in ten).
	if nullCost == 0 || zeroCost == 0 || stays == 0 || 10*stays > nCost || nullQALY == 0 {
		t.Errorf("null costs %d, zero costs %d, inpatient stays %d of %d, null QALYs %d: want some of each, stays under 10%%", nullCost, zeroCost, stays, nCost, nullQALY)
	}
	t.Logf("%d costs (%d null, %d zero, %d with a stay), %d QALYs (%d null)", nCost, nullCost, zeroCost, stays, nQALY, nullQALY)

	files, err := warehouse.TableFiles(gen, "scores")
	if err != nil || len(files) == 0 {
		t.Fatal(err)
	}
	pf, err := file.OpenParquetFile(files[0], false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	v := pf.MetaData().KeyValueMetadata().FindValue("cpi.unitcosts.csri_illustrative_2019")
	if v == nil {
		t.Fatal("the scores table's metadata does not name the unit-cost table")
	}
	for _, want := range []string{"price year 2019", "ILLUSTRATIVE"} {
		if !strings.Contains(*v, want) {
			t.Errorf("unit-cost metadata %q does not say %q", *v, want)
		}
	}
	// The codebook (the data package) says the same of the scores table.
	l, err := warehouse.ReadLedger(gen)
	if err != nil {
		t.Fatal(err)
	}
	dp, err := BuildDataPackage(env, gen, l)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range dp.Resources {
		if r.Name == "scores" {
			found = strings.Contains(r.Description, "Unit costs csri_illustrative_2019: ") && strings.Contains(r.Description, "price year 2019") &&
				strings.Contains(r.Description, "Value set eq5d5l_england")
		}
	}
	if !found {
		t.Error("the codebook's scores table does not name the unit-cost table, its price year and the value set")
	}
}
