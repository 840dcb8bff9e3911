package describe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/pipeline/warehouse/codes"
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
// cost (units × unit cost in the study's price year).
//
// It reads of responses only what score reads (study_id, wave, item and
// value; item names are unique in a study, so the item gives the
// instrument, and a participant's arm is the participants table's, as
// score takes it), as codes: codes.Read resolves each dictionary
// entry once and the rows are passed over comparing small integers, in
// the table's order, so the sums are those, bit for bit, of reading every
// column densely (TestServiceUseMatchesDense).
func serviceUse(ctx context.Context, s *schemas.Study, dir string) ([]serviceUseRow, error) {
	items := costItems(s)
	if len(items) == 0 {
		return nil, nil
	}
	arms := s.Arms[:min(2, len(s.Arms))]
	people, err := readSUPeople(ctx, dir, arms)
	if err != nil {
		return nil, fmt.Errorf("service use: %w", err)
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
	if err := sums.readCodes(ctx, files, people); err != nil {
		return nil, fmt.Errorf("service use: read responses: %w", err)
	}
	var out []serviceUseRow
	for wi, w := range s.Waves {
		for ai, a := range arms {
			for _, it := range items {
				r := serviceUseRow{wave: w, arm: a, service: it.item, unitCost: it.cost}
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
func (s *suSums) readCodes(ctx context.Context, files []string, people *suPeople) error {
	cols := []codes.Column{{Name: "study_id", Lookup: people.arm}, {Name: "wave", Lookup: s.wave}, {Name: "item", Lookup: s.name}, {Name: "value"}}
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

// suPeople are the participants, sorted by study_id, each with the code
// service use counts them under: their arm's position in the arms
// compared, or −1 (withdrawn, or another arm). The ids are one string
// and their ends, not a million strings for the collector to trace.
type suPeople struct {
	ids   string
	ends  []int
	codes []int32
}

func readSUPeople(ctx context.Context, dir string, arms []string) (*suPeople, error) {
	files, err := warehouse.TableFiles(dir, "participants")
	if err != nil {
		return nil, fmt.Errorf("read participants: %w", err)
	}
	scan := warehouse.NewColumnScan(ctx, files, []string{"study_id", "arm", "withdrawn"}, nil)
	defer scan.Close()
	var ids []byte
	var ends []int
	var codes []int32
	sorted := true
	for {
		ok, err := scan.Next()
		if err != nil {
			return nil, fmt.Errorf("read participants: %w", err)
		}
		if !ok {
			break
		}
		id, ok1 := scan.Cols[0].(*array.String)
		arm, ok2 := scan.Cols[1].(*array.String)
		wd, ok3 := scan.Cols[2].(*array.Boolean)
		if !ok1 || !ok2 || !ok3 {
			return nil, errors.New("read participants: columns study_id, arm and withdrawn are not strings and a bool")
		}
		for i := range id.Len() {
			c := int32(slices.Index(arms, arm.Value(i)))
			if wd.IsValid(i) && wd.Value(i) {
				c = -1
			}
			if n := len(ends); sorted && n > 0 {
				prev := 0
				if n > 1 {
					prev = ends[n-2]
				}
				sorted = string(ids[prev:ends[n-1]]) < id.Value(i)
			}
			ids = append(ids, id.Value(i)...)
			ends = append(ends, len(ids))
			codes = append(codes, c)
		}
	}
	p := &suPeople{ids: string(ids), ends: ends, codes: codes}
	if !sorted { // each trust's are; the trusts' files come in path order
		order := make([]int, len(ends))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(p.id(a), p.id(b)) })
		var ids []byte
		ends, codes := make([]int, len(order)), make([]int32, len(order))
		for k, i := range order {
			ids = append(ids, p.id(i)...)
			ends[k], codes[k] = len(ids), p.codes[i]
		}
		p = &suPeople{ids: string(ids), ends: ends, codes: codes}
	}
	return p, nil
}

// id is participant i's study_id.
func (p *suPeople) id(i int) string {
	start := 0
	if i > 0 {
		start = p.ends[i-1]
	}
	return p.ids[start:p.ends[i]]
}

// arm is participant id's code (−1 for one missing from participants).
func (p *suPeople) arm(id string) int32 {
	lo, hi := 0, len(p.ends)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p.id(m) < id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(p.ends) && p.id(lo) == id {
		return p.codes[lo]
	}
	return -1
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
