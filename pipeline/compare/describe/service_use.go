package describe

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// serviceUseRow is a row of the service_use table: one service (an item of
// a cost scale's instrument) at a wave in an arm.
type serviceUseRow struct {
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

// serviceUse summarises the use of every costed service (DESIGN §13) at
// every wave per arm, as an economic evaluation reports it: over the
// participants not withdrawn who answered the service at the wave (a
// blank answer is missing, not zero), n, how many used it at all
// (n_using, units > 0), mean and SD (n − 1) of the units, and of their
// cost (units × unit cost in the study's price year). It reads responses
// (only the cost instruments' items) and participants (who withdrew).
func serviceUse(ctx context.Context, s *schemas.Study, dir string) ([]serviceUseRow, error) {
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
		return nil, fmt.Errorf("service use: %w", err)
	}
	arms := s.Arms[:min(2, len(s.Arms))]
	type key struct{ wave, arm, item string }
	type acc struct {
		units, cost welford
		using       int
	}
	sums := map[key]*acc{}
	itemCost := map[[2]string]float64{}
	var costInstruments []string // responses of other instruments are passed over before any map lookup
	for _, it := range items {
		itemCost[[2]string{it.instrument, it.item}] = it.cost
		if !slices.Contains(costInstruments, it.instrument) {
			costInstruments = append(costInstruments, it.instrument)
		}
	}
	err = warehouse.ScanTable(ctx, dir, "responses", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "study_id", "wave", "instrument", "item", "arm", "value")
		if err != nil {
			return err
		}
		id, wave, inst, item, arm := cols[0].(*array.String), cols[1].(*array.String), cols[2].(*array.String), cols[3].(*array.String), cols[4].(*array.String)
		val := cols[5].(*array.Int32)
		for i := 0; i < int(rec.NumRows()); i++ {
			if val.IsNull(i) || !slices.Contains(costInstruments, inst.Value(i)) {
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
		return nil, fmt.Errorf("service use: %w", err)
	}
	var out []serviceUseRow
	for _, w := range s.Waves {
		for _, a := range arms {
			for _, it := range items {
				r := serviceUseRow{wave: w, arm: a, service: it.item, unitCost: it.cost}
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

// WriteServiceUse writes service_use in its key order (wave, arm, service:
// the study's order of waves and arms, the instrument's of services).
func WriteServiceUse(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
	rows, err := serviceUse(ctx, env.Study, tx.Dir)
	if err != nil {
		return err
	}
	return warehouse.WriteRecords(env, tx, "service_use", rows)
}
