package describe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// ServiceUseRow is a row of the service_use table: one service (an item of
// a cost scale's instrument) at a wave in an arm.
type ServiceUseRow struct {
	wave      string  `col:"wave"`
	arm       string  `col:"arm"`
	service   string  `col:"service"`
	n         int     `col:"n"`
	nUsing    int     `col:"n_using"`
	meanUnits float64 `col:"mean_units"` // NaN: n is 0
	sdUnits   float64 `col:"sd_units"`   // NaN: n under 2
	unitCost  float64 `col:"unit_cost"`
	meanCost  float64 `col:"mean_cost"`
	sdCost    float64 `col:"sd_cost"`
}

// costItems are the items of the study's cost scales with their unit cost
// in the study's price year (the cost scale's own factor): instrument,
// item and £ per unit, in the instrument's item order.
type costItem struct {
	instrument, item string
	cost             float64
}

func costItems(s *schemas.Study) []costItem {
	var out []costItem
	for _, in := range s.Instruments {
		for k := range in.Scales {
			sc := &in.Scales[k]
			if sc.Method != "cost" {
				continue
			}
			u, ok := s.UnitCosts[sc.UnitCosts]
			if !ok {
				continue
			}
			f := s.CostFactor(u)
			for _, item := range in.ScaleItems(sc) {
				if c, ok := u.Cost(item); ok {
					out = append(out, costItem{in.Name, item, c * f})
				}
			}
		}
	}
	return out
}

// ServiceUse summarises the use of every costed service (DESIGN §13) at
// every wave per arm, as an economic evaluation reports it: over the
// participants not withdrawn who answered the service at the wave (a
// blank answer is missing, not zero), n, how many used it at all
// (n_using, units > 0), mean and SD (n − 1) of the units, and of their
// cost (units × unit cost in the study's price year).
//
// It reads score's service_sums (exact integer sums of the units per
// trust, wave, team, arm, withdrawn and service: a few hundred rows),
// keeps the rows of the study's first two arms not withdrawn, adds them
// up exactly (math/big: no overflow however many trusts) and rounds each
// statistic once from the exact sums: mean = Σu/n, variance =
// (nΣu² − (Σu)²)/(n(n − 1)), the cost's with the unit cost c as the
// float64 it is (c·Σu/n, c²·variance). So the numbers do not depend on
// the order of the rows (TestServiceUseMatchesDense: within 1e-12 of a
// one-pass Welford sum over responses).
func ServiceUse(ctx context.Context, s *schemas.Study, dir string) ([]ServiceUseRow, error) {
	items := costItems(s)
	if len(items) == 0 {
		return nil, nil
	}
	arms := s.Arms[:min(2, len(s.Arms))]
	// The sums are per (wave, arm, service name); a service's unit cost
	// is the last cost scale's naming it.
	var names []string
	for _, it := range items {
		if !slices.Contains(names, it.item) {
			names = append(names, it.item)
		}
	}
	acc := make([]suAcc, len(s.Waves)*len(arms)*len(names))
	err := warehouse.ScanTable(ctx, dir, "service_sums", func(rec arrow.RecordBatch) error {
		return addServiceSums(rec, s.Waves, arms, names, acc)
	})
	if err != nil {
		return nil, fmt.Errorf("service use: %w", err)
	}
	var out []ServiceUseRow
	for wi, w := range s.Waves {
		for ai, a := range arms {
			for _, it := range items {
				r := ServiceUseRow{wave: w, arm: a, service: it.item, unitCost: it.cost}
				x := &acc[(wi*len(arms)+ai)*len(names)+slices.Index(names, it.item)]
				r.n, r.nUsing = int(x.n), int(x.using)
				r.meanUnits, r.sdUnits, r.meanCost, r.sdCost = x.stats(it.cost)
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// suAcc is one (wave, arm, service)'s sums; null: a trust's sum was beyond
// int64 (so the mean and SD are unknown).
type suAcc struct {
	n, using int64
	sum, sq  big.Int
	null     bool
}

// addServiceSums adds a batch of service_sums rows to acc, [wave × arm ×
// name]: those of a wave, arm and service named, not withdrawn.
func addServiceSums(rec arrow.RecordBatch, waves, arms, names []string, acc []suAcc) error {
	cols, err := warehouse.Columns(rec, "wave", "arm", "withdrawn", "service", "n", "n_using", "sum_units", "sum_units_sq")
	if err != nil {
		return err
	}
	wave, ok1 := cols[0].(*array.String)
	arm, ok2 := cols[1].(*array.String)
	wd, ok3 := cols[2].(*array.Boolean)
	svc, ok4 := cols[3].(*array.String)
	n, ok5 := cols[4].(*array.Int64)
	using, ok6 := cols[5].(*array.Int64)
	sum, ok7 := cols[6].(*array.Int64)
	sq, ok8 := cols[7].(*array.Int64)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8) {
		return errors.New("service_sums columns of unexpected types")
	}
	var b big.Int
	for i := range int(rec.NumRows()) {
		wi, ai, k := slices.Index(waves, wave.Value(i)), slices.Index(arms, arm.Value(i)), slices.Index(names, svc.Value(i))
		if wi < 0 || ai < 0 || k < 0 || !wd.IsValid(i) || wd.Value(i) {
			continue
		}
		a := &acc[(wi*len(arms)+ai)*len(names)+k]
		a.n += n.Value(i)
		a.using += using.Value(i)
		if sum.IsNull(i) || sq.IsNull(i) {
			a.null = true
			continue
		}
		a.sum.Add(&a.sum, b.SetInt64(sum.Value(i)))
		a.sq.Add(&a.sq, b.SetInt64(sq.Value(i)))
	}
	return nil
}

// stats are the mean and SD of the units and of their cost at unit cost
// c, each rounded once from the exact sums; NaN: n is 0 (mean), under 2
// (SD), or a sum unknown.
func (a *suAcc) stats(c float64) (meanUnits, sdUnits, meanCost, sdCost float64) {
	meanUnits, sdUnits, meanCost, sdCost = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	if a.n == 0 || a.null {
		return
	}
	n := new(big.Int).SetInt64(a.n)
	cost := new(big.Rat).SetFloat64(c) // nil: c is not finite (costs stay NaN)
	mean := new(big.Rat).SetFrac(&a.sum, n)
	meanUnits, _ = mean.Float64()
	if cost != nil {
		meanCost, _ = mean.Mul(mean, cost).Float64()
	}
	if a.n < 2 {
		return
	}
	// (nΣu² − (Σu)²) / (n(n − 1))
	num := new(big.Int).Mul(n, &a.sq)
	num.Sub(num, new(big.Int).Mul(&a.sum, &a.sum))
	den := new(big.Int).Mul(n, new(big.Int).SetInt64(a.n-1))
	v := new(big.Rat).SetFrac(num, den)
	vu, _ := v.Float64()
	sdUnits = math.Sqrt(vu)
	if cost != nil {
		vc, _ := v.Mul(v, cost.Mul(cost, cost)).Float64()
		sdCost = math.Sqrt(vc)
	}
	return
}

// WriteServiceUse writes service_use in its key order (wave, arm, service:
// the study's order of waves and arms, the instrument's of services).
func WriteServiceUse(env warehouse.Env, tx *warehouse.Tx, rows []ServiceUseRow) error {
	return warehouse.WriteRecords(env, tx, "service_use", rows)
}
