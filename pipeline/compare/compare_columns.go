package compare

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"sync"

	"github.com/connectingpeople/cpi/pipeline/compare/describe"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/pipeline/warehouse/codes"
	"github.com/connectingpeople/cpi/schemas"
)

// This file reads what the comparison needs from the warehouse as columns
// of plain slices (strings as small integer codes into per-column
// dictionaries) and selects each model's population from them: the
// column-wise counterpart of compareData and buildFrame, which the study
// report still uses.

// cmpCodes interns the values of one string column: code −1 is null or "".
type cmpCodes struct {
	levels []string
	index  map[string]int
}

func (c *cmpCodes) code(s string) int {
	if s == "" {
		return -1
	}
	if i, ok := c.index[s]; ok {
		return i
	}
	if c.index == nil {
		c.index = map[string]int{}
	}
	s = strings.Clone(s)
	c.index[s] = len(c.levels)
	c.levels = append(c.levels, s)
	return len(c.levels) - 1
}

// find is s's code, −1 when it has none.
func (c *cmpCodes) find(s string) int {
	if i, ok := c.index[s]; ok {
		return i
	}
	return -1
}

// lookup32 is f with int32 codes, as codes.Column's Lookup.
func lookup32(f func(string) int) func(string) int32 {
	return func(v string) int32 { return int32(f(v)) }
}

// cmpColumns is the participants table, sorted by study_id, as columns, with
// each outcome's baseline and follow-up values and each team's fidelity band
// in the last period.
type cmpColumns struct {
	n int
	// ids are the study_ids, sorted (scores are placed through them).
	ids              *describe.StudyIDs
	trust, team, arm []int32
	trusts, teams    cmpCodes
	arms             cmpCodes
	// cat holds the coded demographic fields (catNames, in the order of
	// s.DemographicFields()) as codes into catCodes; num the 0/1 ones
	// (numNames; NaN when null).
	catNames  []string
	cat       [][]int32
	catCodes  []cmpCodes
	numNames  []string
	num       [][]float64
	withdrawn []bool
	// interviewed is interviewed_baseline: interviewed at the first wave
	// (the population of itt_mi and of the missing_data table).
	interviewed []bool
	// vals holds the outcomes' values (in the order of the outcomes asked
	// for) at every wave of the study (in the study's order): vals[o][0]
	// is the baseline.
	vals [][]OutcomeValues
	// band is each team code's band in the last period, if hasBand.
	band       []string
	hasBand    []bool
	lastPeriod string
}

// readCompareColumns reads participants, the outcomes' scores and the last
// period's fidelity bands from the generation at dir, column by column:
// string columns are read as dictionaries and coded once per dictionary
// entry, scores are placed by a binary search over the sorted study_ids once
// per run of a participant's rows.
func readCompareColumns(ctx context.Context, env warehouse.Env, dir string, outcomes []string) (*cmpColumns, error) {
	s := env.Study
	d := &cmpColumns{ids: &describe.StudyIDs{}}

	files, err := warehouse.TableFiles(dir, "participants")
	rows := 0
	if err == nil {
		rows, err = codes.Rows(files) // the columns are sized once
	}
	if err != nil {
		return nil, fmt.Errorf("read table participants: %w", err)
	}
	d.trust, d.team, d.arm = make([]int32, 0, rows), make([]int32, 0, rows), make([]int32, 0, rows)
	d.withdrawn, d.interviewed = make([]bool, 0, rows), make([]bool, 0, rows)
	for _, f := range s.DemographicFields() {
		if f.Binary {
			d.numNames, d.num = append(d.numNames, f.Name), append(d.num, make([]float64, 0, rows))
		} else {
			d.catNames, d.cat = append(d.catNames, f.Name), append(d.cat, make([]int32, 0, rows))
		}
	}
	d.catCodes = make([]cmpCodes, len(d.catNames))
	// Columns: study_id, the coded ones (trust, team, arm, the coded
	// demographics), withdrawn, the 0/1 demographics, interviewed_baseline.
	// A study_id's Lookup keeps the ids (each entry once; it may run while
	// fn takes the row group before) and numbers them from 0; fn lets
	// those of its row group go.
	var mu sync.Mutex
	var looked []string // the ids numbered from base on
	base := int32(0)
	cols := []codes.Column{{Name: "study_id", Lookup: func(v string) int32 {
		mu.Lock()
		defer mu.Unlock()
		looked = append(looked, v)
		return base + int32(len(looked)-1)
	}}}
	targets := []*cmpCodes{&d.trusts, &d.teams, &d.arms}
	for c := range d.catCodes {
		targets = append(targets, &d.catCodes[c])
	}
	names := append([]string{"trust", "team", "arm"}, d.catNames...)
	for c, name := range names {
		cols = append(cols, codes.Column{Name: name, Lookup: func(v string) int32 { return int32(targets[c].code(v)) }})
	}
	nCoded := len(names)
	cols = append(cols, codes.Column{Name: "withdrawn", Bool: true})
	for _, name := range d.numNames {
		cols = append(cols, codes.Column{Name: name})
	}
	cols = append(cols, codes.Column{Name: "interviewed_baseline", Bool: true})
	err = codes.ReadAhead(ctx, files, cols, func(b *codes.Batch) error {
		mu.Lock()
		top := base
		for _, k := range b.Vals[0][:b.Rows] {
			d.ids.Append(looked[k-base]) // "" when null
			top = max(top, k+1)
		}
		looked, base = looked[:copy(looked, looked[top-base:])], top
		mu.Unlock()
		d.trust = append(d.trust, b.Vals[1][:b.Rows]...)
		d.team = append(d.team, b.Vals[2][:b.Rows]...)
		d.arm = append(d.arm, b.Vals[3][:b.Rows]...)
		for c := range d.cat {
			d.cat[c] = append(d.cat[c], b.Vals[4+c][:b.Rows]...)
		}
		for c := range d.num {
			vals, ok := b.Vals[2+nCoded+c], b.Valid[2+nCoded+c]
			for i := range b.Rows {
				a := math.NaN()
				if ok == nil || ok[i] {
					a = float64(vals[i])
				}
				d.num[c] = append(d.num[c], a)
			}
		}
		wd, ib := b.Vals[1+nCoded], b.Vals[len(cols)-1]
		for i := range b.Rows {
			d.withdrawn = append(d.withdrawn, wd[i] == 1)
			d.interviewed = append(d.interviewed, ib[i] == 1)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read table participants: %w", err)
	}
	d.n = d.ids.Len()
	d.sortByID()

	d.vals = make([][]OutcomeValues, len(outcomes))
	for o := range outcomes {
		d.vals[o] = make([]OutcomeValues, len(s.Waves))
		for w := range s.Waves {
			d.vals[o][w].Init(d.n)
		}
	}
	if err := d.readScores(ctx, s, dir, outcomes); err != nil {
		return nil, err
	}
	for o := range outcomes {
		for w := range s.Waves {
			d.vals[o][w].index.keys, d.vals[o][w].index.codes = nil, nil
		}
	}

	if len(s.Periods) > 0 {
		d.lastPeriod = s.Periods[len(s.Periods)-1]
	}
	d.band = make([]string, len(d.teams.levels))
	d.hasBand = make([]bool, len(d.teams.levels))
	// The bands of the last period (coded 0): a null band is coded −1.
	fid, err := warehouse.TableFiles(dir, "fidelity")
	var bands cmpCodes
	last := lookup32(func(v string) int { return strings.Compare(v, d.lastPeriod) })
	if err == nil {
		err = codes.Read(ctx, fid, []codes.Column{{Name: "team", Lookup: lookup32(d.teams.find)}, {Name: "period", Lookup: last}, {Name: "band", Lookup: lookup32(bands.code)}},
			func(b *codes.Batch) error {
				for i, t := range b.Vals[0][:b.Rows] {
					if c := b.Vals[2][i]; t >= 0 && c >= 0 && b.Vals[1][i] == 0 {
						d.band[t], d.hasBand[t] = bands.levels[c], true
					}
				}
				return nil
			})
	}
	if err != nil {
		return nil, fmt.Errorf("read table fidelity: %w", err)
	}
	return d, nil
}

// describeColumns is the participants' columns as the summaries of
// package describe (descriptives, missing_data) read them.
func (d *cmpColumns) describeColumns() *describe.Columns {
	return &describe.Columns{N: d.n, Arm: d.arm, Arms: d.arms.levels, Team: d.team, Trust: d.trust,
		Withdrawn: d.withdrawn, Interviewed: d.interviewed,
		Values: func(o, w int) (describe.Values, bool) {
			if o >= len(d.vals) || w >= len(d.vals[o]) {
				return nil, false
			}
			return &d.vals[o][w], true
		}}
}

// sortByID puts the rows in study_id order (as compareData: the order fixes
// the numbering of clusters and so the bootstrap's draws).
func (d *cmpColumns) sortByID() {
	perm := d.ids.Sort()
	if perm == nil {
		return
	}
	d.trust = permute(d.trust, perm)
	d.team = permute(d.team, perm)
	d.arm = permute(d.arm, perm)
	for c := range d.cat {
		d.cat[c] = permute(d.cat[c], perm)
	}
	for c := range d.num {
		d.num[c] = permute(d.num[c], perm)
	}
	d.withdrawn = permute(d.withdrawn, perm)
	d.interviewed = permute(d.interviewed, perm)
}

func permute[T any](x []T, perm []int32) []T {
	out := make([]T, len(x))
	for i, p := range perm {
		out[i] = x[p]
	}
	return out
}

// readScores places the outcomes' values at every wave.
func (d *cmpColumns) readScores(ctx context.Context, s *schemas.Study, dir string, outcomes []string) error {
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
	// One goroutine at a time decodes a column, in row order: the
	// study_ids' Lookup may step a cursor.
	cols := []codes.Column{{Name: "study_id", Lookup: lookup32(d.ids.Cursor().Find)}, {Name: "wave", Lookup: lookup32(s.WaveIndex)},
		{Name: "instrument", Lookup: lookup32(insts.find)}, {Name: "scale", Lookup: lookup32(scales.find)}, {Name: "value", Float: true}}
	err = codes.ReadAhead(ctx, files, cols, func(b *codes.Batch) error {
		rows, waves, ics, scs, vals, ok := b.Vals[0], b.Vals[1], b.Vals[2], b.Vals[3], b.Floats[4], b.Valid[4]
		for r := range b.Rows {
			w, ic, sc := int(waves[r]), int(ics[r]), int(scs[r])
			if ok != nil && !ok[r] || w < 0 || ic < 0 || sc < 0 {
				continue
			}
			code := ic*nScales + sc
			o := want[code]
			if o < 0 && (w != 0 || len(baseOf[code]) == 0) {
				continue
			}
			k := int(rows[r])
			if k < 0 {
				continue // a score without a participant row cannot be placed in a team
			}
			if w != 0 {
				d.vals[o][w].Set(k, vals[r])
				continue
			}
			if o >= 0 && ownBase[o] {
				d.vals[o][0].Set(k, vals[r])
			}
			for _, ob := range baseOf[code] {
				if !ownBase[ob] {
					d.vals[ob][0].Set(k, vals[r])
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read table scores: %w", err)
	}
	return nil
}

// OutcomeValues holds one outcome's values at one wave, one per
// participant: as codes into a table of its distinct values (two bytes a
// participant: scores take few distinct values) while there are fewer than
// 65,535 of them, else as the values themselves. Values are kept exactly;
// NaN stands for missing.
type OutcomeValues struct {
	codes []uint16  // 0: missing, c: table[c−1]
	Table []float64 // the distinct values
	// index codes values while they are set: an open-addressing table of
	// the values' bits (keys) and their codes (0: an empty slot).
	index struct {
		keys  []uint64
		codes []uint16
	}
	Raw []float64 // the values, once there are too many to code
}

func (v *OutcomeValues) Init(n int) {
	v.codes = make([]uint16, n)
	v.index.keys, v.index.codes = make([]uint64, 64), make([]uint16, 64)
}

// slot is where key is in the index, or would go.
func (v *OutcomeValues) slot(key uint64) int {
	m := len(v.index.codes) - 1
	h := int(key*0x9E3779B97F4A7C15>>(64-bits.Len(uint(m)))) & m
	for v.index.codes[h] != 0 && v.index.keys[h] != key {
		h = (h + 1) & m
	}
	return h
}

// Set records participant i's value x.
func (v *OutcomeValues) Set(i int, x float64) {
	if v.Raw != nil {
		v.Raw[i] = x
		return
	}
	if math.IsNaN(x) {
		v.codes[i] = 0
		return
	}
	key := math.Float64bits(x)
	h := v.slot(key)
	if v.index.codes[h] == 0 {
		if len(v.Table) == math.MaxUint16-1 {
			raw := make([]float64, len(v.codes))
			for j := range raw {
				raw[j] = v.At(j)
			}
			v.Raw, v.codes, v.Table, v.index.keys, v.index.codes = raw, nil, nil, nil, nil
			v.Raw[i] = x
			return
		}
		v.Table = append(v.Table, x)
		if n := len(v.index.codes); 2*len(v.Table) > n { // grow: every value again
			v.index.keys, v.index.codes = make([]uint64, 2*n), make([]uint16, 2*n)
			for c, t := range v.Table {
				k := v.slot(math.Float64bits(t))
				v.index.keys[k], v.index.codes[k] = math.Float64bits(t), uint16(c+1)
			}
			h = v.slot(key)
		}
		v.index.keys[h], v.index.codes[h] = key, uint16(len(v.Table))
	}
	v.codes[i] = v.index.codes[h]
}

// At is participant i's value, NaN when missing.
func (v *OutcomeValues) At(i int) float64 {
	if v.Raw != nil {
		return v.Raw[i]
	}
	if c := v.codes[i]; c > 0 {
		return v.Table[c-1]
	}
	return math.NaN()
}
