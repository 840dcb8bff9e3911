package describe

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// serviceUseDense is serviceUse as it was before it read responses by
// dictionary codes: every column of every row read densely, sums in maps
// keyed by strings. TestServiceUseMatchesDense holds the fast route to it.
func serviceUseDense(ctx context.Context, s *schemas.Study, dir string) ([]ServiceUseRow, error) {
	items := costItems(s)
	if len(items) == 0 {
		return nil, nil
	}
	withdrawn := map[string]bool{}
	err := warehouse.ScanTable(ctx, dir, "participants", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "study_id", "withdrawn")
		if err != nil {
			return err
		}
		id, wd := cols[0].(*array.String), cols[1].(*array.Boolean)
		for i := 0; i < int(rec.NumRows()); i++ {
			if wd.IsValid(i) && wd.Value(i) {
				withdrawn[id.Value(i)] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	arms := s.Arms[:min(2, len(s.Arms))]
	type key struct{ wave, arm, item string }
	type acc struct {
		units, cost welford
		using       int
	}
	sums := map[key]*acc{}
	itemCost := map[[2]string]float64{}
	for _, it := range items {
		itemCost[[2]string{it.instrument, it.item}] = it.cost
	}
	err = warehouse.ScanTable(ctx, dir, "responses", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "study_id", "wave", "instrument", "item", "arm", "value")
		if err != nil {
			return err
		}
		id, wave, inst, item, arm := cols[0].(*array.String), cols[1].(*array.String), cols[2].(*array.String), cols[3].(*array.String), cols[4].(*array.String)
		val := cols[5].(*array.Int32)
		for i := 0; i < int(rec.NumRows()); i++ {
			if val.IsNull(i) {
				continue
			}
			c, ok := itemCost[[2]string{inst.Value(i), item.Value(i)}]
			if !ok || withdrawn[id.Value(i)] || !slices.Contains(arms, arm.Value(i)) {
				continue
			}
			k := key{wave.Value(i), arm.Value(i), item.Value(i)}
			a := sums[k]
			if a == nil {
				a = &acc{}
				sums[k] = a
			}
			u := float64(val.Value(i))
			a.units.add(u)
			a.cost.add(u * c)
			if u > 0 {
				a.using++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []ServiceUseRow
	for _, w := range s.Waves {
		for _, a := range arms {
			for _, it := range items {
				r := ServiceUseRow{wave: w, arm: a, service: it.item, unitCost: it.cost}
				if x := sums[key{w, a, it.item}]; x != nil {
					r.n, r.nUsing = x.units.n, x.using
					r.meanUnits, r.sdUnits = x.units.meanOrNaN(), x.units.sdOrNaN()
					r.meanCost, r.sdCost = x.cost.meanOrNaN(), x.cost.sdOrNaN()
				} else {
					r.meanUnits, r.sdUnits, r.meanCost, r.sdCost = math.NaN(), math.NaN(), math.NaN(), math.NaN()
				}
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// serviceUseTestWrite writes participants, interviews (every third
// participant not interviewed at the follow-up) and responses of two trusts:
// n participants each (every seventh withdrawn), their answers to every
// item of csri (the cost instrument) and of ucla3 (not costed) at every
// wave, a tenth of them blank, in key order within a trust, so that responses spans
// several of a scan's batches. It returns the generation folder.
func serviceUseTestWrite(t *testing.T, s *schemas.Study, n int) string {
	t.Helper()
	env := warehouse.Env{Study: s, Version: "test"}
	w, err := warehouse.OpenWarehouse(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 14))
	var instruments []*schemas.Instrument
	for _, name := range []string{"csri", "ucla3"} {
		in, ok := s.Instrument(name)
		if !ok {
			t.Fatalf("the default study has no instrument %s", name)
		}
		instruments = append(instruments, in)
	}
	for ti, trust := range []string{"T1", "T2"} {
		pt, rt := s.Tables.Table("participants"), s.Tables.Table("responses")
		pschema, rschema := warehouse.ArrowSchema(env, "participants", nil), warehouse.ArrowSchema(env, "responses", nil)
		pf, err := tx.CreateTableFile(pschema, "participants", "trust", trust, "data")
		if err != nil {
			t.Fatal(err)
		}
		rf, err := tx.CreateTableFile(rschema, "responses", "trust", trust, "data")
		if err != nil {
			t.Fatal(err)
		}
		ischema := warehouse.ArrowSchema(env, "interviews", nil)
		ivf, err := tx.CreateTableFile(ischema, "interviews", "trust", trust, "data")
		if err != nil {
			t.Fatal(err)
		}
		iw, it := warehouse.NewRowWriter(ischema, ivf), s.Tables.Table("interviews")
		pw, rw := warehouse.NewRowWriter(pschema, pf), warehouse.NewRowWriter(rschema, rf)
		pc := func(c string) int { return warehouse.ColIndex(pt, c) }
		rc := func(c string) int { return warehouse.ColIndex(rt, c) }
		for p := range n {
			// The second trust's ids sort before the first's: the
			// participants are not in study_id order across files.
			id := fmt.Sprintf("%s-%06d", []string{"T9", "T1"}[ti], p)
			arm := s.Arms[p%2]
			team := fmt.Sprintf("%s%d", trust, p%2)
			pw.Str(pc("study_id"), id)
			pw.Str(pc("trust"), trust)
			pw.Str(pc("team"), team)
			pw.Str(pc("arm"), arm)
			for _, c := range []string{"age_band", "gender", "ethnicity", "living_alone", "diagnosis_group", "baseline_date", "followup_date"} {
				pw.Null(pc(c))
			}
			pw.Bool(pc("withdrawn"), (p+ti)%7 == 0)
			pw.Bool(pc("interviewed_baseline"), true)
			pw.Bool(pc("interviewed_followup"), true)
			if err := pw.RowDone(); err != nil {
				t.Fatal(err)
			}
			for w, wave := range s.Waves {
				ic := func(c string) int { return warehouse.ColIndex(it, c) }
				iw.Str(ic("study_id"), id)
				iw.Str(ic("wave"), wave)
				iw.Null(ic("interview_date"))
				iw.Bool(ic("interviewed"), w == 0 || p%3 != 0)
				iw.Bool(ic("withdrawn"), (p+ti)%7 == 0)
				iw.Str(ic("trust"), trust)
				iw.Str(ic("team"), team)
				iw.Str(ic("arm"), arm)
				if err := iw.RowDone(); err != nil {
					t.Fatal(err)
				}
				for _, in := range instruments {
					for _, item := range in.Items {
						rw.Str(rc("study_id"), id)
						rw.Str(rc("wave"), wave)
						rw.Str(rc("instrument"), in.Name)
						rw.Str(rc("item"), item.Name)
						rw.Str(rc("trust"), trust)
						rw.Str(rc("team"), team)
						rw.Str(rc("arm"), arm)
						rw.Int32(rc("value"), int32(rng.IntN(4)*rng.IntN(3)), rng.IntN(10) != 0)
						rw.Str(rc("source_sha256"), "0")
						rw.Int32(rc("source_line"), int32(p+2), true)
						if err := rw.RowDone(); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
		if err := pw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := iw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return tx.Dir
}

// serviceUseTestColumns reads what ServiceUse needs of participants (as
// compare's reader does: arms as codes, rows in study_id order).
func serviceUseTestColumns(t *testing.T, s *schemas.Study, dir string) (*Columns, *StudyIDs) {
	t.Helper()
	type person struct {
		id, arm   string
		withdrawn bool
	}
	var people []person
	err := warehouse.ScanTable(context.Background(), dir, "participants", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "study_id", "arm", "withdrawn")
		if err != nil {
			return err
		}
		id, arm, wd := cols[0].(*array.String), cols[1].(*array.String), cols[2].(*array.Boolean)
		for i := range int(rec.NumRows()) {
			people = append(people, person{id.Value(i), arm.Value(i), wd.Value(i)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := &StudyIDs{}
	for _, p := range people {
		ids.Append(p.id)
	}
	perm := ids.Sort()
	c := &Columns{N: len(people), Arms: []string{"other", s.Arms[1], s.Arms[0]}}
	for k := range people {
		p := people[k]
		if perm != nil {
			p = people[perm[k]]
		}
		if ids.At(k) != p.id {
			t.Fatalf("row %d: study_id %q, want %q", k, ids.At(k), p.id)
		}
		c.Arm = append(c.Arm, int32(slices.Index(c.Arms, p.arm)))
		c.Withdrawn = append(c.Withdrawn, p.withdrawn)
	}
	return c, ids
}

// TestServiceUseMatchesDense: service_use read by dictionary codes equals,
// bit for bit, the dense route's (every column of every row as strings),
// on two trusts of participants, some withdrawn, with a non-cost
// instrument and blank answers among the responses; and its counts add up
// to the rows written.
func TestServiceUseMatchesDense(t *testing.T) {
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	const n = 900
	dir := serviceUseTestWrite(t, s, n)
	c, ids := serviceUseTestColumns(t, s, dir)
	got, err := ServiceUse(context.Background(), s, dir, c, ids)
	if err != nil {
		t.Fatal(err)
	}
	want, err := serviceUseDense(context.Background(), s, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || len(got) != len(want) {
		t.Fatalf("%d rows, dense route %d", len(got), len(want))
	}
	same := func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }
	total := 0
	for i, g := range got {
		w := want[i]
		if g.wave != w.wave || g.arm != w.arm || g.service != w.service || g.n != w.n || g.nUsing != w.nUsing ||
			!same(g.meanUnits, w.meanUnits) || !same(g.sdUnits, w.sdUnits) || !same(g.unitCost, w.unitCost) ||
			!same(g.meanCost, w.meanCost) || !same(g.sdCost, w.sdCost) {
			t.Errorf("row %d: %+v, dense route %+v", i, g, w)
		}
		total += g.n
	}
	// 2 trusts × n participants, (n/7 withdrawn, rounded) per trust, ~90%
	// answered: the counts must be near 2·6/7·n·waves·services·0.9.
	items := costItems(s)
	expect := 2 * float64(n) * 6 / 7 * float64(len(s.Waves)*len(items)) * 0.9
	if math.Abs(float64(total)-expect) > 0.05*expect {
		t.Errorf("n sums to %d, want about %.0f", total, expect)
	}
}
