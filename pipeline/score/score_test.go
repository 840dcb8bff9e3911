package score

import (
	"bytes"
	"cmp"
	"context"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// The expected values in these tests are worked out by hand from the rules
// of DESIGN §8 and the instrument definitions (schemas/instruments), as the
// comments show; none is computed by the code under test.

// scoreTestBlank marks a blank answer in scoreTestAnswers.
const scoreTestBlank = math.MinInt32

// scoreTestRow is one responses row.
type scoreTestRow struct {
	id, wave, inst, item string
	team                 string // "" means <TRUST>-01
	value                int32  // scoreTestBlank: null
}

// scoreTestAnswers makes the rows of one participant-wave's answers to an
// instrument, values in the instrument's item order.
func scoreTestAnswers(t *testing.T, study *schemas.Study, id, wave, inst string, values ...int32) []scoreTestRow {
	t.Helper()
	in, ok := study.Instrument(inst)
	if !ok {
		t.Fatalf("no instrument %s", inst)
	}
	if len(values) != len(in.Items) {
		t.Fatalf("%s has %d items, got %d values", inst, len(in.Items), len(values))
	}
	out := make([]scoreTestRow, len(values))
	for i, v := range values {
		out[i] = scoreTestRow{id: id, wave: wave, inst: inst, item: in.Items[i].Name, value: v}
	}
	return out
}

// scoreTestRepeat is n copies of v.
func scoreTestRepeat(n int, v int32) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// scoreTestWriteResponses writes rows as the responses table, one file per
// trust (the study_id's prefix), sorted by the table's key unless raw, and
// the participants table of the participants they name (where Score finds
// their team and arm).
func scoreTestWriteResponses(t *testing.T, env warehouse.Env, tx *warehouse.Tx, rows []scoreTestRow, raw bool) {
	t.Helper()
	if !raw {
		rows = slices.Clone(rows)
		slices.SortStableFunc(rows, func(a, b scoreTestRow) int {
			return strings.Compare(a.id+"\x00"+a.wave+"\x00"+a.inst+"\x00"+a.item, b.id+"\x00"+b.wave+"\x00"+b.inst+"\x00"+b.item)
		})
	}
	byTrust := map[string][]scoreTestRow{}
	var trusts []string
	for _, r := range rows {
		trust, _, _ := strings.Cut(r.id, "-")
		if _, ok := byTrust[trust]; !ok {
			trusts = append(trusts, trust)
		}
		byTrust[trust] = append(byTrust[trust], r)
	}
	tb := env.Study.Tables.Table("responses")
	schema := warehouse.ArrowSchema(env, "responses", nil)
	for _, trust := range trusts {
		tf, err := tx.CreateTableFile(schema, "responses", "trust", trust, "data")
		if err != nil {
			t.Fatal(err)
		}
		rw := warehouse.NewRowWriter(schema, tf)
		for i, r := range byTrust[trust] {
			team := r.team
			if team == "" {
				team = trust + "-01"
			}
			tm, ok := env.Study.Team(team)
			if !ok {
				t.Fatalf("no team %s", team)
			}
			rw.Str(warehouse.ColIndex(tb, "study_id"), r.id)
			rw.Str(warehouse.ColIndex(tb, "wave"), r.wave)
			rw.Str(warehouse.ColIndex(tb, "instrument"), r.inst)
			rw.Str(warehouse.ColIndex(tb, "item"), r.item)
			rw.Str(warehouse.ColIndex(tb, "trust"), trust)
			rw.Str(warehouse.ColIndex(tb, "team"), team)
			rw.Str(warehouse.ColIndex(tb, "arm"), tm.Arm)
			rw.Int32(warehouse.ColIndex(tb, "value"), r.value, r.value != scoreTestBlank)
			rw.Str(warehouse.ColIndex(tb, "source_sha256"), "test")
			rw.Int32(warehouse.ColIndex(tb, "source_line"), int32(i+2), true)
			if err := rw.RowDone(); err != nil {
				t.Fatal(err)
			}
		}
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
		scoreTestWriteParticipants(t, env, tx, trust, byTrust[trust])
	}
}

// scoreTestWriteParticipants writes a trust's participants table: one row
// per study_id of rows, with the team of its first row.
func scoreTestWriteParticipants(t *testing.T, env warehouse.Env, tx *warehouse.Tx, trust string, rows []scoreTestRow) {
	t.Helper()
	teams := map[string]string{}
	for _, r := range rows {
		if _, ok := teams[r.id]; !ok {
			teams[r.id] = cmp.Or(r.team, trust+"-01")
		}
	}
	scoreTestWriteTeams(t, env, tx, trust, teams)
}

// scoreTestWriteTeams writes a trust's participants table from each
// study_id's team, the other columns null or false.
func scoreTestWriteTeams(t testing.TB, env warehouse.Env, tx *warehouse.Tx, trust string, teams map[string]string) {
	t.Helper()
	ids := slices.Sorted(maps.Keys(teams))
	tb := env.Study.Tables.Table("participants")
	schema := warehouse.ArrowSchema(env, "participants", nil)
	tf, err := tx.CreateTableFile(schema, "participants", "trust", trust, "data")
	if err != nil {
		t.Fatal(err)
	}
	rw := warehouse.NewRowWriter(schema, tf)
	for _, id := range ids {
		tm, _ := env.Study.Team(teams[id])
		vals := map[string]string{"study_id": id, "trust": trust, "team": tm.Code, "arm": tm.Arm}
		for i, c := range tb.Columns {
			switch {
			case vals[c.Name] != "":
				rw.Str(i, vals[c.Name])
			case c.Type == "bool":
				rw.Bool(i, false)
			default:
				rw.Null(i)
			}
		}
		if err := rw.RowDone(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
}

// scoreTestScore is one scores row read back; nulls are NaN.
type scoreTestScore struct {
	key                  string // study_id wave instrument scale
	trust, team, arm     string
	value, base, chg     float64
	answered, itemsTotal int32
	prorated             bool
}

// scoreTestRun builds a warehouse with the rows as responses, runs Score
// and returns the transaction.
func scoreTestRun(t *testing.T, env warehouse.Env, rows []scoreTestRow) *warehouse.Tx {
	t.Helper()
	w, err := warehouse.OpenWarehouse(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	scoreTestWriteResponses(t, env, tx, rows, false)
	if err := Score(context.Background(), env, tx); err != nil {
		t.Fatal(err)
	}
	return tx
}

// scoreTestReadScores reads the scores table back, in file order.
func scoreTestReadScores(t *testing.T, dir string) []scoreTestScore {
	t.Helper()
	var out []scoreTestScore
	f64 := func(a arrow.Array, i int) float64 {
		if a.IsNull(i) {
			return math.NaN()
		}
		return a.(*array.Float64).Value(i)
	}
	err := warehouse.ScanTable(context.Background(), dir, "scores", func(rec arrow.RecordBatch) error {
		c, err := warehouse.Columns(rec, "study_id", "wave", "instrument", "scale", "trust", "team", "arm", "value", "items_answered", "items_total", "prorated", "base", "chg")
		if err != nil {
			return err
		}
		s := func(k, i int) string { return c[k].(*array.String).Value(i) }
		for i := 0; i < int(rec.NumRows()); i++ {
			out = append(out, scoreTestScore{
				key:   s(0, i) + " " + s(1, i) + " " + s(2, i) + " " + s(3, i),
				trust: s(4, i), team: s(5, i), arm: s(6, i),
				value: f64(c[7], i), base: f64(c[11], i), chg: f64(c[12], i),
				answered: c[8].(*array.Int32).Value(i), itemsTotal: c[9].(*array.Int32).Value(i),
				prorated: c[10].(*array.Boolean).Value(i),
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func scoreTestByKey(rows []scoreTestScore) map[string]scoreTestScore {
	m := map[string]scoreTestScore{}
	for _, r := range rows {
		m[r.key] = r
	}
	return m
}

// scoreTestEq compares floats, NaN meaning null, within 1e-12.
func scoreTestEq(got, want float64) bool {
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) && math.IsNaN(got)
	}
	return math.Abs(got-want) <= 1e-12*math.Max(1, math.Abs(want))
}

var null = math.NaN()

// scoreTestWant is an expected scores row.
type scoreTestWant struct {
	key              string
	value, base, chg float64
	answered, total  int32
	prorated         bool
}

func scoreTestCheck(t *testing.T, got map[string]scoreTestScore, want []scoreTestWant) {
	t.Helper()
	for _, w := range want {
		g, ok := got[w.key]
		if !ok {
			t.Errorf("%s: no row", w.key)
			continue
		}
		if !scoreTestEq(g.value, w.value) || !scoreTestEq(g.base, w.base) || !scoreTestEq(g.chg, w.chg) ||
			g.answered != w.answered || g.itemsTotal != w.total || g.prorated != w.prorated {
			t.Errorf("%s: got value %v base %v chg %v answered %d/%d prorated %v; want %v %v %v %d/%d %v",
				w.key, g.value, g.base, g.chg, g.answered, g.itemsTotal, g.prorated,
				w.value, w.base, w.chg, w.answered, w.total, w.prorated)
		}
	}
}

func scoreTestEnv(t *testing.T) warehouse.Env {
	t.Helper()
	study, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	return warehouse.Env{Study: study, Version: "test"}
}

// One participant at baseline and follow-up, every instrument answered in
// full: every method, base and chg.
func TestScoreInstruments(t *testing.T) {
	env := scoreTestEnv(t)
	s := env.Study
	const id = "AWP-p001"
	const B = scoreTestBlank
	var rows []scoreTestRow
	add := func(wave, inst string, v ...int32) {
		rows = append(rows, scoreTestAnswers(t, s, id, wave, inst, v...)...)
	}
	// Baseline.
	add("baseline", "rguk", append(scoreTestRepeat(10, 1), scoreTestRepeat(17, 0)...)...) // 10
	add("baseline", "swemwbs", scoreTestRepeat(7, 3)...)                                  // 21 → table[21−7] = 19.25
	add("baseline", "qpr", scoreTestRepeat(15, 2)...)                                     // 30
	add("baseline", "ucla3", 1, 2, 3)                                                     // 6
	add("baseline", "eq5d5l", 1, 1, 1, 1, 1, 70)                                          // index 1, vas 70
	// GAS is asked at follow-up only: answers at baseline are not scored.
	add("baseline", "gas", 2, 2, 2, 1, 1, 1)
	// Service use: 2 GP (39), 0 nurse, 5 CMHT (128), 1 psychiatrist (170),
	// 0 A&E, 3 bed-days (435), 0, 2 day centre (40), 1 peer support (20):
	// 78 + 640 + 170 + 1305 + 80 + 20 = 2293.
	add("baseline", "csri", 2, 0, 5, 1, 0, 3, 0, 2, 1)
	// Follow-up.
	add("followup", "rguk", append(scoreTestRepeat(15, 1), scoreTestRepeat(12, 0)...)...) // 15
	add("followup", "swemwbs", scoreTestRepeat(7, 4)...)                                  // 28 → table[21] = 25.03
	add("followup", "qpr", scoreTestRepeat(15, 3)...)                                     // 45
	add("followup", "ucla3", 1, 1, 1)                                                     // 3
	add("followup", "eq5d5l", 5, 5, 5, 5, 5, 40)                                          // index 1 − 1.285, vas 40
	// GAS: levels (2, 1, blank), weights (2, 1, blank): the third goal is
	// left out; Σwx = 2·2 + 1·1 = 5, Σw² = 5, (Σw)² = 9, so
	// t = 50 + 10·5/√(0.7·5 + 0.3·9) = 50 + 50/√6.2 = 50 + 50/2.48998 = 70.08048...
	add("followup", "gas", 2, 1, B, 2, 1, B)
	// One service blank: the cost is null, not the sum of the others.
	add("followup", "csri", 1, 1, 1, 1, 1, B, 0, 0, 0)

	tx := scoreTestRun(t, env, rows)
	got := scoreTestReadScores(t, tx.Dir)
	wantOrder := []string{
		"baseline csri cost", "baseline eq5d5l index", "baseline eq5d5l vas", "baseline qpr total", "baseline rguk total",
		"baseline swemwbs metric", "baseline swemwbs total", "baseline ucla3 total",
		"followup csri cost", "followup eq5d5l index", "followup eq5d5l qaly", "followup eq5d5l vas", "followup gas t", "followup qpr total", "followup rguk total",
		"followup swemwbs metric", "followup swemwbs total", "followup ucla3 total",
	}
	var gotOrder []string
	for _, r := range got {
		gotOrder = append(gotOrder, strings.TrimPrefix(r.key, id+" "))
		if r.trust != "AWP" || r.team != "AWP-01" || r.arm != "intervention" {
			t.Errorf("%s: trust/team/arm %s %s %s", r.key, r.trust, r.team, r.arm)
		}
	}
	if !slices.Equal(gotOrder, wantOrder) {
		t.Fatalf("rows\n got %v\nwant %v", gotOrder, wantOrder)
	}
	p := id + " "
	gasT := 50 + 50/math.Sqrt(6.2)
	if math.Abs(gasT-70.08048) > 1e-5 {
		t.Fatalf("hand value of the GAS T-score is wrong: %v", gasT)
	}
	scoreTestCheck(t, scoreTestByKey(got), []scoreTestWant{
		{p + "baseline rguk total", 10, 10, null, 27, 27, false},
		{p + "baseline swemwbs total", 21, 21, null, 7, 7, false},
		{p + "baseline swemwbs metric", 19.25, 19.25, null, 7, 7, false},
		{p + "baseline qpr total", 30, 30, null, 15, 15, false},
		{p + "baseline ucla3 total", 6, 6, null, 3, 3, false},
		{p + "baseline eq5d5l index", 1, 1, null, 5, 5, false},
		{p + "baseline eq5d5l vas", 70, 70, null, 1, 1, false},
		{p + "followup rguk total", 15, 10, 5, 27, 27, false},
		{p + "followup swemwbs total", 28, 21, 7, 7, 7, false},
		{p + "followup swemwbs metric", 25.03, 19.25, 25.03 - 19.25, 7, 7, false},
		{p + "followup qpr total", 45, 30, 15, 15, 15, false},
		{p + "followup ucla3 total", 3, 6, -3, 3, 3, false},
		// .274 + .203 + .184 + .335 + .289 = 1.285.
		{p + "followup eq5d5l index", -0.285, 1, -1.285, 5, 5, false},
		{p + "followup eq5d5l vas", 40, 70, -30, 1, 1, false},
		{p + "followup gas t", gasT, null, null, 2, 3, false},
		{p + "baseline csri cost", 2293, 2293, null, 9, 9, false},
		{p + "followup csri cost", null, 2293, null, 8, 9, false},
		// Six months from index 1 to −0.285: 0.5 × (1 − 0.285)/2 = 0.17875;
		// two waves on the path, both with an index.
		{p + "followup eq5d5l qaly", 0.17875, null, null, 2, 2, false},
	})
}

// QALYs: the trapezium rule over the nominal wave times in years, each
// part of the curve beyond the first year discounted by its year.
func TestQALYs(t *testing.T) {
	const r = 0.035
	for _, c := range []struct {
		name string
		t, u []float64
		want float64
	}{
		{"six months", []float64{0, 6}, []float64{0.8, 0.6}, 0.5 * 0.7},
		{"a year, not discounted", []float64{0, 6, 12}, []float64{1, 0.5, 0.5}, 0.5*0.75 + 0.5*0.5},
		// Year two: (0.6 + 0.4)/2 = 0.5, discounted once.
		{"two years", []float64{0, 12, 24}, []float64{1, 0.6, 0.4}, 0.8 + 0.5/1.035},
		// u = t/10 from 0 to 18 months: 0..12 gives 1 × 0.6, 12..18 gives
		// 0.5 × (1.2 + 1.8)/2 = 0.75, discounted once.
		{"split at the year's end", []float64{0, 18}, []float64{0, 1.8}, 0.6 + 0.75/1.035},
		// 30 months of utility 1: 1 + 1/1.035 + 0.5/1.035².
		{"into the third year", []float64{0, 30}, []float64{1, 1}, 1 + 1/1.035 + 0.5/(1.035*1.035)},
	} {
		if got := QALYs(c.t, c.u, r); math.Abs(got-c.want) > 1e-14 {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// Exactly the allowed number of missing items is prorated; one more is null.
func TestScoreProrating(t *testing.T) {
	env := scoreTestEnv(t)
	s := env.Study
	const B = scoreTestBlank
	var rows []scoreTestRow
	add := func(id, inst string, v ...int32) {
		rows = append(rows, scoreTestAnswers(t, s, id, "baseline", inst, v...)...)
	}
	// P1: RG-UK 24 of 27 (3 missing, allowed): 12 ones → 12·27/24 = 13.5.
	add("BDCT-p1", "rguk", append(append(scoreTestRepeat(12, 1), scoreTestRepeat(12, 0)...), B, B, B)...)
	// P2: 23 of 27: null.
	add("BDCT-p2", "rguk", append(append(scoreTestRepeat(12, 1), scoreTestRepeat(11, 0)...), B, B, B, B)...)
	// P1: SWEMWBS 6 of 7, 4+4+4+3+3+3 = 21 → 21·7/6 = 24.5 → half up 25 →
	// table[25 − 7] = 22.35.
	add("BDCT-p1", "swemwbs", 4, 4, 4, B, 3, 3, 3)
	// P2: 5 of 7: total and metric null.
	add("BDCT-p2", "swemwbs", 4, 4, B, B, 3, 3, 3)
	// P1: QPR 12 of 15, all 2 → 24·15/12 = 30. P2: 11 of 15: null.
	add("BDCT-p1", "qpr", append(scoreTestRepeat(12, 2), B, B, B)...)
	add("BDCT-p2", "qpr", append(scoreTestRepeat(11, 2), B, B, B, B)...)
	// UCLA-3 allows none missing.
	add("BDCT-p1", "ucla3", 2, B, 2)
	add("BDCT-p2", "ucla3", 2, 2, 2)
	// EQ-5D 12345: 0 + .050 + .063 + .276 + .289 = .678 → .322; P2's
	// mobility blank → index null; VAS blank → null.
	add("BDCT-p1", "eq5d5l", 1, 2, 3, 4, 5, 55)
	add("BDCT-p2", "eq5d5l", B, 1, 1, 1, 1, B)

	tx := scoreTestRun(t, env, rows)
	got := scoreTestByKey(scoreTestReadScores(t, tx.Dir))
	if len(got) != 16 {
		t.Errorf("%d rows, want 16 (8 scales, csri.cost among them, × 2 participants, baseline only)", len(got))
	}
	scoreTestCheck(t, got, []scoreTestWant{
		{"BDCT-p1 baseline rguk total", 13.5, 13.5, null, 24, 27, true},
		{"BDCT-p2 baseline rguk total", null, null, null, 23, 27, false},
		{"BDCT-p1 baseline swemwbs total", 24.5, 24.5, null, 6, 7, true},
		{"BDCT-p1 baseline swemwbs metric", 22.35, 22.35, null, 6, 7, true},
		{"BDCT-p2 baseline swemwbs total", null, null, null, 5, 7, false},
		{"BDCT-p2 baseline swemwbs metric", null, null, null, 5, 7, false},
		{"BDCT-p1 baseline qpr total", 30, 30, null, 12, 15, true},
		{"BDCT-p2 baseline qpr total", null, null, null, 11, 15, false},
		{"BDCT-p1 baseline ucla3 total", null, null, null, 2, 3, false},
		{"BDCT-p2 baseline ucla3 total", 6, 6, null, 3, 3, false},
		{"BDCT-p1 baseline eq5d5l index", 0.322, 0.322, null, 5, 5, false},
		{"BDCT-p1 baseline eq5d5l vas", 55, 55, null, 1, 1, false},
		{"BDCT-p2 baseline eq5d5l index", null, null, null, 4, 5, false},
		{"BDCT-p2 baseline eq5d5l vas", null, null, null, 0, 1, false},
	})
}

// GAS: blank weights count as 1, blank goals are left out, no goal → null;
// a participant seen only at follow-up has no base; a participant-wave
// without responses has no rows; an instrument with no rows at an
// interviewed wave is scored as all missing.
func TestScoreGASAndWaves(t *testing.T) {
	env := scoreTestEnv(t)
	s := env.Study
	const B = scoreTestBlank
	var rows []scoreTestRow
	add := func(id, wave, inst string, v ...int32) {
		rows = append(rows, scoreTestAnswers(t, s, id, wave, inst, v...)...)
	}
	// p1: levels (1, 0, −1), weights blank (= 1): Σwx = 0 → t = 50.
	add("EPUT-p1", "followup", "gas", 1, 0, -1, B, B, B)
	add("EPUT-p1", "followup", "ucla3", 1, 2, 1)
	// p2: no level → null, 0 of 3 goals.
	add("EPUT-p2", "followup", "gas", B, B, B, 3, B, B)
	// p3: levels (−2, −2, −2), weights (1, 1, 1): Σwx = −6, Σw² = 3,
	// (Σw)² = 9: t = 50 − 60/√(2.1 + 2.7) = 50 − 60/√4.8 = 22.613872...
	add("EPUT-p3", "followup", "gas", -2, -2, -2, 1, 1, 1)
	// p3 at baseline: UCLA-3 only.
	add("EPUT-p3", "baseline", "ucla3", 3, 3, 3)
	add("EPUT-p3", "followup", "ucla3", 2, 2, 2)

	tx := scoreTestRun(t, env, rows)
	all := scoreTestReadScores(t, tx.Dir)
	got := scoreTestByKey(all)
	scoreTestCheck(t, got, []scoreTestWant{
		{"EPUT-p1 followup gas t", 50, null, null, 3, 3, false},
		{"EPUT-p2 followup gas t", null, null, null, 0, 3, false},
		{"EPUT-p3 followup gas t", 50 - 60/math.Sqrt(4.8), null, null, 3, 3, false},
		{"EPUT-p1 followup ucla3 total", 4, null, null, 3, 3, false},
		{"EPUT-p3 baseline ucla3 total", 9, 9, null, 3, 3, false},
		{"EPUT-p3 followup ucla3 total", 6, 9, -3, 3, 3, false},
		// Asked, no rows: scored as all missing.
		{"EPUT-p3 baseline rguk total", null, null, null, 0, 27, false},
		{"EPUT-p3 followup rguk total", null, null, null, 0, 27, false},
	})
	for _, r := range all {
		if strings.HasPrefix(r.key, "EPUT-p1 baseline") || strings.HasPrefix(r.key, "EPUT-p2 baseline") {
			t.Errorf("%s: a participant-wave without responses was scored", r.key)
		}
		if strings.Contains(r.key, "baseline gas") {
			t.Errorf("%s: GAS scored at baseline", r.key)
		}
	}
	// 3 participant-waves at follow-up × 10 scales (gas.t, eq5d5l.qaly
	// and csri.cost among them) + 1 at baseline × 8 (no gas.t nor qaly).
	if len(all) != 3*10+8 {
		t.Errorf("%d rows, want %d", len(all), 3*10+8)
	}
}

// A reverse-keyed item (set in a study's own instrument file) is scored
// min + max − value.
func TestScoreReverseKeyed(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "schemas", "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "study.yaml"), b, 0o600)
	os.MkdirAll(filepath.Join(dir, "instruments"), 0o750)
	os.WriteFile(filepath.Join(dir, "instruments", "ucla3.yaml"), []byte("name: ucla3\nmin: 1\nmax: 3\nitem_pattern: {format: \"ucla%d\", count: 3}\nreverse: [ucla2]\nscales:\n  - {name: total, method: sum, missing_allowed: 1, reliability: true}\n"), 0o600)
	study, err := schemas.Load(filepath.Join(dir, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := warehouse.Env{Study: study, Version: "test"}
	const B = scoreTestBlank
	var rows []scoreTestRow
	// 1 + (1 + 3 − 1) + 1 = 5.
	rows = append(rows, scoreTestAnswers(t, study, "HPFT-p1", "baseline", "ucla3", 1, 1, 1)...)
	// 2 + (4 − 3) = 3 of 2 items → 3·3/2 = 4.5 (one missing allowed here).
	rows = append(rows, scoreTestAnswers(t, study, "HPFT-p2", "baseline", "ucla3", 2, 3, B)...)
	tx := scoreTestRun(t, env, rows)
	scoreTestCheck(t, scoreTestByKey(scoreTestReadScores(t, tx.Dir)), []scoreTestWant{
		{"HPFT-p1 baseline ucla3 total", 5, 5, null, 3, 3, false},
		{"HPFT-p2 baseline ucla3 total", 4.5, 4.5, null, 2, 3, true},
	})
}

// The scores table names its value set; every trust gets a file; the
// output is byte-identical on a second run.
func TestScoreMetadataFilesDeterminism(t *testing.T) {
	env := scoreTestEnv(t)
	var rows []scoreTestRow
	for _, id := range []string{"AWP-a", "AWP-b", "TEWV-a"} {
		rows = append(rows, scoreTestAnswers(t, env.Study, id, "baseline", "eq5d5l", 1, 2, 1, 2, 1, 60)...)
		rows = append(rows, scoreTestAnswers(t, env.Study, id, "baseline", "ucla3", 1, 2, 1)...)
	}
	tx := scoreTestRun(t, env, rows)
	files, err := warehouse.TableFiles(tx.Dir, "scores")
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, f := range files {
		rel, _ := filepath.Rel(tx.Path("tables", "scores"), f)
		parts = append(parts, rel)
	}
	want := []string{"trust=AWP/data.parquet", "trust=BDCT/data.parquet", "trust=EPUT/data.parquet", "trust=HPFT/data.parquet", "trust=TEWV/data.parquet"}
	if !slices.Equal(parts, want) {
		t.Fatalf("files %v, want %v", parts, want)
	}
	pf, err := file.OpenParquetFile(files[0], false)
	if err != nil {
		t.Fatal(err)
	}
	v := pf.MetaData().KeyValueMetadata().FindValue("cpi.valueset.eq5d5l_england")
	pf.Close()
	if v == nil || *v != "EQ-5D-5L value set for England (Devlin et al. 2018) version 2018" {
		t.Errorf("value set metadata %v", v)
	}
	read := func() [][]byte {
		var out [][]byte
		for _, tbl := range []string{"scores", "reliability"} {
			fs, _ := warehouse.TableFiles(tx.Dir, tbl)
			for _, f := range fs {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b)
			}
		}
		return out
	}
	first := read()
	if err := Score(context.Background(), env, tx); err != nil {
		t.Fatal(err)
	}
	second := read()
	if len(first) != len(second) {
		t.Fatalf("%d files, then %d", len(first), len(second))
	}
	for i := range first {
		if !bytes.Equal(first[i], second[i]) {
			t.Errorf("file %d differs between runs", i)
		}
	}
	// Three participant-waves × the 8 scales asked at baseline (csri.cost,
	// null without answers, first); EQ-5D 12121: 1 − (.050 + .063) = .887.
	got := scoreTestReadScores(t, tx.Dir)
	if len(got) != 24 || got[1].key != "AWP-a baseline eq5d5l index" || got[23].key != "TEWV-a baseline ucla3 total" ||
		!scoreTestEq(got[1].value, 0.887) || got[0].key != "AWP-a baseline csri cost" || !math.IsNaN(got[0].value) {
		t.Errorf("rows %v", got)
	}
}

// Stage failures: unsorted responses, a value outside its range, a wave the
// study does not define.
func TestScoreErrors(t *testing.T) {
	env := scoreTestEnv(t)
	ok := scoreTestAnswers(t, env.Study, "AWP-b", "baseline", "ucla3", 1, 2, 1)
	cases := map[string][]scoreTestRow{
		"not sorted by study_id": append(slices.Clone(ok), scoreTestAnswers(t, env.Study, "AWP-a", "baseline", "ucla3", 1, 2, 1)...),
		"outside its range":      scoreTestAnswers(t, env.Study, "AWP-a", "baseline", "ucla3", 1, 4, 1),
		"wave the study":         scoreTestAnswers(t, env.Study, "AWP-a", "month9", "ucla3", 1, 2, 1),
	}
	for want, rows := range cases {
		w, _ := warehouse.OpenWarehouse(t.TempDir(), true)
		tx, _ := w.Begin(nil)
		scoreTestWriteResponses(t, env, tx, rows, true)
		err := Score(context.Background(), env, tx)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}

// Responses of a participant the participants table lacks fail the stage:
// their team and arm come from there.
func TestScoreParticipantMissing(t *testing.T) {
	env := scoreTestEnv(t)
	w, _ := warehouse.OpenWarehouse(t.TempDir(), true)
	tx, _ := w.Begin(nil)
	scoreTestWriteResponses(t, env, tx, scoreTestAnswers(t, env.Study, "AWP-a", "baseline", "ucla3", 1, 2, 1), true)
	scoreTestWriteParticipants(t, env, tx, "AWP", scoreTestAnswers(t, env.Study, "AWP-b", "baseline", "ucla3", 1, 2, 1))
	err := Score(context.Background(), env, tx)
	if err == nil || !strings.Contains(err.Error(), "missing from the participants table") {
		t.Errorf("got %v", err)
	}
}

// A failure's message carries no value from the export: neither the
// participant id nor the answer.
func TestScoreErrorsNameNoValues(t *testing.T) {
	env := scoreTestEnv(t)
	rows := scoreTestAnswers(t, env.Study, "AWP-secretid", "baseline", "ucla3", 1, 9, 1)
	w, _ := warehouse.OpenWarehouse(t.TempDir(), true)
	tx, _ := w.Begin(nil)
	scoreTestWriteResponses(t, env, tx, rows, true)
	err := Score(context.Background(), env, tx)
	if err == nil || strings.Contains(err.Error(), "secretid") || strings.Contains(err.Error(), "9") {
		t.Errorf("error %v", err)
	}
}

// No responses at all: every trust gets an empty scores file, and the
// reliability rows are there with n = 0 and alpha null.
func TestScoreEmpty(t *testing.T) {
	env := scoreTestEnv(t)
	tx := scoreTestRun(t, env, nil)
	files, err := warehouse.TableFiles(tx.Dir, "scores")
	if err != nil || len(files) != len(env.Study.Trusts) {
		t.Fatalf("%d scores files (%v), want %d", len(files), err, len(env.Study.Trusts))
	}
	if got := scoreTestReadScores(t, tx.Dir); len(got) != 0 {
		t.Errorf("%d score rows", len(got))
	}
	rel, order := reliabilityTestRead(t, tx.Dir)
	if len(order) != 48 {
		t.Errorf("%d reliability rows, want 48", len(order))
	}
	for k, r := range rel {
		if r.n != 0 || !math.IsNaN(r.alpha) {
			t.Errorf("%s: %+v", k, r)
		}
	}
}

// scoreCodes maps plain (not dictionary-encoded) strings too, looking each
// run of equal values up once.
func TestScoreCodesPlain(t *testing.T) {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues([]string{"x", "x", "y", "x"}, nil)
	a := b.NewStringArray()
	defer a.Release()
	calls := 0
	var c warehouse.ScoreCodes
	if err := c.Init(a, func(s string) int {
		calls++
		if s == "x" {
			return 1
		}
		return -1
	}); err != nil {
		t.Fatal(err)
	}
	var got []int
	for r := 0; r < a.Len(); r++ {
		got = append(got, c.At(r))
	}
	if !slices.Equal(got, []int{1, 1, -1, 1}) || calls != 3 {
		t.Errorf("codes %v after %d lookups", got, calls)
	}
}
