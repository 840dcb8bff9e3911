package score

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// svcTestPerson is a participant of svcTestWrite.
type svcTestPerson struct {
	id, trust, team, arm string
	withdrawn            bool
}

// svcTestWrite writes people as participants and their answers as
// responses (value(p, wave, item) < 0: blank; rows in key order, one
// file per trust), answering every item of csri (costed) and ucla3 (not)
// at every wave.
func svcTestWrite(t *testing.T, env warehouse.Env, tx *warehouse.Tx, people []svcTestPerson, value func(p int, wave, item string) int32) {
	t.Helper()
	s := env.Study
	pt, rt := s.Tables.Table("participants"), s.Tables.Table("responses")
	ps, rs := warehouse.ArrowSchema(env, "participants", nil), warehouse.ArrowSchema(env, "responses", nil)
	var trusts []string
	for _, p := range people {
		if !slices.Contains(trusts, p.trust) {
			trusts = append(trusts, p.trust)
		}
	}
	type answer struct {
		inst, item string
		lo, hi     int32
	}
	var answers []answer
	for _, name := range []string{"csri", "ucla3"} {
		in, ok := s.Instrument(name)
		if !ok {
			t.Fatalf("no instrument %s", name)
		}
		for _, it := range in.Items {
			answers = append(answers, answer{name, it.Name, int32(it.Min), int32(it.Max)})
		}
	}
	slices.SortFunc(answers, func(a, b answer) int { return cmp.Or(strings.Compare(a.inst, b.inst), strings.Compare(a.item, b.item)) })
	waves := slices.Sorted(slices.Values(s.Waves))
	for _, trust := range trusts {
		pf, err := tx.CreateTableFile(ps, "participants", "trust", trust, "data")
		if err != nil {
			t.Fatal(err)
		}
		rf, err := tx.CreateTableFile(rs, "responses", "trust", trust, "data")
		if err != nil {
			t.Fatal(err)
		}
		pw, rw := warehouse.NewRowWriter(ps, pf), warehouse.NewRowWriter(rs, rf)
		for k, p := range people {
			if p.trust != trust {
				continue
			}
			for i, c := range pt.Columns {
				switch c.Name {
				case "study_id", "trust", "team", "arm":
					pw.Str(i, map[string]string{"study_id": p.id, "trust": p.trust, "team": p.team, "arm": p.arm}[c.Name])
				case "withdrawn":
					pw.Bool(i, p.withdrawn)
				default:
					if c.Type == "bool" {
						pw.Bool(i, false)
					} else {
						pw.Null(i)
					}
				}
			}
			if err := pw.RowDone(); err != nil {
				t.Fatal(err)
			}
			rc := func(c string) int { return warehouse.ColIndex(rt, c) }
			for _, w := range waves {
				for _, a := range answers {
					v := value(k, w, a.item)
					rw.Str(rc("study_id"), p.id)
					rw.Str(rc("wave"), w)
					rw.Str(rc("instrument"), a.inst)
					rw.Str(rc("item"), a.item)
					rw.Str(rc("trust"), p.trust)
					rw.Str(rc("team"), p.team)
					rw.Str(rc("arm"), p.arm)
					rw.Int32(rc("value"), min(max(v, a.lo), a.hi), v >= 0)
					rw.Str(rc("source_sha256"), "test")
					rw.Int32(rc("source_line"), 2, true)
					if err := rw.RowDone(); err != nil {
						t.Fatal(err)
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
	}
}

// svcTestRow is a service_sums row; nulls are −1.
type svcTestRow struct {
	trust, wave, team, arm, service string
	withdrawn                       bool
	n, using, sum, sq               int64
}

func (r svcTestRow) key() string {
	return fmt.Sprintf("%s|%s|%s|%s|%v|%s", r.trust, r.wave, r.team, r.arm, r.withdrawn, r.service)
}

// svcTestRead reads service_sums back, in file order.
func svcTestRead(t *testing.T, dir string) []svcTestRow {
	t.Helper()
	var out []svcTestRow
	err := warehouse.ScanTable(context.Background(), dir, "service_sums", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "trust", "wave", "team", "arm", "withdrawn", "service", "n", "n_using", "sum_units", "sum_units_sq")
		if err != nil {
			return err
		}
		str := func(k, i int) string { return cols[k].(*array.String).Value(i) }
		num := func(k, i int) int64 {
			if cols[k].IsNull(i) {
				return -1
			}
			return cols[k].(*array.Int64).Value(i)
		}
		for i := range int(rec.NumRows()) {
			out = append(out, svcTestRow{str(0, i), str(1, i), str(2, i), str(3, i), str(5, i),
				cols[4].(*array.Boolean).Value(i), num(6, i), num(7, i), num(8, i), num(9, i)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// svcTestDense sums the costed answers of responses densely: every
// column of every row as strings, the participants' team, arm and
// withdrawal from participants, sums in a map.
func svcTestDense(t *testing.T, s *schemas.Study, dir string) map[string]svcTestRow {
	t.Helper()
	costed := map[string]bool{}
	for _, in := range s.Instruments {
		for k := range in.Scales {
			if in.Scales[k].Method == "cost" {
				for _, it := range in.ScaleItems(&in.Scales[k]) {
					costed[it] = true
				}
			}
		}
	}
	people := map[string]svcTestRow{}
	ctx := context.Background()
	err := warehouse.ScanTable(ctx, dir, "participants", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "study_id", "team", "arm", "withdrawn")
		if err != nil {
			return err
		}
		for i := range int(rec.NumRows()) {
			people[cols[0].(*array.String).Value(i)] = svcTestRow{team: cols[1].(*array.String).Value(i),
				arm: cols[2].(*array.String).Value(i), withdrawn: cols[3].(*array.Boolean).Value(i)}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]svcTestRow{}
	err = warehouse.ScanTable(ctx, dir, "responses", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "study_id", "wave", "item", "trust", "value")
		if err != nil {
			return err
		}
		val := cols[4].(*array.Int32)
		for i := range int(rec.NumRows()) {
			item := cols[2].(*array.String).Value(i)
			if val.IsNull(i) || !costed[item] {
				continue
			}
			r := people[cols[0].(*array.String).Value(i)]
			r.trust, r.wave, r.service = cols[3].(*array.String).Value(i), cols[1].(*array.String).Value(i), item
			a := out[r.key()]
			r.n, r.using, r.sum, r.sq = a.n+1, a.using, a.sum, a.sq
			v := int64(val.Value(i))
			if v > 0 {
				r.using++
			}
			r.sum += v
			r.sq += v * v
			out[r.key()] = r
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestServiceSumsMatchDense: score's service_sums equal exactly a dense
// recomputation from responses and participants (withdrawn participants,
// a third arm, two teams in each of two trusts, blank answers, a
// non-costed instrument); the rows are in key order within each trust's
// file and their n add up to the costed answers written.
func TestServiceSumsMatchDense(t *testing.T) {
	env := scoreTestEnv(t)
	tx := svcTestTx(t)
	var people []svcTestPerson
	for _, trust := range []string{"TEWV", "BDCT"} {
		for p := range 300 {
			team := fmt.Sprintf("%s-0%d", trust, 1+p%2)
			tm, ok := env.Study.Team(team)
			if !ok {
				t.Fatalf("no team %s", team)
			}
			arm := tm.Arm
			if p%11 == 3 {
				arm = "other"
			}
			people = append(people, svcTestPerson{fmt.Sprintf("%s-%04d", trust, p), trust, team, arm, p%7 == 2})
		}
	}
	rng := rand.New(rand.NewPCG(14, 3))
	answered := 0
	csri, _ := env.Study.Instrument("csri")
	value := func(p int, wave, item string) int32 {
		if rng.IntN(10) == 0 {
			return -1
		}
		if strings.HasPrefix(item, "su_") {
			answered++
		}
		return int32(rng.IntN(4) * rng.IntN(30))
	}
	svcTestWrite(t, env, tx, people, value)
	if err := Score(context.Background(), env, tx); err != nil {
		t.Fatal(err)
	}
	got := svcTestRead(t, tx.Dir)
	want := svcTestDense(t, env.Study, tx.Dir)
	if len(got) != len(want) {
		t.Errorf("%d rows, dense route %d", len(got), len(want))
	}
	var total int64
	kinds := map[string]bool{}
	for i, g := range got {
		kinds[fmt.Sprint(g.withdrawn)+" "+g.arm] = true
		if w, ok := want[g.key()]; !ok || g != w {
			t.Errorf("row %s: %+v, dense route %+v", g.key(), g, w)
		}
		total += g.n
		if i > 0 && got[i-1].trust == g.trust {
			p := got[i-1]
			c := cmp.Or(strings.Compare(p.wave, g.wave), strings.Compare(p.team, g.team), strings.Compare(p.arm, g.arm),
				cmp.Compare(fmt.Sprint(p.withdrawn), fmt.Sprint(g.withdrawn)), strings.Compare(p.service, g.service))
			if c >= 0 {
				t.Errorf("row %d (%s) does not follow %s in key order", i, g.key(), p.key())
			}
		}
	}
	if len(kinds) != 6 {
		t.Errorf("rows of %v, want withdrawn and not in each of three arms", kinds)
	}
	if len(csri.Items) == 0 || total != int64(answered) {
		t.Errorf("n adds up to %d, want the %d csri answers written", total, answered)
	}
}

// TestServiceSumsOverflow: units as large as an item's range allows (a
// study whose csri items run to 2³¹ − 1) give exact sums while they fit
// int64 and a null sum beyond: three answers of M = 2³¹ − 1 sum to 3M, but
// their squares (3M² > 2⁶³) to null; two answers' squares (2M²) still fit.
func TestServiceSumsOverflow(t *testing.T) {
	env := scoreTestEnv(t)
	in, _ := env.Study.Instrument("csri")
	for k := range in.Items {
		in.Items[k].Max = math.MaxInt32
	}
	const m = math.MaxInt32
	tx := svcTestTx(t)
	var people []svcTestPerson
	for p := range 3 {
		people = append(people, svcTestPerson{fmt.Sprintf("TEWV-%d", p), "TEWV", "TEWV-01", "intervention", false})
	}
	first, second := in.Items[0].Name, in.Items[1].Name
	svcTestWrite(t, env, tx, people, func(p int, wave, item string) int32 {
		switch {
		case wave != env.Study.Waves[0]:
			return -1
		case item == first || item == second && p < 2:
			return m
		}
		return 0
	})
	if err := Score(context.Background(), env, tx); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range svcTestRead(t, tx.Dir) {
		switch r.service {
		case first:
			seen++
			if r.n != 3 || r.using != 3 || r.sum != 3*m || r.sq != -1 {
				t.Errorf("%s: %+v; want n 3, n_using 3, sum %d, sum of squares null", first, r, int64(3*m))
			}
		case second:
			seen++
			if r.n != 3 || r.using != 2 || r.sum != 2*m || r.sq != 2*m*m {
				t.Errorf("%s: %+v; want n 3, n_using 2, sum %d, sum of squares %d", second, r, int64(2*m), int64(2*m*m))
			}
		}
	}
	if seen != 2 {
		t.Errorf("%d rows for %s and %s, want 2", seen, first, second)
	}
}

// svcTestTx begins a transaction on a new warehouse.
func svcTestTx(t *testing.T) *warehouse.Tx {
	t.Helper()
	w, err := warehouse.OpenWarehouse(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}
