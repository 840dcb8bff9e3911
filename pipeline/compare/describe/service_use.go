package describe

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/pipeline/warehouse/codes"
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
// It reads of responses only what score reads (study_id, wave, item and
// value; item names are unique in a study, so the item gives the
// instrument), as codes: codes.Read resolves each dictionary entry once
// (a study_id to its participant in ids, whose arm and withdrawal c has,
// as score takes them from participants) and the rows are passed over
// comparing small integers, in the table's order, so the sums are those,
// bit for bit, of reading every column densely
// (TestServiceUseMatchesDense). Its memory is the sums and one row
// group's codes, whatever the study's size.
func ServiceUse(ctx context.Context, s *schemas.Study, dir string, c *Columns, ids *StudyIDs) ([]ServiceUseRow, error) {
	items := costItems(s)
	if len(items) == 0 {
		return nil, nil
	}
	arms := s.Arms[:min(2, len(s.Arms))]
	slots := c.armSlots(arms)
	// A participant's code: their arm's position among the arms compared,
	// or −1 (withdrawn, another arm, or not in participants).
	cur := ids.Cursor() // one column's Lookup: one goroutine at a time
	person := func(id string) int32 {
		i := cur.Find(id)
		if i < 0 || c.Withdrawn[i] {
			return -1
		}
		return int32(c.slot(slots, i))
	}
	// The sums are per (wave, arm, service name); a service's unit cost
	// is the last cost scale's naming it.
	sums := &suSums{waves: s.Waves, arms: arms}
	for _, it := range items {
		if !slices.Contains(sums.names, it.item) {
			sums.names = append(sums.names, it.item)
		}
	}
	sums.cost = make([]float64, len(sums.names))
	for _, it := range items {
		sums.cost[slices.Index(sums.names, it.item)] = it.cost
	}
	sums.acc = make([]suAcc, len(s.Waves)*len(arms)*len(sums.names))
	files, err := warehouse.TableFiles(dir, "responses")
	if err != nil {
		return nil, fmt.Errorf("service use: read responses: %w", err)
	}
	if err := sums.readCodes(ctx, files, person); err != nil {
		return nil, fmt.Errorf("service use: read responses: %w", err)
	}
	var out []ServiceUseRow
	for wi, w := range s.Waves {
		for ai, a := range arms {
			for _, it := range items {
				r := ServiceUseRow{wave: w, arm: a, service: it.item, unitCost: it.cost}
				if x := &sums.acc[(wi*len(arms)+ai)*len(sums.names)+slices.Index(sums.names, it.item)]; x.units.n > 0 {
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

// suSums are service use's sums per (wave, arm, service name).
type suSums struct {
	waves, arms, names []string
	cost               []float64 // per name
	acc                []suAcc
}

type suAcc struct {
	units, cost welford
	using       int
}

// add counts u units of service nc at wave wc in arm ac; a negative code
// is a row not counted.
func (s *suSums) add(wc, ac, nc, u int32) {
	if nc < 0 || ac < 0 || wc < 0 {
		return
	}
	a := &s.acc[(int(wc)*len(s.arms)+int(ac))*len(s.names)+int(nc)]
	x := float64(u)
	a.units.add(x)
	a.cost.add(x * s.cost[nc])
	if u > 0 {
		a.using++
	}
}

func (s *suSums) wave(v string) int32 { return int32(slices.Index(s.waves, v)) }
func (s *suSums) name(v string) int32 { return int32(slices.Index(s.names, v)) }

// readCodes reads responses' columns from their pages (codes.Read).
func (s *suSums) readCodes(ctx context.Context, files []string, person func(string) int32) error {
	cols := []codes.Column{{Name: "study_id", Lookup: person}, {Name: "wave", Lookup: s.wave}, {Name: "item", Lookup: s.name}, {Name: "value"}}
	return codes.Read(ctx, files, cols, func(b *codes.Batch) error {
		id, wave, item, val, ok := b.Vals[0], b.Vals[1], b.Vals[2], b.Vals[3], b.Valid[3]
		for i := range b.Rows {
			if ok == nil || ok[i] {
				s.add(wave[i], id[i], item[i], val[i])
			}
		}
		return nil
	})
}

// WriteServiceUse writes service_use in its key order (wave, arm, service:
// the study's order of waves and arms, the instrument's of services).
func WriteServiceUse(env warehouse.Env, tx *warehouse.Tx, rows []ServiceUseRow) error {
	return warehouse.WriteRecords(env, tx, "service_use", rows)
}
