package pipeline

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/fidelity"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// fidelityTestRating is one rater's ratings of a team in a period: values
// are cpf01..cpf12 in order, -1 for a blank.
type fidelityTestRating struct {
	team, period, rater, role string
	values                    []int
}

func fidelityTestEnv(t *testing.T) warehouse.Env {
	t.Helper()
	study, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	return warehouse.Env{Study: study, Version: "test"}
}

// fidelityTestWriteRatings writes fidelity_ratings into tx: one file per
// trust, rows sorted by the table's key, as ingest would.
func fidelityTestWriteRatings(t *testing.T, env warehouse.Env, tx *warehouse.Tx, ratings []fidelityTestRating) {
	t.Helper()
	s := env.Study
	type row struct {
		team, period, rater, comp, role string
		value                           int
	}
	byTrust := map[string][]row{}
	for _, r := range ratings {
		team, ok := s.Team(r.team)
		if !ok {
			t.Fatalf("test rating names unknown team %s", r.team)
		}
		if len(r.values) != len(s.Fidelity.Components) {
			t.Fatalf("test rating of %s has %d values", r.team, len(r.values))
		}
		for k, v := range r.values {
			byTrust[team.Trust] = append(byTrust[team.Trust], row{r.team, r.period, r.rater, s.Fidelity.Components[k].Code, r.role, v})
		}
	}
	tb := s.Tables.Table("fidelity_ratings")
	schema := warehouse.ArrowSchema(env, "fidelity_ratings", nil)
	trusts := make([]string, 0, len(byTrust))
	for trust := range byTrust {
		trusts = append(trusts, trust)
	}
	sort.Strings(trusts)
	for _, trust := range trusts {
		rows := byTrust[trust]
		sort.Slice(rows, func(i, j int) bool {
			a, b := rows[i], rows[j]
			return a.team+"\x00"+a.period+"\x00"+a.rater+"\x00"+a.comp < b.team+"\x00"+b.period+"\x00"+b.rater+"\x00"+b.comp
		})
		tf, err := tx.CreateTableFile(schema, "fidelity_ratings", "trust", trust, "data")
		if err != nil {
			t.Fatal(err)
		}
		w := warehouse.NewRowWriter(schema, tf)
		for i, r := range rows {
			team, _ := s.Team(r.team)
			w.Str(warehouse.ColIndex(tb, "team"), r.team)
			w.Str(warehouse.ColIndex(tb, "period"), r.period)
			w.Str(warehouse.ColIndex(tb, "rater_id"), r.rater)
			w.Str(warehouse.ColIndex(tb, "component"), r.comp)
			w.Str(warehouse.ColIndex(tb, "trust"), trust)
			w.Str(warehouse.ColIndex(tb, "arm"), team.Arm)
			w.Str(warehouse.ColIndex(tb, "rater_role"), r.role)
			w.Date(warehouse.ColIndex(tb, "rating_date"), 17600, true)
			w.Int32(warehouse.ColIndex(tb, "value"), int32(r.value), r.value >= 0)
			w.Str(warehouse.ColIndex(tb, "source_sha256"), strings.Repeat("0", 64))
			w.Int32(warehouse.ColIndex(tb, "source_line"), int32(i+2), true)
			if err := w.RowDone(); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// fidelityTestRow is a row of the fidelity table as read back.
type fidelityTestRow struct {
	team, period, trust, arm string
	nRaters                  int32
	total, max, pct, icc     float64
	totalOK, pctOK, iccOK    bool
	band, lowest             string
	bandOK, lowestOK         bool
}

func fidelityTestReadFidelity(t *testing.T, dir string) []fidelityTestRow {
	t.Helper()
	var out []fidelityTestRow
	err := warehouse.ScanTable(context.Background(), dir, "fidelity", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "team", "period", "trust", "arm", "n_raters", "total", "max", "pct", "band", "lowest_components", "icc2_1")
		if err != nil {
			return err
		}
		str := func(c, i int) (string, bool) {
			a := cols[c].(*array.String)
			return a.Value(i), !a.IsNull(i)
		}
		num := func(c, i int) (float64, bool) {
			a := cols[c].(*array.Float64)
			return a.Value(i), !a.IsNull(i)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			var r fidelityTestRow
			r.team, _ = str(0, i)
			r.period, _ = str(1, i)
			r.trust, _ = str(2, i)
			r.arm, _ = str(3, i)
			r.nRaters = cols[4].(*array.Int32).Value(i)
			r.total, r.totalOK = num(5, i)
			r.max, _ = num(6, i)
			r.pct, r.pctOK = num(7, i)
			r.band, r.bandOK = str(8, i)
			r.lowest, r.lowestOK = str(9, i)
			r.icc, r.iccOK = num(10, i)
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fidelityTestComponent is a row of fidelity_components as read back.
type fidelityTestComponent struct {
	mean         float64
	meanOK       bool
	min, max     int32
	minOK, maxOK bool
	raters       int32
}

func fidelityTestReadComponents(t *testing.T, dir string) (map[string]fidelityTestComponent, []string) {
	t.Helper()
	out := map[string]fidelityTestComponent{}
	var keys []string
	err := warehouse.ScanTable(context.Background(), dir, "fidelity_components", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "team", "period", "component", "mean", "min", "max", "raters")
		if err != nil {
			return err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			key := cols[0].(*array.String).Value(i) + " " + cols[1].(*array.String).Value(i) + " " + cols[2].(*array.String).Value(i)
			mean, min, max := cols[3].(*array.Float64), cols[4].(*array.Int32), cols[5].(*array.Int32)
			c := fidelityTestComponent{raters: cols[6].(*array.Int32).Value(i)}
			// A null's slot holds whatever the writer left there: read values only.
			if !mean.IsNull(i) {
				c.mean, c.meanOK = mean.Value(i), true
			}
			if !min.IsNull(i) {
				c.min, c.minOK = min.Value(i), true
			}
			if !max.IsNull(i) {
				c.max, c.maxOK = max.Value(i), true
			}
			out[key] = c
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, keys
}

// fidelityTestICCRatings reads testdata/reference/icc.csv (12 components ×
// 3 raters; psych::ICC gives ICC(2,1) = 0.850678733031674) as three raters'
// ratings of one team in one period.
func fidelityTestICCRatings(t *testing.T, team, period string) []fidelityTestRating {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "reference", "icc.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]fidelityTestRating, len(recs[0]))
	for j := range out {
		out[j] = fidelityTestRating{team: team, period: period, rater: fmt.Sprintf("X%d", j+1), role: "researcher"}
	}
	for _, rec := range recs[1:] {
		for j, cell := range rec {
			v, err := strconv.Atoi(cell)
			if err != nil {
				t.Fatal(err)
			}
			out[j].values = append(out[j].values, v)
		}
	}
	return out
}

func fidelityTestConst(v int) []int {
	out := make([]int, 12)
	for i := range out {
		out[i] = v
	}
	return out
}

// fidelityTestRun builds a warehouse with the ratings, runs Fidelity and
// returns the generation folder.
func fidelityTestRun(t *testing.T, env warehouse.Env, ratings []fidelityTestRating) string {
	t.Helper()
	tx := testTx(t)
	fidelityTestWriteRatings(t, env, tx, ratings)
	if err := fidelity.Fidelity(context.Background(), env, tx); err != nil {
		t.Fatal(err)
	}
	return tx.Dir
}

func TestFidelityScores(t *testing.T) {
	env := fidelityTestEnv(t)
	blank := -1
	// One blank component: eleven 3s sum to 33, prorated 33 / 11 × 12 = 36,
	// 36 / 48 = 75% exactly: high (the threshold itself belongs to the band).
	elevenThrees := append(fidelityTestConst(3)[:11], blank)
	// Two blanks: not scored, whatever the rest says.
	twoBlanks := fidelityTestConst(4)
	twoBlanks[0], twoBlanks[5] = blank, blank
	// One blank, eleven 2s: 22 × 12 / 11 = 24 = 50% exactly: moderate.
	elevenTwos := append([]int{blank}, fidelityTestConst(2)[:11]...)
	// Ties: cpf06 is lowest (0); cpf02, cpf04 and cpf08 tie at 1, so the code
	// order keeps cpf02 and cpf04.
	ties := []int{4, 1, 4, 1, 4, 0, 4, 1, 4, 4, 4, 4}
	// The hand-worked ICC case (see TestFidelityICC): rater A totals 24,
	// rater B 36, team total 30 = 62.5%.
	handA := []int{1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 1}
	handB := []int{2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 2, 4}

	ratings := []fidelityTestRating{
		{"TEWV-01", "month3", "R01", "researcher", elevenThrees},
		{"TEWV-01", "month6", "R01", "researcher", twoBlanks},
		{"TEWV-01", "month6", "R02", "practitioner", elevenTwos},
		// Totals 24 and 23: 23.5 / 48 = 48.958…%: low.
		{"TEWV-02", "month3", "R03", "researcher", fidelityTestConst(2)},
		{"TEWV-02", "month3", "R04", "practitioner", append(fidelityTestConst(2)[:11], 1)},
		{"BDCT-01", "month3", "R05", "researcher", ties},
		// Only raters that cannot be scored: n_raters 0, but the components
		// they did rate are still summarised.
		{"BDCT-02", "month6", "R06", "researcher", twoBlanks},
		{"AWP-01", "month3", "A", "researcher", handA},
		{"AWP-01", "month3", "B", "practitioner", handB},
	}
	ratings = append(ratings, fidelityTestICCRatings(t, "EPUT-01", "month6")...)
	dir := fidelityTestRun(t, env, ratings)

	rows := fidelityTestReadFidelity(t, dir)
	if len(rows) != 20 {
		t.Fatalf("fidelity has %d rows, want 20 (10 teams × 2 periods)", len(rows))
	}
	for i := 1; i < len(rows); i++ {
		if rows[i-1].team+"\x00"+rows[i-1].period >= rows[i].team+"\x00"+rows[i].period {
			t.Errorf("rows not sorted by key at %d: %s %s after %s %s", i, rows[i].team, rows[i].period, rows[i-1].team, rows[i-1].period)
		}
	}
	get := func(team, period string) fidelityTestRow {
		for _, r := range rows {
			if r.team == team && r.period == period {
				return r
			}
		}
		t.Fatalf("no fidelity row for %s %s", team, period)
		return fidelityTestRow{}
	}
	scored := []struct {
		team, period string
		n            int32
		total, pct   float64
		band         string
	}{
		{"TEWV-01", "month3", 1, 36, 75, "high"},
		{"TEWV-01", "month6", 1, 24, 50, "moderate"},
		{"TEWV-02", "month3", 2, 23.5, 23.5 / 48 * 100, "low"},
		{"BDCT-01", "month3", 1, 35, 35.0 / 48 * 100, "moderate"},
		{"AWP-01", "month3", 2, 30, 62.5, "moderate"},
		// icc.csv column sums 16, 14 and 16: (16 + 14 + 16) / 3 = 15.333….
		{"EPUT-01", "month6", 3, 46.0 / 3, 46.0 / 3 / 48 * 100, "low"},
	}
	for _, c := range scored {
		r := get(c.team, c.period)
		if r.nRaters != c.n || !r.totalOK || math.Abs(r.total-c.total) > 1e-12 || !r.pctOK || math.Abs(r.pct-c.pct) > 1e-12 || r.band != c.band || r.max != 48 {
			t.Errorf("%s %s: n_raters %d total %v (%v) pct %v band %q max %v; want %d %v %v %q 48",
				c.team, c.period, r.nRaters, r.total, r.totalOK, r.pct, r.band, r.max, c.n, c.total, c.pct, c.band)
		}
		team, _ := env.Study.Team(c.team)
		if r.trust != team.Trust || r.arm != team.Arm {
			t.Errorf("%s: trust %s arm %s", c.team, r.trust, r.arm)
		}
	}
	// The exact thresholds, from the total alone.
	if r := get("TEWV-01", "month3"); r.pct != 75 {
		t.Errorf("36 / 48 gives pct %v, want exactly 75", r.pct)
	}
	if r := get("TEWV-01", "month6"); r.pct != 50 {
		t.Errorf("24 / 48 gives pct %v, want exactly 50", r.pct)
	}
	for pct, want := range map[float64]string{75: "high", 74.99: "moderate", 50: "moderate", 49.99: "low", 0: "low", 100: "high"} {
		if got := env.Study.Band(pct); got != want {
			t.Errorf("Band(%v) = %s, want %s", pct, got, want)
		}
	}

	if r := get("BDCT-01", "month3"); r.lowest != "cpf06 cpf02 cpf04" {
		t.Errorf("lowest_components with ties = %q, want %q", r.lowest, "cpf06 cpf02 cpf04")
	}
	// TEWV-01 month3: all 3s with cpf12 blank, so the first three codes.
	if r := get("TEWV-01", "month3"); r.lowest != "cpf01 cpf02 cpf03" {
		t.Errorf("lowest_components = %q", r.lowest)
	}

	// Not rated, and rated but not scorable.
	for _, k := range [][2]string{{"HPFT-01", "month3"}, {"HPFT-01", "month6"}, {"BDCT-02", "month6"}} {
		r := get(k[0], k[1])
		if r.nRaters != 0 || r.totalOK || r.pctOK || r.bandOK || r.iccOK || r.max != 48 {
			t.Errorf("%s %s: want n_raters 0 and null total, pct, band, icc; got %+v", k[0], k[1], r)
		}
	}
	if r := get("HPFT-01", "month3"); r.lowestOK {
		t.Errorf("HPFT-01 has no ratings but lowest_components %q", r.lowest)
	}
	// BDCT-02's one rater left cpf01 and cpf06 blank and rated the rest 4.
	if r := get("BDCT-02", "month6"); r.lowest != "cpf02 cpf03 cpf04" {
		t.Errorf("BDCT-02 month6 lowest = %q", r.lowest)
	}

	// ICC: one rater only → null; psych::ICC on icc.csv; the hand case.
	if r := get("TEWV-01", "month6"); r.iccOK {
		t.Errorf("one scored rater, yet icc2_1 = %v", r.icc)
	}
	if r := get("EPUT-01", "month6"); !r.iccOK || math.Abs(r.icc-0.850678733031674) > 1e-8*0.850678733031674 {
		t.Errorf("icc2_1 on icc.csv = %v (%v), want 0.850678733031674 (psych::ICC)", r.icc, r.iccOK)
	}
	if r := get("AWP-01", "month3"); !r.iccOK || math.Abs(r.icc-48.0/103) > 1e-12 {
		t.Errorf("icc2_1 of the hand case = %v, want 48/103", r.icc)
	}

	comps, keys := fidelityTestReadComponents(t, dir)
	if len(keys) != 20*12 {
		t.Fatalf("fidelity_components has %d rows, want 240", len(keys))
	}
	if !sort.StringsAreSorted(keys) {
		t.Error("fidelity_components not sorted by key")
	}
	want := map[string]fidelityTestComponent{
		// (3 + 2) / 2, rated by both AWP-01 raters.
		"AWP-01 month3 cpf11": {mean: 2.5, meanOK: true, min: 2, max: 3, minOK: true, maxOK: true, raters: 2},
		"AWP-01 month3 cpf12": {mean: 2.5, meanOK: true, min: 1, max: 4, minOK: true, maxOK: true, raters: 2},
		// Blank for the one rater: no rating.
		"TEWV-01 month3 cpf12": {raters: 0},
		"TEWV-01 month3 cpf01": {mean: 3, meanOK: true, min: 3, max: 3, minOK: true, maxOK: true, raters: 1},
		// R01 (not scored) rated cpf02 4, R02 rated it 2: every non-blank rating counts.
		"TEWV-01 month6 cpf02": {mean: 3, meanOK: true, min: 2, max: 4, minOK: true, maxOK: true, raters: 2},
		"TEWV-01 month6 cpf01": {raters: 0},
		"HPFT-02 month6 cpf07": {raters: 0},
		// icc.csv row 8 is 2, 1, 3.
		"EPUT-01 month6 cpf08": {mean: 2, meanOK: true, min: 1, max: 3, minOK: true, maxOK: true, raters: 3},
	}
	for key, w := range want {
		if got := comps[key]; got != w {
			t.Errorf("fidelity_components %s = %+v, want %+v", key, got, w)
		}
	}
}

// TestFidelityICC checks ICC(2,1) on a case worked out by hand from the
// Shrout & Fleiss (1979) mean squares, independently of stats.ICC.
//
// Two raters, twelve components. Rater A: 1 1 1 1 1 3 3 3 3 3 3 1, rater B:
// 2 2 2 2 2 4 4 4 4 4 2 4. Write x_ij = μ + r_i + c_j + e_ij with μ = 2.5,
// rater effects c = (−0.5, +0.5) (column means 24/12 = 2 and 36/12 = 3),
// component effects r = −1 for cpf01–05, +1 for cpf06–10 and 0 for cpf11
// (3, 2) and cpf12 (1, 4), whose residuals are ±1. So, with n = 12 targets
// and k = 2 raters:
//
//	MSR = k Σ r_i² / (n−1) = 2 × 10 / 11 = 20/11
//	MSC = n Σ c_j² / (k−1) = 12 × 0.5 = 6
//	MSE = Σ e_ij² / ((n−1)(k−1)) = 4 / 11
//	ICC(2,1) = (MSR − MSE) / (MSR + (k−1) MSE + k (MSC − MSE) / n)
//	         = (16/11) / (24/11 + 2 × (62/11) / 12) = (16/11) / (103/33) = 48/103
//
// fidelityICC is given the scored raters; the second case below checks that
// only the components every one of them rated enter the matrix.
func TestFidelityICC(t *testing.T) {
	a := []int{1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 1}
	b := []int{2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 2, 4}
	raters := func(vals ...[]int) []*fidelity.FidelityRater {
		var out []*fidelity.FidelityRater
		for i, v := range vals {
			r := &fidelity.FidelityRater{Id: fmt.Sprint(i), Values: make([]int32, len(v)), Valid: make([]bool, len(v))}
			for k, x := range v {
				r.Values[k], r.Valid[k] = int32(x), x >= 0
			}
			out = append(out, r)
		}
		return out
	}
	got, ok := fidelity.FidelityICC(raters(a, b))
	if !ok || math.Abs(got-48.0/103) > 1e-12 {
		t.Errorf("ICC(2,1) = %v (%v), want 48/103 = %v", got, ok, 48.0/103)
	}
	// Complete components only: a third rater with cpf11 and cpf12 blank
	// restricts the matrix to cpf01–10. There rater C = rater A, so by the
	// same decomposition (μ = 2 + 1/3 over A, B, A; r = −1, +1 five times
	// each; column effects −1/3, +2/3, −1/3; no residual): MSR = 3 × 10 / 9
	// = 10/3, MSC = 10 × (1/9 + 4/9 + 1/9) / 2 = 10/3, MSE = 0, so
	// ICC(2,1) = (10/3) / (10/3 + 3 × (10/3) / 10) = 1 / 1.3 = 10/13.
	c := slices10(a)
	got, ok = fidelity.FidelityICC(raters(a, b, c))
	if !ok || math.Abs(got-10.0/13) > 1e-12 {
		t.Errorf("ICC(2,1) over complete components = %v (%v), want 10/13", got, ok)
	}
	// No variance at all: undefined, so null rather than NaN.
	if got, ok := fidelity.FidelityICC(raters(fidelityTestConst(2), fidelityTestConst(2))); ok {
		t.Errorf("ICC of constant ratings = %v, want not ok", got)
	}
}

// slices10 is v with its last two components blank.
func slices10(v []int) []int {
	out := append([]int(nil), v...)
	out[10], out[11] = -1, -1
	return out
}

func TestFidelityDeterministic(t *testing.T) {
	env := fidelityTestEnv(t)
	ratings := fidelityTestICCRatings(t, "EPUT-01", "month3")
	ratings = append(ratings, fidelityTestRating{"TEWV-01", "month6", "R01", "researcher", fidelityTestConst(3)})
	read := func(dir string) [][]byte {
		var out [][]byte
		for _, table := range []string{"fidelity", "fidelity_components"} {
			files, err := warehouse.TableFiles(dir, table)
			if err != nil || len(files) != 1 {
				t.Fatalf("%s: files %v, %v", table, files, err)
			}
			b, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		return out
	}
	first, second := read(fidelityTestRun(t, env, ratings)), read(fidelityTestRun(t, env, ratings))
	for i := range first {
		if !bytes.Equal(first[i], second[i]) {
			t.Errorf("table %d differs between two runs over the same ratings", i)
		}
	}
}

func TestFidelityRejectsBadRatings(t *testing.T) {
	env := fidelityTestEnv(t)
	bad := fidelityTestConst(2)
	bad[3] = 5 // outside 0..4
	tx := testTx(t)
	fidelityTestWriteRatings(t, env, tx, []fidelityTestRating{{"TEWV-01", "month3", "R01", "researcher", bad}})
	err := fidelity.Fidelity(context.Background(), env, tx)
	if err == nil || !strings.Contains(err.Error(), "outside 0..4") {
		t.Errorf("a rating of 5 gave %v, want an error", err)
	}
}

func TestFidelityNoRatings(t *testing.T) {
	env := fidelityTestEnv(t)
	dir := fidelityTestRun(t, env, nil)
	rows := fidelityTestReadFidelity(t, dir)
	if len(rows) != 20 {
		t.Fatalf("%d rows without ratings, want 20", len(rows))
	}
	for _, r := range rows {
		if r.nRaters != 0 || r.totalOK || r.bandOK || r.lowestOK {
			t.Errorf("%s %s: %+v", r.team, r.period, r)
		}
	}
}
