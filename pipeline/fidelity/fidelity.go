package fidelity

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
	"github.com/connectingpeople/cpi/stats"
)

// Fidelity scores the fidelity ratings (DESIGN §5.2, §8).
//
// It reads fidelity_ratings and rewrites fidelity (one row per study team ×
// rating period) and fidelity_components (one row per study team × period ×
// component), both unpartitioned and sorted by their keys.
//
// A rater's total is the sum of the study's components; a rater who left at
// most Fidelity.MissingAllowed components blank is prorated by their own mean
// (sum / answered × components), and a rater with more blanks is not scored.
// A team's period total is the mean of its scored raters' totals; pct is the
// total over the highest possible total × 100 and band is the study's band
// for pct. lowest_components lists the Fidelity.Lowest components with the
// lowest mean rating (every non-blank rating counts), ties broken by
// component code. icc2_1 is the Shrout & Fleiss ICC(2,1) of the components ×
// scored raters matrix over the components every scored rater rated, when
// there are two or more scored raters.
//
// Every team × period of the study gets a row: a team without ratings, or
// whose raters could not be scored, has n_raters 0 and null total, pct and
// band; an ICC that cannot be computed (fewer than two complete components,
// ratings without variance) is null. The stage fails on ratings the study
// definition does not know (team, period or component), a rating outside the
// scale, or the same team × period × rater × component twice: those mean the
// warehouse and the study definition disagree, and scoring around them would
// silently drop ratings.
func Fidelity(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
	s := env.Study
	f := &s.Fidelity
	if len(f.Components) == 0 {
		return fmt.Errorf("fidelity: the study defines no fidelity components")
	}
	task := env.Progress.Start("fidelity", "team-periods", int64(len(s.Teams)*len(s.Periods)))
	defer task.Done()
	ratings, err := fidelityReadRatings(ctx, s, tx.Dir)
	if err != nil {
		return fmt.Errorf("fidelity: %w", err)
	}

	teams := slices.Clone(s.Teams)
	sort.Slice(teams, func(i, j int) bool { return teams[i].Code < teams[j].Code })
	periods := slices.Clone(s.Periods)
	sort.Strings(periods)
	compOrder := make([]int, len(f.Components)) // component positions in code order
	for i := range compOrder {
		compOrder[i] = i
	}
	sort.Slice(compOrder, func(a, b int) bool { return f.Components[compOrder[a]].Code < f.Components[compOrder[b]].Code })

	for _, table := range []string{"fidelity", "fidelity_components"} {
		if err := tx.ReplaceTable(table); err != nil {
			return fmt.Errorf("fidelity: %w", err)
		}
	}
	sumW, err := newFidelityWriter(env, tx, "fidelity")
	if err != nil {
		return err
	}
	compW, err := newFidelityWriter(env, tx, "fidelity_components")
	if err != nil {
		sumW.Abort()
		return err
	}
	fail := func(err error) error {
		sumW.Abort()
		compW.Abort()
		return fmt.Errorf("fidelity: %w", err)
	}

	sumT, compT := s.Tables.Table("fidelity"), s.Tables.Table("fidelity_components")
	maxTotal := float64(len(f.Components) * f.Max)
	for _, team := range teams {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		for _, period := range periods {
			task.Add(1)
			sc := scoreFidelityPeriod(env, ratings[FidelityKey{team.Code, period}])
			w := sumW
			w.Str(warehouse.ColIndex(sumT, "team"), team.Code)
			w.Str(warehouse.ColIndex(sumT, "period"), period)
			w.Str(warehouse.ColIndex(sumT, "trust"), team.Trust)
			w.Str(warehouse.ColIndex(sumT, "arm"), team.Arm)
			w.Int32(warehouse.ColIndex(sumT, "n_raters"), int32(sc.nRaters), true)
			w.Float64(warehouse.ColIndex(sumT, "total"), sc.total, sc.nRaters > 0)
			w.Float64(warehouse.ColIndex(sumT, "max"), maxTotal, true)
			w.Float64(warehouse.ColIndex(sumT, "pct"), sc.pct, sc.nRaters > 0)
			w.NullStr(warehouse.ColIndex(sumT, "band"), sc.band)
			w.NullStr(warehouse.ColIndex(sumT, "lowest_components"), sc.lowest)
			w.Float64(warehouse.ColIndex(sumT, "icc2_1"), sc.icc, sc.iccOK)
			if err := w.RowDone(); err != nil {
				return fail(err)
			}
			for _, k := range compOrder {
				c := sc.comps[k]
				w := compW
				w.Str(warehouse.ColIndex(compT, "team"), team.Code)
				w.Str(warehouse.ColIndex(compT, "period"), period)
				w.Str(warehouse.ColIndex(compT, "component"), f.Components[k].Code)
				w.Str(warehouse.ColIndex(compT, "trust"), team.Trust)
				w.Str(warehouse.ColIndex(compT, "arm"), team.Arm)
				w.Float64(warehouse.ColIndex(compT, "mean"), c.mean, c.raters > 0)
				w.Int32(warehouse.ColIndex(compT, "min"), c.min, c.raters > 0)
				w.Int32(warehouse.ColIndex(compT, "max"), c.max, c.raters > 0)
				w.Int32(warehouse.ColIndex(compT, "raters"), int32(c.raters), true)
				if err := w.RowDone(); err != nil {
					return fail(err)
				}
			}
		}
	}
	if err := sumW.Close(); err != nil {
		compW.Abort()
		return fmt.Errorf("fidelity: write fidelity: %w", err)
	}
	if err := compW.Close(); err != nil {
		return fmt.Errorf("fidelity: write fidelity_components: %w", err)
	}
	env.Logger().Info("fidelity scored", "teams", len(teams), "periods", len(periods))
	return nil
}

func newFidelityWriter(env warehouse.Env, tx *warehouse.Tx, table string) (*warehouse.RowWriter, error) {
	schema := warehouse.ArrowSchema(env, table, nil)
	tf, err := tx.CreateTableFile(schema, table, "", "", "data")
	if err != nil {
		return nil, fmt.Errorf("fidelity: %w", err)
	}
	return warehouse.NewRowWriter(schema, tf), nil
}

// FidelityKey is a team × rating period.
type FidelityKey struct{ Team, Period string }

// FidelityRater is one rater's ratings of one team in one period, by
// component position in the study definition.
type FidelityRater struct {
	Id     string
	Values []int32
	Valid  []bool
}

// fidelityReadRatings reads fidelity_ratings into team × period → raters
// (sorted by rater id), checking each rating against the study.
func fidelityReadRatings(ctx context.Context, s *schemas.Study, genDir string) (map[FidelityKey][]*FidelityRater, error) {
	f := &s.Fidelity
	compPos := make(map[string]int, len(f.Components))
	for i, c := range f.Components {
		compPos[c.Code] = i
	}
	byRater := map[FidelityKey]map[string]*FidelityRater{}
	err := warehouse.ScanTable(ctx, genDir, "fidelity_ratings", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "team", "period", "rater_id", "component", "value")
		if err != nil {
			return err
		}
		team, okT := cols[0].(*array.String)
		period, okP := cols[1].(*array.String)
		rater, okR := cols[2].(*array.String)
		comp, okC := cols[3].(*array.String)
		value, okV := cols[4].(*array.Int32)
		if !okT || !okP || !okR || !okC || !okV {
			return fmt.Errorf("fidelity_ratings has unexpected column types")
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			tc, pc, cc := team.Value(i), period.Value(i), comp.Value(i)
			if _, ok := s.Team(tc); !ok {
				return fmt.Errorf("fidelity_ratings names team %q, which the study does not define", tc)
			}
			if !slices.Contains(s.Periods, pc) {
				return fmt.Errorf("fidelity_ratings of team %s name period %q, which the study does not define", tc, pc)
			}
			k, ok := compPos[cc]
			if !ok {
				return fmt.Errorf("fidelity_ratings of team %s name component %q, which the study does not define", tc, cc)
			}
			key := FidelityKey{tc, pc}
			raters := byRater[key]
			if raters == nil {
				raters = map[string]*FidelityRater{}
				byRater[key] = raters
			}
			id := rater.Value(i)
			r := raters[id]
			if r == nil {
				r = &FidelityRater{Id: id, Values: make([]int32, len(f.Components)), Valid: make([]bool, len(f.Components))}
				raters[id] = r
			}
			if r.Valid[k] {
				return fmt.Errorf("fidelity_ratings of team %s, %s hold component %s twice for one rater", tc, pc, cc)
			}
			if value.IsNull(i) {
				continue
			}
			v := value.Value(i)
			if v < int32(f.Min) || v > int32(f.Max) {
				return fmt.Errorf("fidelity_ratings of team %s, %s, component %s: a rating outside %d..%d", tc, pc, cc, f.Min, f.Max)
			}
			r.Values[k], r.Valid[k] = v, true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[FidelityKey][]*FidelityRater, len(byRater))
	for key, raters := range byRater {
		list := make([]*FidelityRater, 0, len(raters))
		for _, r := range raters {
			list = append(list, r)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Id < list[j].Id })
		out[key] = list
	}
	return out, nil
}

// fidelityComponentScore is one component's ratings in one team × period.
type fidelityComponentScore struct {
	mean     float64
	min, max int32
	raters   int
}

// fidelityPeriodScore is one team × period's scores.
type fidelityPeriodScore struct {
	nRaters    int
	total, pct float64
	band       string
	lowest     string
	icc        float64
	iccOK      bool
	comps      []fidelityComponentScore // by component position
}

// fidelityRaterTotal is a rater's total, prorated by their mean when at most
// missingAllowed components are blank; ok is false when the rater cannot be
// scored.
func fidelityRaterTotal(r *FidelityRater, missingAllowed int) (total float64, ok bool) {
	sum, answered := 0, 0
	for k, v := range r.Values {
		if r.Valid[k] {
			sum += int(v)
			answered++
		}
	}
	n := len(r.Values)
	if answered == 0 || n-answered > missingAllowed {
		return 0, false
	}
	// sum × n / answered rather than (sum / answered) × n: exact whenever the
	// prorated total is a whole number (33 × 12 / 11 = 36).
	return float64(sum) * float64(n) / float64(answered), true
}

// scoreFidelityPeriod scores one team × period from its raters (sorted by id).
func scoreFidelityPeriod(env warehouse.Env, raters []*FidelityRater) fidelityPeriodScore {
	s := env.Study
	f := &s.Fidelity
	nc := len(f.Components)
	sc := fidelityPeriodScore{comps: make([]fidelityComponentScore, nc)}

	var scored []*FidelityRater
	sum := 0.0
	for _, r := range raters {
		if t, ok := fidelityRaterTotal(r, f.MissingAllowed); ok {
			scored = append(scored, r)
			sum += t
		}
	}
	sc.nRaters = len(scored)
	if sc.nRaters > 0 {
		sc.total = sum / float64(sc.nRaters)
		sc.pct = sc.total / float64(nc*f.Max) * 100
		sc.band = s.Band(sc.pct)
	}

	// Component means over every non-blank rating.
	for k := range sc.comps {
		c := &sc.comps[k]
		total := 0
		for _, r := range raters {
			if !r.Valid[k] {
				continue
			}
			v := r.Values[k]
			if c.raters == 0 || v < c.min {
				c.min = v
			}
			if c.raters == 0 || v > c.max {
				c.max = v
			}
			total += int(v)
			c.raters++
		}
		if c.raters > 0 {
			c.mean = float64(total) / float64(c.raters)
		}
	}
	sc.lowest = fidelityLowest(f.Components, sc.comps, f.Lowest)
	sc.icc, sc.iccOK = FidelityICC(scored)
	return sc
}

// fidelityLowest lists the n rated components with the lowest mean, ties
// broken by component code, space-separated.
func fidelityLowest(comps []schemas.Component, scores []fidelityComponentScore, n int) string {
	var rated []int
	for k, c := range scores {
		if c.raters > 0 {
			rated = append(rated, k)
		}
	}
	slices.SortFunc(rated, func(a, b int) int {
		if c := cmp.Compare(scores[a].mean, scores[b].mean); c != 0 {
			return c
		}
		return cmp.Compare(comps[a].Code, comps[b].Code)
	})
	out := ""
	for i, k := range rated {
		if i == n {
			break
		}
		if i > 0 {
			out += " "
		}
		out += comps[k].Code
	}
	return out
}

// FidelityICC is ICC(2,1) over the components every scored rater rated
// (targets) × the scored raters; ok is false with fewer than two raters or
// two complete components, or when the ICC is undefined (no variance).
func FidelityICC(raters []*FidelityRater) (float64, bool) {
	if len(raters) < 2 {
		return 0, false
	}
	var rows []int
	for k := range raters[0].Values {
		complete := true
		for _, r := range raters {
			complete = complete && r.Valid[k]
		}
		if complete {
			rows = append(rows, k)
		}
	}
	if len(rows) < 2 {
		return 0, false
	}
	m := mat.NewDense(len(rows), len(raters), nil)
	for i, k := range rows {
		for j, r := range raters {
			m.Set(i, j, float64(r.Values[k]))
		}
	}
	res, err := stats.ICC(m, 0.95)
	if err != nil || math.IsNaN(res.ICC2) || math.IsInf(res.ICC2, 0) {
		return 0, false
	}
	return res.ICC2, true
}
