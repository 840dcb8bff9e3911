package pipeline

import (
	"context"
	"encoding/csv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/pipeline/compare"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
	"github.com/connectingpeople/cpi/stats"
)

// compareTestRow reads a table into rows of named cells: strings as they
// are, int32 as numbers, doubles as numbers (NaN for null).
type compareTestRow struct {
	str map[string]string
	num map[string]float64
}

func compareTestReadTable(t *testing.T, dir, table string) []compareTestRow {
	t.Helper()
	var out []compareTestRow
	err := warehouse.ScanTable(context.Background(), dir, table, func(rec arrow.RecordBatch) error {
		for i := 0; i < int(rec.NumRows()); i++ {
			r := compareTestRow{str: map[string]string{}, num: map[string]float64{}}
			for c := 0; c < int(rec.NumCols()); c++ {
				name := rec.ColumnName(c)
				switch col := rec.Column(c).(type) {
				case *array.String:
					if col.IsValid(i) {
						r.str[name] = col.Value(i)
					}
				case *array.Int32:
					r.num[name] = math.NaN()
					if col.IsValid(i) {
						r.num[name] = float64(col.Value(i))
					}
				case *array.Float64:
					r.num[name] = math.NaN()
					if col.IsValid(i) {
						r.num[name] = col.Value(i)
					}
				case *array.Boolean: // 1 true, 0 false
					r.num[name] = math.NaN()
					if col.IsValid(i) {
						r.num[name] = 0
						if col.Value(i) {
							r.num[name] = 1
						}
					}
				}
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareTestRel(a, b float64) float64 {
	if a == b {
		return 0
	}
	return math.Abs(a-b) / math.Max(math.Abs(a), math.Abs(b))
}

// compareTestSplitTeams splits every team in two by the participant's
// position within the team in study_id order (odd: "<team>a", even:
// "<team>b"), as testdata/reference/trust_effects.R does.
func compareTestSplitTeams(ps []compareTestParticipant) []compareTestParticipant {
	out := slices.Clone(ps)
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	pos := map[string]int{}
	for i := range out {
		pos[out[i].team]++
		if pos[out[i].team]%2 == 1 {
			out[i].team += "a"
		} else {
			out[i].team += "b"
		}
	}
	return out
}

// TestTrustEffectsAgainstR: trust_effects (method cr2_by_trust) of
// rguk.total on the reference data, as it is (one team per arm in each
// trust) and with every team split in two, equal clubSandwich's
// coef_test/conf_int of y_fu ~ 0 + trust + trust:arm + y_base with CR2 by
// team (testdata/reference/trust_effects.csv, written by
// trust_effects.R) to 1e-8 relative, and the notes say when a trust has
// one team per arm.
func TestTrustEffectsAgainstR(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "testdata", "reference", "trust_effects.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	want := map[string]map[string][]string{} // data → trust → record
	for _, r := range recs[1:] {
		if want[r[col["data"]]] == nil {
			want[r[col["data"]]] = map[string][]string{}
		}
		want[r[col["data"]]][r[col["trust"]]] = r
	}
	if len(want["ancova"]) != 5 || len(want["split"]) != 5 {
		t.Fatalf("reference: %d and %d trusts, want 5 and 5", len(want["ancova"]), len(want["split"]))
	}
	env := compareTestEnv(t)
	ref, high := compareTestAncova(t)
	for _, data := range []string{"ancova", "split"} {
		ps := ref
		if data == "split" {
			ps = compareTestSplitTeams(ref)
		}
		dir := compareTestRun(t, env, ps, compareTestBands(high))
		rows := compareTestReadTable(t, dir, "trust_effects")
		checked := 0
		for _, r := range rows {
			if r.str["outcome"] != "rguk.total" {
				continue
			}
			w, ok := want[data][r.str["trust"]]
			if !ok || r.str["wave"] != "followup" || r.str["method"] != compare.MethodByTrust {
				t.Errorf("%s: unexpected row %v", data, r.str)
				continue
			}
			checked++
			for _, c := range []string{"estimate", "std_error", "df", "p_value", "ci_low", "ci_high", "n_obs"} {
				v, err := strconv.ParseFloat(w[col[c]], 64)
				if err != nil {
					t.Fatal(err)
				}
				if rel := compareTestRel(r.num[c], v); !(rel <= 1e-8) {
					t.Errorf("%s %s %s: %v, R %v (relative difference %.3g)", data, r.str["trust"], c, r.num[c], v, rel)
				}
			}
			teams := 2.0
			if data == "split" {
				teams = 4
			}
			if r.num["n_clusters"] != teams {
				t.Errorf("%s %s: %v teams, want %v", data, r.str["trust"], r.num["n_clusters"], teams)
			}
			one := strings.Contains(r.str["note"], "confounded with the teams")
			if one != (data == "ancova") {
				t.Errorf("%s %s: note %q", data, r.str["trust"], r.str["note"])
			}
		}
		if checked != 5 {
			t.Errorf("%s: %d trusts of rguk.total checked, want 5", data, checked)
		}
	}
}

// compareTestStudyWaves loads the default study with the waves given.
func compareTestStudyWaves(t *testing.T, waves string) *schemas.Study {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "schemas", "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(string(b), "waves: [baseline, followup]", "waves: "+waves, 1)
	if src == string(b) {
		t.Fatal("study.yaml: no waves line to replace")
	}
	file := filepath.Join(t.TempDir(), "study.yaml")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := schemas.Load(file, schemas.KnownAnalyses(compare.Names()...))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// compareTestWriteWave adds rguk.total scores at another wave: one more
// file in each trust's partition of scores.
func compareTestWriteWave(t *testing.T, env warehouse.Env, tx *warehouse.Tx, ps []compareTestParticipant, wave string, y map[string]float64) {
	t.Helper()
	st := env.Study.Tables.Table("scores")
	c := func(n string) int { return warehouse.ColIndex(st, n) }
	byTrust := map[string][]compareTestParticipant{}
	for _, p := range ps {
		byTrust[p.trust] = append(byTrust[p.trust], p)
	}
	for tr, list := range byTrust {
		sort.Slice(list, func(i, j int) bool { return list[i].id < list[j].id })
		schema := warehouse.ArrowSchema(env, "scores", nil)
		tf, err := tx.CreateTableFile(schema, "scores", "trust", tr, wave)
		if err != nil {
			t.Fatal(err)
		}
		rw := warehouse.NewRowWriter(schema, tf)
		for _, p := range list {
			v, ok := y[p.id]
			if !ok {
				continue
			}
			rw.Str(c("study_id"), p.id)
			rw.Str(c("wave"), wave)
			rw.Str(c("instrument"), "rguk")
			rw.Str(c("scale"), "total")
			rw.Str(c("trust"), p.trust)
			rw.Str(c("team"), p.team)
			rw.Str(c("arm"), p.arm)
			rw.Float64(c("value"), v, true)
			rw.Int32(c("items_answered"), 27, true)
			rw.Int32(c("items_total"), 27, true)
			rw.Bool(c("prorated"), false)
			rw.Float64(c("base"), p.yBase, !math.IsNaN(p.yBase))
			rw.Float64(c("chg"), v-p.yBase, !math.IsNaN(p.yBase))
			if err := rw.RowDone(); err != nil {
				t.Fatal(err)
			}
		}
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// compareTestDense fits y ~ x by OLS with CR2 by cluster (the dense stats
// functions) and returns the test of coefficient j.
func compareTestDense(t *testing.T, rows [][]float64, y []float64, cluster []string, j int) stats.CoefTest {
	t.Helper()
	x := mat.NewDense(len(rows), len(rows[0]), nil)
	for i, r := range rows {
		x.SetRow(i, r)
	}
	fit, err := stats.OLS(x, y, nil)
	if err != nil {
		t.Fatal(err)
	}
	codes, _ := stats.Codes(cluster)
	cr2, err := fit.CR2(codes)
	if err != nil {
		t.Fatal(err)
	}
	return cr2.Test(j, 0.95)
}

// TestCompareEveryWave: a study of three waves (baseline, month6,
// followup) with rguk.total at every wave — month6 missing for some
// participants, so the two follow-up waves have different populations —
// gets effects, balance and trust_effects rows at month6 and at followup,
// and the primary (cr2), change (cr2) and per-trust estimates at each wave
// equal a recomputation by the dense stats functions on a frame this test
// builds itself from the participants.
func TestCompareEveryWave(t *testing.T) {
	s := compareTestStudyWaves(t, "[baseline, month6, followup]")
	env := warehouse.Env{Study: s, Version: "test"}
	if got := s.FollowupWaves(); !slices.Equal(got, []string{"month6", "followup"}) {
		t.Fatalf("follow-up waves %v", got)
	}
	ref, high := compareTestAncova(t)
	rng := rand.New(rand.NewPCG(6, 12))
	y6 := map[string]float64{}
	for _, p := range ref {
		if rng.Float64() < 0.15 {
			continue // not interviewed at month6
		}
		y6[p.id] = math.Round(10*((p.yBase+p.yFU)/2+rng.NormFloat64())) / 10
	}
	tx := testTx(t)
	compareTestWrite(t, env, tx, ref)
	compareTestWriteWave(t, env, tx, ref, "month6", y6)
	compareTestWriteFidelity(t, env, tx, compareTestBands(high))
	if err := compare.Compare(context.Background(), env, tx); err != nil {
		t.Fatal(err)
	}
	effects := compareTestReadTable(t, tx.Dir, "effects")
	trusts := compareTestReadTable(t, tx.Dir, "trust_effects")
	balance := compareTestReadTable(t, tx.Dir, "balance")

	// Every analysis × outcome × method at each wave, and an icc row of
	// each mixed model fitted.
	perWave, icc := map[string]int{}, map[string]int{}
	for _, r := range effects {
		perWave[r.str["wave"]]++
		if r.str["analysis"] == "mixed" && r.str["term"] != "icc" && !math.IsNaN(r.num["estimate"]) {
			icc[r.str["wave"]]++
		}
	}
	methods := 0
	for _, a := range s.Analysis.Analyses {
		methods += len(compare.AnalysisMethods()[a])
	}
	for _, wave := range []string{"month6", "followup"} {
		if want := methods*len(s.Analysis.Outcomes) + icc[wave]; perWave[wave] != want || icc[wave] == 0 {
			t.Errorf("effects at %s: %d rows, want %d (%d icc rows)", wave, perWave[wave], want, icc[wave])
		}
	}
	if len(perWave) != 2 {
		t.Errorf("effects waves %v, want month6 and followup", perWave)
	}
	balWaves := map[string]int{}
	for _, r := range balance {
		balWaves[r.str["wave"]]++
		if r.num["n_intervention"] < 0 || r.num["n_control"] < 0 || math.IsNaN(r.num["n_intervention"]) {
			t.Errorf("balance %v: counts %v, %v", r.str, r.num["n_intervention"], r.num["n_control"])
		}
	}
	if balWaves["month6"] == 0 || balWaves["month6"] != balWaves["followup"] {
		t.Errorf("balance rows by wave %v, want the same number at month6 and followup", balWaves)
	}

	// The independent recomputation, wave by wave.
	trustOrder := s.TrustCodes()
	for _, wave := range []string{"month6", "followup"} {
		var primX, trustX [][]float64
		var yW, yChg []float64
		var teams []string
		n := map[string]int{}
		for _, p := range ref {
			yw := p.yFU
			if wave == "month6" {
				v, ok := y6[p.id]
				if !ok {
					continue
				}
				yw = v
			}
			if p.withdrawn || math.IsNaN(yw) || math.IsNaN(p.yBase) {
				continue
			}
			arm := 0.0
			if p.arm == "intervention" {
				arm = 1
			}
			ti := slices.Index(trustOrder, p.trust)
			row := []float64{1, arm, p.yBase, 0, 0, 0, 0}
			if ti > 0 {
				row[2+ti] = 1
			}
			primX = append(primX, row)
			tr := make([]float64, 2*len(trustOrder)+1)
			tr[ti], tr[len(trustOrder)+ti] = 1, arm
			tr[2*len(trustOrder)] = p.yBase
			trustX = append(trustX, tr)
			yW = append(yW, yw)
			yChg = append(yChg, yw-p.yBase)
			teams = append(teams, p.team)
			n[p.trust]++
		}
		prim := compareTestDense(t, primX, yW, teams, 1)
		chgX := make([][]float64, len(primX))
		for i, r := range primX {
			chgX[i] = append([]float64{r[0], r[1]}, r[3:]...)
		}
		chg := compareTestDense(t, chgX, yChg, teams, 1)
		want := map[string]stats.CoefTest{"primary/cr2": prim, "change/cr2": chg}
		found := 0
		for _, r := range effects {
			key := r.str["analysis"] + "/" + r.str["method"]
			wt, ok := want[key]
			if !ok || r.str["outcome"] != "rguk.total" || r.str["wave"] != wave {
				continue
			}
			found++
			if int(r.num["n_obs"]) != len(yW) {
				t.Errorf("%s %s: n_obs %v, want %d", key, wave, r.num["n_obs"], len(yW))
			}
			for c, v := range map[string]float64{"estimate": wt.Estimate, "std_error": wt.StdError, "df": wt.DF, "p_value": wt.PValue} {
				if rel := compareTestRel(r.num[c], v); !(rel <= 1e-9) {
					t.Errorf("%s at %s %s: %v, recomputed %v (relative %.3g)", key, wave, c, r.num[c], v, rel)
				}
			}
		}
		if found != 2 {
			t.Errorf("%s: %d of primary/cr2 and change/cr2 found", wave, found)
		}
		found = 0
		for _, r := range trusts {
			if r.str["outcome"] != "rguk.total" || r.str["wave"] != wave {
				continue
			}
			found++
			ti := slices.Index(trustOrder, r.str["trust"])
			wt := compareTestDense(t, trustX, yW, teams, len(trustOrder)+ti)
			if int(r.num["n_obs"]) != n[r.str["trust"]] {
				t.Errorf("trust %s at %s: n_obs %v, want %d", r.str["trust"], wave, r.num["n_obs"], n[r.str["trust"]])
			}
			for c, v := range map[string]float64{"estimate": wt.Estimate, "std_error": wt.StdError, "df": wt.DF, "ci_low": wt.CILow, "ci_high": wt.CIHigh} {
				if rel := compareTestRel(r.num[c], v); !(rel <= 1e-9) {
					t.Errorf("trust %s at %s %s: %v, recomputed %v (relative %.3g)", r.str["trust"], wave, c, r.num[c], v, rel)
				}
			}
		}
		if found != len(trustOrder) {
			t.Errorf("%s: %d trust_effects rows of rguk.total, want %d", wave, found, len(trustOrder))
		}
	}
	// The two waves' primary estimates differ (not one wave's copied).
	est := map[string]float64{}
	for _, r := range effects {
		if r.str["analysis"] == "primary" && r.str["method"] == "cr2" && r.str["outcome"] == "rguk.total" {
			est[r.str["wave"]] = r.num["estimate"]
		}
	}
	if est["month6"] == est["followup"] || math.IsNaN(est["month6"]) {
		t.Errorf("primary estimates by wave %v", est)
	}
	t.Logf("primary rguk.total: month6 %.4f, followup %.4f", est["month6"], est["followup"])
}
