package pipeline

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/score"
	"github.com/connectingpeople/cpi/pipeline/synth"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// The scores of the bundled study, recomputed here from the generator's own
// item values by a second, deliberately plain implementation of DESIGN §8:
// the instruments' items, rules and numbers are typed out below from DESIGN,
// not read from the instrument definitions, and nothing of score.go is
// called. A mistake in Score, in the instrument files or in ingest shows up
// as a differing row.

// scoreE2EKey is a scores table key.
type scoreE2EKey struct{ sid, wave, inst, scale string }

// scoreE2ERow is the rest of a scores row.
type scoreE2ERow struct {
	trust, team, arm string
	value            float64
	valueOK          bool
	answered, total  int32
	prorated         bool
	base             float64
	baseOK           bool
	chg              float64
	chgOK            bool
}

// scoreE2ERasch is DESIGN §8's SWEMWBS raw (7…35) → metric table.
var scoreE2ERasch = [29]float64{7.00, 9.51, 11.25, 12.40, 13.33, 14.08, 14.75, 15.32, 15.84, 16.36,
	16.88, 17.43, 17.98, 18.59, 19.25, 19.98, 20.73, 21.54, 22.35, 23.21, 24.11, 25.03, 26.02, 27.03, 28.13,
	29.31, 30.70, 32.55, 35.00}

// scoreE2EEQ5D is DESIGN §8's England decrements for levels 1…5 of each
// dimension, in the order mobility, self-care, usual activities,
// pain/discomfort, anxiety/depression.
var scoreE2EEQ5D = [5]struct {
	item string
	dec  [5]float64
}{
	{"eq5d_mo", [5]float64{0, .058, .076, .207, .274}},
	{"eq5d_sc", [5]float64{0, .050, .080, .164, .203}},
	{"eq5d_ua", [5]float64{0, .050, .063, .162, .184}},
	{"eq5d_pd", [5]float64{0, .063, .084, .276, .335}},
	{"eq5d_ad", [5]float64{0, .078, .104, .285, .289}},
}

// scoreE2EAnswers is one interview's answers: item → value, answered items
// only.
type scoreE2EAnswers map[string]int32

// scoreE2ESum is a sum score of the items format%02d/format%d 1…n with up
// to allowed missing, prorated as mean of the answered × n (the rational
// sum·n/k rounded once to a double); also the integer sum and k for the
// Rasch lookup.
func scoreE2ESum(a scoreE2EAnswers, format string, n, allowed int) (r scoreE2ERow, sum, k int) {
	for i := 1; i <= n; i++ {
		if v, ok := a[fmt.Sprintf(format, i)]; ok {
			sum += int(v)
			k++
		}
	}
	r.answered, r.total = int32(k), int32(n)
	if k == n {
		r.value, r.valueOK = float64(sum), true
	} else if k > 0 && n-k <= allowed {
		r.value, r.valueOK, r.prorated = float64(sum*n)/float64(k), true, true
	}
	return r, sum, k
}

// scoreE2EScales recomputes one interview's scores: scale rows of every
// instrument asked at the wave (GAS at follow-up only).
func scoreE2EScales(wave string, a scoreE2EAnswers) map[[2]string]scoreE2ERow {
	out := map[[2]string]scoreE2ERow{}
	out[[2]string{"rguk", "total"}], _, _ = scoreE2ESum(a, "rg%02d", 27, 3)
	out[[2]string{"qpr", "total"}], _, _ = scoreE2ESum(a, "qpr%02d", 15, 3)
	out[[2]string{"ucla3", "total"}], _, _ = scoreE2ESum(a, "ucla%d", 3, 0)

	sw, sum, k := scoreE2ESum(a, "swemwbs%d", 7, 1)
	out[[2]string{"swemwbs", "total"}] = sw
	metric := sw
	if sw.valueOK {
		// sum·7/k rounded half up: ⌊(2·sum·7 + k) / 2k⌋ in integers.
		raw := (2*sum*7 + k) / (2 * k)
		metric.value = scoreE2ERasch[raw-7]
	}
	out[[2]string{"swemwbs", "metric"}] = metric

	idx := scoreE2ERow{total: 5}
	var dec [5]float64
	for d, dim := range scoreE2EEQ5D {
		if v, ok := a[dim.item]; ok {
			dec[d] = dim.dec[v-1]
			idx.answered++
		}
	}
	if idx.answered == 5 {
		// DESIGN's 1 − Σ, summed in dimension order. (In doubles this is
		// an ulp off the exact three-decimal index for about a third of
		// the bundled states, on both sides alike.)
		idx.value, idx.valueOK = 1-(dec[0]+dec[1]+dec[2]+dec[3]+dec[4]), true
	}
	out[[2]string{"eq5d5l", "index"}] = idx
	vas := scoreE2ERow{total: 1}
	if v, ok := a["eq5d_vas"]; ok {
		vas.value, vas.valueOK, vas.answered = float64(v), true, 1
	}
	out[[2]string{"eq5d5l", "vas"}] = vas

	// csri.cost: Σ units × DESIGN's unit cost in item order; null with any
	// service blank.
	cost := scoreE2ERow{total: 9}
	var c float64
	for _, item := range []string{"su_gp", "su_practice_nurse", "su_cmht", "su_psychiatrist", "su_ae", "su_inpatient_days", "su_social_worker", "su_day_centre", "su_peer_support"} {
		if v, ok := a[item]; ok {
			c += float64(v) * econTestUnitCosts[item]
			cost.answered++
		}
	}
	if cost.answered == 9 {
		cost.value, cost.valueOK = c, true
	}
	out[[2]string{"csri", "cost"}] = cost

	if wave == "followup" {
		const rho = 0.3
		gas := scoreE2ERow{total: 3}
		var sw, sw2, swx float64
		for g := 1; g <= 3; g++ {
			x, ok := a[fmt.Sprintf("gas%d_level", g)]
			if !ok {
				continue // a goal with a blank level is left out
			}
			w := int32(1) // a blank weight is 1
			if v, ok := a[fmt.Sprintf("gas%d_weight", g)]; ok {
				w = v
			}
			gas.answered++
			sw += float64(w)
			sw2 += float64(w * w)
			swx += float64(w * x)
		}
		if gas.answered > 0 {
			gas.value, gas.valueOK = 50+10*swx/math.Sqrt((1-rho)*sw2+rho*(sw*sw)), true
		}
		out[[2]string{"gas", "t"}] = gas
	}
	return out
}

// scoreE2EExpected recomputes the scores table of the generator's study.
func scoreE2EExpected(t *testing.T, env warehouse.Env, opts synth.SynthOptions) map[scoreE2EKey]scoreE2ERow {
	t.Helper()
	want := map[scoreE2EKey]scoreE2ERow{}
	err := synth.Synthesize(context.Background(), env.Study, opts, func(trust string, r *synth.SynthInterview) error {
		if !r.Interviewed() {
			return nil
		}
		a := scoreE2EAnswers{}
		for i, name := range r.ItemNames {
			if r.Items[i].Valid {
				a[name] = r.Items[i].Value
			}
		}
		sid := trust + "-" + r.ParticipantID
		for is, row := range scoreE2EScales(r.Wave, a) {
			k := scoreE2EKey{sid, r.Wave, is[0], is[1]}
			if _, dup := want[k]; dup {
				return fmt.Errorf("the generator interviewed a participant twice at one wave")
			}
			row.trust, row.team, row.arm = trust, r.Team, r.Arm
			want[k] = row
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// eq5d5l.qaly at follow-up: 6/12 × (u_baseline + u_followup)/2, null
	// unless both indices are there; items count the indices on the path.
	for k, row := range want {
		if k.wave != "followup" || k.inst != "eq5d5l" || k.scale != "index" {
			continue
		}
		q := scoreE2ERow{total: 2, trust: row.trust, team: row.team, arm: row.arm}
		u0, ok0 := want[scoreE2EKey{k.sid, "baseline", "eq5d5l", "index"}]
		if row.valueOK {
			q.answered++
		}
		if ok0 && u0.valueOK {
			q.answered++
		}
		if q.answered == 2 {
			q.value, q.valueOK = 6.0/12*(u0.value+row.value)/2, true
		}
		want[scoreE2EKey{k.sid, k.wave, "eq5d5l", "qaly"}] = q
	}
	// base: the baseline value of the same scale, at every wave; chg =
	// value − base after baseline, when both are there.
	for k, row := range want {
		b, ok := want[scoreE2EKey{k.sid, "baseline", k.inst, k.scale}]
		if !ok || !b.valueOK {
			continue
		}
		row.base, row.baseOK = b.value, true
		if k.wave != "baseline" && row.valueOK {
			row.chg, row.chgOK = row.value-b.value, true
		}
		want[k] = row
	}
	return want
}

// scoreE2ERead reads the scores table in file order.
func scoreE2ERead(t *testing.T, gen string) ([]scoreE2EKey, []scoreE2ERow) {
	t.Helper()
	var keys []scoreE2EKey
	var rows []scoreE2ERow
	names := []string{"study_id", "wave", "instrument", "scale", "trust", "team", "arm", "value", "items_answered", "items_total", "prorated", "base", "chg"}
	err := warehouse.ScanTable(context.Background(), gen, "scores", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, names...)
		if err != nil {
			return err
		}
		str := func(c, i int) string { return cols[c].(*array.String).Value(i) }
		f64 := func(c, i int) (float64, bool) {
			a := cols[c].(*array.Float64)
			return a.Value(i), a.IsValid(i)
		}
		i32 := func(c, i int) int32 {
			a := cols[c].(*array.Int32)
			if a.IsNull(i) {
				t.Errorf("scores.%s is null", names[c])
			}
			return a.Value(i)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			keys = append(keys, scoreE2EKey{str(0, i), str(1, i), str(2, i), str(3, i)})
			var r scoreE2ERow
			r.trust, r.team, r.arm = str(4, i), str(5, i), str(6, i)
			r.value, r.valueOK = f64(7, i)
			r.answered, r.total = i32(8, i), i32(9, i)
			r.prorated = cols[10].(*array.Boolean).Value(i)
			r.base, r.baseOK = f64(11, i)
			r.chg, r.chgOK = f64(12, i)
			rows = append(rows, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys, rows
}

// scoreE2ESame compares two nullable doubles: both null, or equal exactly.
func scoreE2ESame(a float64, aOK bool, b float64, bOK bool) bool {
	return aOK == bOK && (!aOK || a == b)
}

// TestScoresOfBundledStudyRecomputedIndependently ingests and scores the
// bundled study and compares every scores row with scoreE2EExpected.
func TestScoresOfBundledStudyRecomputedIndependently(t *testing.T) {
	_, _ = scoreE2ECompare(t, filepath.Join("..", "testdata", "synth"), synth.SynthOptions{Seed: 1}, 2000)
}

// TestScoresOfLargerStudyRecomputedIndependently does the same on a study
// large enough that every trust's responses span several record batches
// (row groups), each written while the next is built in memory the writer
// reuses; every response is compared with the generator's too.
func TestScoresOfLargerStudyRecomputedIndependently(t *testing.T) {
	env := ingestTestEnv(t)
	opts := synth.SynthOptions{Seed: 2, Participants: 13000}
	inbox := t.TempDir()
	if _, err := synth.WriteSynth(context.Background(), env.Study, opts, inbox); err != nil {
		t.Fatal(err)
	}
	wh, gen := scoreE2ECompare(t, inbox, opts, 150000)
	checkResponsesAgainstGenerator(t, env, wh, opts)
	files, err := warehouse.TableFiles(gen, "responses")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		sizes := testRowGroupSizes(t, f)
		if len(sizes) < ingest.ResponsesBatches+1 {
			t.Errorf("%s: %d row groups; the test needs several", f, len(sizes))
		}
		// Row groups of exactly batchRows rows but the last: an interview
		// that crosses the boundary is split between two.
		for i, n := range sizes[:len(sizes)-1] {
			if n != warehouse.BatchRows {
				t.Errorf("%s: row group %d has %d rows, want %d", f, i, n, warehouse.BatchRows)
			}
		}
	}
}

// TestScoresOfShuffledStudyRecomputedIndependently ingests a study whose
// participants exports have their rows in random order (sorted by ingest
// through a temporary file: see rowSpill) and checks every response and
// every score, as for an export in order.
func TestScoresOfShuffledStudyRecomputedIndependently(t *testing.T) {
	env := ingestTestEnv(t)
	opts := synth.SynthOptions{Seed: 3, Participants: 3000, Canonical: true}
	inbox := t.TempDir()
	if _, err := synth.WriteSynth(context.Background(), env.Study, opts, inbox); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(inbox, "*_participants_*.csv"))
	if len(files) != 5 {
		t.Fatalf("%d participants exports", len(files))
	}
	r := rand.New(rand.NewPCG(3, 3))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(string(b), "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		body := lines[1:]
		r.Shuffle(len(body), func(i, j int) { body[i], body[j] = body[j], body[i] })
		if err := os.WriteFile(f, []byte(strings.Join(lines, "")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	wh, _ := scoreE2ECompare(t, inbox, opts, 30000)
	checkResponsesAgainstGenerator(t, env, wh, opts)
}

// scoreE2ECompare ingests and scores the study in inbox, written by the
// generator with opts, and compares every scores row with the independent
// recompute; at least minRows rows must compare. It returns the warehouse
// and its generation.
func scoreE2ECompare(t *testing.T, inbox string, opts synth.SynthOptions, minRows int) (string, string) {
	t.Helper()
	env := ingestTestEnv(t)
	wh := filepath.Join(t.TempDir(), "w")
	if _, err := RunStages(context.Background(), env, wh, "ingest", RunOptions{Create: true}, ingest.Ingest([]string{inbox}), score.Score); err != nil {
		t.Fatalf("ingest and score of %s: %v", inbox, err)
	}
	w, err := warehouse.OpenWarehouse(wh, false)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := w.CurrentDir()
	if err != nil {
		t.Fatal(err)
	}
	want := scoreE2EExpected(t, env, opts)
	keys, rows := scoreE2ERead(t, gen)

	seen := map[scoreE2EKey]bool{}
	var compared, nulls, blank, prorated, chg int
	for i, k := range keys {
		if seen[k] {
			t.Errorf("scores row %d: key %v twice", i, k)
			continue
		}
		seen[k] = true
		w, ok := want[k]
		if !ok {
			t.Errorf("scores row %d: %v is not a scale of an interview", i, k)
			continue
		}
		g := rows[i]
		if g.trust != w.trust || g.team != w.team || g.arm != w.arm ||
			!scoreE2ESame(g.value, g.valueOK, w.value, w.valueOK) ||
			g.answered != w.answered || g.total != w.total || g.prorated != w.prorated ||
			!scoreE2ESame(g.base, g.baseOK, w.base, w.baseOK) ||
			!scoreE2ESame(g.chg, g.chgOK, w.chg, w.chgOK) {
			t.Errorf("scores row %d %v:\n got %+v\nwant %+v", i, k, g, w)
			continue
		}
		compared++
		if !w.valueOK {
			nulls++
		}
		if w.answered == 0 {
			blank++ // every item blank at an interview: a row, value null
		}
		if w.prorated {
			prorated++
		}
		if w.chgOK {
			chg++
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("no scores row for %v", k)
		}
	}
	// Rows within each trust's file in key order (files are per trust).
	for i := 1; i < len(keys); i++ {
		a, b := keys[i-1], keys[i]
		if rows[i-1].trust == rows[i].trust && slices.Compare([]string{a.sid, a.wave, a.inst, a.scale}, []string{b.sid, b.wave, b.inst, b.scale}) >= 0 {
			t.Fatalf("scores rows %d and %d out of key order", i-1, i)
		}
	}
	// The comparison must have exercised the rules, not only complete
	// answers (the bundled study has blanks of every kind).
	if compared < minRows || nulls == 0 || blank == 0 || prorated == 0 || chg == 0 {
		t.Errorf("compared %d rows: %d null, %d all blank, %d prorated, %d with chg; want %d rows and all kinds", compared, nulls, blank, prorated, chg, minRows)
	}
	t.Logf("compared %d scores rows with the independent recompute (%d null, %d all blank, %d prorated, %d with chg)", compared, nulls, blank, prorated, chg)
	return wh, gen
}

// testRowGroupSizes is the number of rows of each row group of a Parquet
// file.
func testRowGroupSizes(t *testing.T, path string) []int64 {
	t.Helper()
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	var out []int64
	for i := range pf.NumRowGroups() {
		out = append(out, pf.MetaData().RowGroup(i).NumRows())
	}
	return out
}
