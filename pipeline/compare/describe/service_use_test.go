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

// serviceUseDense is serviceUse as it was before it read score's
// service_sums (and before it read responses by dictionary codes): every
// column of every responses row read densely, one-pass Welford sums in
// maps keyed by strings. TestServiceUseMatchesDense holds the sums' route
// to it.
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
// n participants each (every seventh withdrawn, every eleventh in a third
// arm), their answers to every item of csri (the cost instrument) and of
// ucla3 (not costed) at every wave, a tenth of them blank, in key order
// within a trust, so that responses spans several of a scan's batches;
// and service_sums, the sums of the csri answers as score makes them. It
// returns the generation folder.
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
	type sumKey struct {
		trust, wave, team, arm, service string
		withdrawn                       bool
	}
	sums := map[sumKey]*[4]int64{} // n, n_using, Σu, Σu²
	var costed []string
	for _, it := range costItems(s) {
		costed = append(costed, it.item)
	}
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
			if p%11 == 5 {
				arm = "other"
			}
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
						v, ok := int32(rng.IntN(4)*rng.IntN(3)), rng.IntN(10) != 0
						rw.Int32(rc("value"), v, ok)
						if ok && slices.Contains(costed, item.Name) {
							k := sumKey{trust, wave, team, arm, item.Name, (p+ti)%7 == 0}
							if sums[k] == nil {
								sums[k] = &[4]int64{}
							}
							a := sums[k]
							a[0]++
							a[1] += int64(min(v, 1))
							a[2] += int64(v)
							a[3] += int64(v) * int64(v)
						}
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
	var rows []serviceSumsTestRow
	for k, a := range sums {
		rows = append(rows, serviceSumsTestRow{k.trust, k.wave, k.team, k.arm, k.service, k.withdrawn, a[0], a[1], a[2], a[3], true})
	}
	serviceSumsTestWrite(t, s, tx, rows)
	return tx.Dir
}

// serviceSumsTestRow is a service_sums row; ok false: the sums are null.
type serviceSumsTestRow struct {
	trust, wave, team, arm, service string
	withdrawn                       bool
	n, using, sum, sq               int64
	ok                              bool
}

// serviceSumsTestWrite writes rows as service_sums, one file per trust.
func serviceSumsTestWrite(t *testing.T, s *schemas.Study, tx *warehouse.Tx, rows []serviceSumsTestRow) {
	t.Helper()
	env := warehouse.Env{Study: s, Version: "test"}
	tb, schema := s.Tables.Table("service_sums"), warehouse.ArrowSchema(env, "service_sums", nil)
	c := func(name string) int { return warehouse.ColIndex(tb, name) }
	byTrust := map[string][]serviceSumsTestRow{}
	for _, r := range rows {
		byTrust[r.trust] = append(byTrust[r.trust], r)
	}
	for trust, rows := range byTrust {
		f, err := tx.CreateTableFile(schema, "service_sums", "trust", trust, "data")
		if err != nil {
			t.Fatal(err)
		}
		rw := warehouse.NewRowWriter(schema, f)
		for _, r := range rows {
			rw.Str(c("trust"), r.trust)
			rw.Str(c("wave"), r.wave)
			rw.Str(c("team"), r.team)
			rw.Str(c("arm"), r.arm)
			rw.Bool(c("withdrawn"), r.withdrawn)
			rw.Str(c("service"), r.service)
			rw.Int64(c("n"), r.n)
			rw.Int64(c("n_using"), r.using)
			for col, v := range map[string]int64{"sum_units": r.sum, "sum_units_sq": r.sq} {
				if r.ok {
					rw.Int64(c(col), v)
				} else {
					rw.Null(c(col))
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
}

// serviceUseTestColumns reads what the summaries need of participants (as
// compare's reader does: arms as codes, rows in study_id order).
func serviceUseTestColumns(t *testing.T, s *schemas.Study, dir string) *Columns {
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
	return c
}

// TestServiceUseMatchesDense: service_use made from service_sums equals,
// within 1e-12 relative, the dense route's (every column of every
// responses row as strings, Welford sums in row order), on two trusts of
// participants, some withdrawn and some in a third arm, with a non-cost
// instrument and blank answers among the responses; its counts equal
// exactly, and add up to the rows written.
func TestServiceUseMatchesDense(t *testing.T) {
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	const n = 900
	dir := serviceUseTestWrite(t, s, n)
	got, err := ServiceUse(context.Background(), s, dir)
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
	worst := 0.0
	near := func(a, b float64) bool {
		if math.IsNaN(a) || math.IsNaN(b) {
			return math.IsNaN(a) && math.IsNaN(b)
		}
		d := math.Abs(a-b) / max(math.Abs(b), 1e-300)
		worst = max(worst, d)
		return a == b || d <= 1e-12
	}
	total := 0
	for i, g := range got {
		w := want[i]
		if g.wave != w.wave || g.arm != w.arm || g.service != w.service || g.n != w.n || g.nUsing != w.nUsing ||
			!near(g.meanUnits, w.meanUnits) || !near(g.sdUnits, w.sdUnits) || g.unitCost != w.unitCost ||
			!near(g.meanCost, w.meanCost) || !near(g.sdCost, w.sdCost) {
			t.Errorf("row %d: %+v, dense route %+v", i, g, w)
		}
		total += g.n
	}
	t.Logf("largest relative difference from the dense route: %.3g", worst)
	// 2 trusts × n participants, (n/7 withdrawn, rounded; n/11 in another
	// arm) per trust, ~90% answered: the counts must be near
	// 2·(6/7)·(10/11)·n·waves·services·0.9.
	items := costItems(s)
	expect := 2 * float64(n) * 6 / 7 * 10 / 11 * float64(len(s.Waves)*len(items)) * 0.9
	if math.Abs(float64(total)-expect) > 0.05*expect {
		t.Errorf("n sums to %d, want about %.0f", total, expect)
	}
}

// TestServiceUseHugeSums: sums beyond int64 once two trusts are added are
// exact: units {M, M, 0} in each of two trusts (M = 2³¹ − 1, Σu² = 2M²
// each, 4M² together > 2⁶³) give mean 2M/3 and SD 2M/√15 (variance
// (6·4M² − (4M)²)/(6·5) = 4M²/15), the cost's c times those; a trust whose
// sums are null (beyond int64 in score) makes the mean and SD null, n
// still counted; withdrawn rows and a third arm are left out.
func TestServiceUseHugeSums(t *testing.T) {
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	w, err := warehouse.OpenWarehouse(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	items := costItems(s)
	svc, other := items[0], items[1]
	const m = math.MaxInt32
	wave, arm := s.Waves[0], s.Arms[0]
	rows := []serviceSumsTestRow{
		{"T1", wave, "T1a", arm, svc.item, false, 3, 2, 2 * m, 2 * m * m, true},
		{"T2", wave, "T2a", arm, svc.item, false, 3, 2, 2 * m, 2 * m * m, true},
		{"T2", wave, "T2a", arm, svc.item, true, 5, 5, 5 * m, 1 << 62, true},
		{"T2", wave, "T2c", "other", svc.item, false, 5, 5, 5, 5, true},
		{"T1", wave, "T1a", arm, other.item, false, 4, 1, 7, 49, true},
		{"T2", wave, "T2a", arm, other.item, false, 2, 2, 0, 0, false},
	}
	serviceSumsTestWrite(t, s, tx, rows)
	got, err := ServiceUse(context.Background(), s, tx.Dir)
	if err != nil {
		t.Fatal(err)
	}
	const mf = float64(m)
	for _, r := range got {
		if r.wave != wave || r.arm != arm {
			if r.n != 0 || !math.IsNaN(r.meanUnits) {
				t.Errorf("%s %s %s: n %d, mean %v; want no participants", r.wave, r.arm, r.service, r.n, r.meanUnits)
			}
			continue
		}
		switch r.service {
		case svc.item:
			c := svc.cost
			rel := func(a, b float64) float64 { return math.Abs(a-b) / b }
			if r.n != 6 || r.nUsing != 4 || rel(r.meanUnits, 2*mf/3) > 1e-15 || rel(r.sdUnits, 2*mf/math.Sqrt(15)) > 1e-15 ||
				rel(r.meanCost, c*2*mf/3) > 1e-15 || rel(r.sdCost, c*2*mf/math.Sqrt(15)) > 1e-15 {
				t.Errorf("%s: %+v; want n 6, n_using 4, mean %v, sd %v (× %v for cost)", r.service, r, 2*mf/3, 2*mf/math.Sqrt(15), c)
			}
		case other.item:
			if r.n != 6 || r.nUsing != 3 || !math.IsNaN(r.meanUnits) || !math.IsNaN(r.sdUnits) || !math.IsNaN(r.meanCost) || !math.IsNaN(r.sdCost) {
				t.Errorf("%s with a null sum: %+v; want n 6, n_using 3, mean and SD null", r.service, r)
			}
		}
	}
}
