package compare

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/compare/describe"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// TestReadScoresMatchesScan: the outcomes' values placed by readScores
// (codes.Read) equal, bit for bit, those of the ColumnScan route
// it replaced, on two trusts of participants whose scores span several row
// groups: every outcome of the default plan at every wave (eq5d5l.qaly
// taking eq5d5l.index's baseline), a tenth of the values null, scales of
// no outcome, and scores of participants missing from participants.
func TestReadScoresMatchesScan(t *testing.T) {
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	env := warehouse.Env{Study: s, Version: "test"}
	w, err := warehouse.OpenWarehouse(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var scales [][2]string
	for _, o := range append(slices.Clone(s.Analysis.Outcomes), "eq5d5l.index", "rguk.unused") {
		in, sc, _ := strings.Cut(o, ".")
		if !slices.Contains(scales, [2]string{in, sc}) {
			scales = append(scales, [2]string{in, sc})
		}
	}
	const n = 2000
	for _, trust := range []string{"T1", "T2"} {
		pt, st := s.Tables.Table("participants"), s.Tables.Table("scores")
		pschema, sschema := warehouse.ArrowSchema(env, "participants", nil), warehouse.ArrowSchema(env, "scores", nil)
		pf, err := tx.CreateTableFile(pschema, "participants", "trust", trust, "data")
		if err != nil {
			t.Fatal(err)
		}
		sf, err := tx.CreateTableFile(sschema, "scores", "trust", trust, "data")
		if err != nil {
			t.Fatal(err)
		}
		pw, sw := warehouse.NewRowWriter(pschema, pf), warehouse.NewRowWriter(sschema, sf)
		pc := func(c string) int { return warehouse.ColIndex(pt, c) }
		sc := func(c string) int { return warehouse.ColIndex(st, c) }
		for p := range n {
			id := fmt.Sprintf("%s-%06d", trust, p)
			team, arm := fmt.Sprintf("%s%d", trust, p%2), s.Arms[p%2]
			if p%50 != 7 { // every fiftieth has scores but no participants row
				pw.Str(pc("study_id"), id)
				pw.Str(pc("trust"), trust)
				pw.Str(pc("team"), team)
				pw.Str(pc("arm"), arm)
				for _, c := range []string{"age_band", "gender", "ethnicity", "living_alone", "diagnosis_group", "baseline_date", "followup_date"} {
					pw.Null(pc(c))
				}
				pw.Bool(pc("withdrawn"), false)
				pw.Bool(pc("interviewed_baseline"), true)
				pw.Bool(pc("interviewed_followup"), true)
				if err := pw.RowDone(); err != nil {
					t.Fatal(err)
				}
			}
			for _, wave := range s.Waves {
				for _, is := range scales {
					sw.Str(sc("study_id"), id)
					sw.Str(sc("wave"), wave)
					sw.Str(sc("instrument"), is[0])
					sw.Str(sc("scale"), is[1])
					sw.Str(sc("trust"), trust)
					sw.Str(sc("team"), team)
					sw.Str(sc("arm"), arm)
					sw.Float64(sc("value"), math.Round(rng.NormFloat64()*1000)/100, rng.IntN(10) != 0)
					sw.Int32(sc("items_answered"), 1, true)
					sw.Int32(sc("items_total"), 1, true)
					sw.Bool(sc("prorated"), false)
					sw.Float64(sc("base"), 0, false)
					sw.Float64(sc("chg"), 0, false)
					if err := sw.RowDone(); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if err := pw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := sw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	outcomes := s.Analysis.Outcomes
	d, err := readCompareColumns(ctx, env, tx.Dir, outcomes)
	if err != nil {
		t.Fatal(err)
	}
	ref := *d
	ref.ids = &describe.StudyIDs{}
	for tr := range 2 {
		for p := range n {
			if p%50 != 7 {
				ref.ids.Append(fmt.Sprintf("T%d-%06d", tr+1, p))
			}
		}
	}
	ref.ids.Sort()
	if ref.ids.Len() != d.n {
		t.Fatalf("%d participants read, want %d", d.n, ref.ids.Len())
	}
	for i := range d.n {
		if d.ids.At(i) != ref.ids.At(i) {
			t.Fatalf("participant %d: study_id %q, want %q", i, d.ids.At(i), ref.ids.At(i))
		}
	}
	ref.vals = make([][]OutcomeValues, len(outcomes))
	for o := range outcomes {
		ref.vals[o] = make([]OutcomeValues, len(s.Waves))
		for w := range s.Waves {
			ref.vals[o][w].Init(d.n)
		}
	}
	if err := ref.readScoresScan(ctx, s, tx.Dir, outcomes); err != nil {
		t.Fatal(err)
	}
	placed := 0
	for o := range outcomes {
		for w := range s.Waves {
			for i := range d.n {
				got, want := d.vals[o][w].At(i), ref.vals[o][w].At(i)
				if math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
					t.Fatalf("%s wave %d participant %d: %v, ColumnScan route %v", outcomes[o], w, i, got, want)
				}
				if !math.IsNaN(got) {
					placed++
				}
			}
		}
	}
	// About 90% of participants × outcomes × waves have a value (qaly has
	// none at baseline of its own: it takes eq5d5l.index's).
	if cells := d.n * len(outcomes) * len(s.Waves); placed < cells*8/10 || placed > cells*95/100 {
		t.Errorf("%d values placed of %d cells, want about 90%%", placed, cells)
	}
}

// readScoresScan is readScores as it was before codes.Read: a ColumnScan
// with the string columns as dictionaries resolved once per batch.
func (d *cmpColumns) readScoresScan(ctx context.Context, s *schemas.Study, dir string, outcomes []string) error {
	files, err := warehouse.TableFiles(dir, "scores")
	if err != nil {
		return fmt.Errorf("read table scores: %w", err)
	}
	// Outcome of (instrument, scale): instruments and scales are coded,
	// outcome[inst][scale] is the outcome's index or −1.
	// An outcome whose baseline is another scale (analysis.baselines:
	// eq5d5l.qaly adjusts for eq5d5l.index) takes that scale's baseline
	// value as its own at wave 0: baseOf lists, per code, the outcomes
	// whose baseline it is, and ownBase says whether an outcome's own
	// baseline value is its baseline.
	var insts, scales cmpCodes
	for _, name := range outcomes {
		for _, n := range []string{name, s.OutcomeBaseline(name)} {
			in, sc, _ := OutcomeName(n)
			insts.code(in)
			scales.code(sc)
		}
	}
	nScales := len(scales.levels)
	want := make([]int, len(insts.levels)*nScales)
	baseOf := make([][]int, len(want))
	ownBase := make([]bool, len(outcomes))
	for i := range want {
		want[i] = -1
	}
	for o, name := range outcomes {
		in, sc, _ := OutcomeName(name)
		want[insts.index[in]*nScales+scales.index[sc]] = o
		b := s.OutcomeBaseline(name)
		ownBase[o] = b == name
		in, sc, _ = OutcomeName(b)
		k := insts.index[in]*nScales + scales.index[sc]
		baseOf[k] = append(baseOf[k], o)
	}
	instCode := func(v string) int {
		if i, ok := insts.index[v]; ok {
			return i
		}
		return -1
	}
	scaleCode := func(v string) int {
		if i, ok := scales.index[v]; ok {
			return i
		}
		return -1
	}
	waveCode := s.WaveIndex
	names := []string{"study_id", "wave", "instrument", "scale", "value"}
	scan := warehouse.NewColumnScan(ctx, files, names, names[:4])
	defer scan.Close()
	var wave, inst, scale warehouse.ScoreCodes
	var rowOf []int // per study_id dictionary entry: the participant row (−2: not looked up)
	for {
		ok, err := scan.Next()
		if err != nil {
			return fmt.Errorf("read table scores: %w", err)
		}
		if !ok {
			return nil
		}
		cols := scan.Cols
		vals, ok := cols[4].(*array.Float64)
		if !ok {
			return errors.New("read table scores: column value is not a double")
		}
		if err := wave.Init(cols[1], waveCode); err != nil {
			return fmt.Errorf("read table scores: column wave: %w", err)
		}
		if err := inst.Init(cols[2], instCode); err != nil {
			return fmt.Errorf("read table scores: column instrument: %w", err)
		}
		if err := scale.Init(cols[3], scaleCode); err != nil {
			return fmt.Errorf("read table scores: column scale: %w", err)
		}
		row := func(int) int { return -1 }
		switch c := cols[0].(type) {
		case *array.Dictionary:
			dict, ok1 := c.Dictionary().(*array.String)
			idx, ok2 := c.Indices().(*array.Int32)
			if !ok1 || !ok2 {
				return errors.New("read table scores: column study_id: not a dictionary of strings with int32 indices")
			}
			rowOf = slices.Grow(rowOf[:0], dict.Len())[:dict.Len()]
			for i := range rowOf {
				rowOf[i] = -2
			}
			iv := idx.Int32Values()
			row = func(r int) int {
				if c.IsNull(r) {
					return -1
				}
				e := iv[r]
				if rowOf[e] == -2 {
					rowOf[e] = d.ids.Find(dict.Value(int(e)))
				}
				return rowOf[e]
			}
		case *array.String:
			last, lastRow := "", -1
			row = func(r int) int {
				if v := c.Value(r); v != last || r == 0 {
					last, lastRow = strings.Clone(v), d.ids.Find(v)
				}
				return lastRow
			}
		default:
			return errors.New("read table scores: column study_id is not a string column")
		}
		for r := 0; r < vals.Len(); r++ {
			if vals.IsNull(r) {
				continue
			}
			w := wave.At(r)
			if w < 0 {
				continue
			}
			ic, sc := inst.At(r), scale.At(r)
			if ic < 0 || sc < 0 {
				continue
			}
			code := ic*nScales + sc
			o := want[code]
			if o < 0 && (w != 0 || len(baseOf[code]) == 0) {
				continue
			}
			k := row(r)
			if k < 0 {
				continue // a score without a participant row cannot be placed in a team
			}
			if w != 0 {
				d.vals[o][w].Set(k, vals.Value(r))
				continue
			}
			if o >= 0 && ownBase[o] {
				d.vals[o][0].Set(k, vals.Value(r))
			}
			for _, ob := range baseOf[code] {
				if !ownBase[ob] {
					d.vals[ob][0].Set(k, vals.Value(r))
				}
			}
		}
	}
}

// TestOutcomeValuesCodes sets 200,000 values (a few hundred distinct ones,
// ±0 and NaN among them, values overwritten) and then 70,000 distinct
// ones: At gives back every value last set, bit for bit; the table holds
// each distinct value once while coded, and past 65,534 values the
// column turns to the values themselves.
func TestOutcomeValuesCodes(t *testing.T) {
	const n = 200000
	rng := rand.New(rand.NewPCG(13, 14))
	var v OutcomeValues
	v.Init(n)
	want := make([]float64, n)
	for i := range want {
		want[i] = math.NaN()
	}
	pool := []float64{0, math.Copysign(0, -1), math.NaN(), 1e300, -1e-300}
	for range 400 {
		pool = append(pool, math.Round(rng.NormFloat64()*1e4)/100)
	}
	for range 2 * n {
		i, x := rng.IntN(n), pool[rng.IntN(len(pool))]
		v.Set(i, x)
		want[i] = x
	}
	same := func(a, b float64) bool {
		return math.Float64bits(a) == math.Float64bits(b) || math.IsNaN(a) && math.IsNaN(b)
	}
	for i := range n {
		if !same(v.At(i), want[i]) {
			t.Fatalf("participant %d: %v, want %v", i, v.At(i), want[i])
		}
	}
	seen := map[uint64]bool{}
	for _, x := range v.Table {
		if seen[math.Float64bits(x)] {
			t.Fatalf("%v twice in the table", x)
		}
		seen[math.Float64bits(x)] = true
	}
	if len(v.Table) < 300 || len(v.Table) > len(pool) || v.Raw != nil {
		t.Fatalf("%d values in the table of %d distinct, raw %v", len(v.Table), len(pool), v.Raw != nil)
	}
	for i := range 70000 {
		x := float64(i) + 0.5
		v.Set(i, x)
		want[i] = x
	}
	if v.Raw == nil {
		t.Fatal("more than 65,534 distinct values still coded")
	}
	for i := range n {
		if !same(v.At(i), want[i]) {
			t.Fatalf("after the switch, participant %d: %v, want %v", i, v.At(i), want[i])
		}
	}
}
