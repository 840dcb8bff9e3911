package compare

import (
	"math"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// descriptiveAll is the arm code of the rows over every arm.
const descriptiveAll = "ALL"

// descRow is a row of the descriptives table: an outcome at a wave in an
// arm (or ALL), over the participants not withdrawn with a value there.
type descRow struct {
	outcome string  `col:"outcome"`
	wave    string  `col:"wave"`
	arm     string  `col:"arm"`
	n       int     `col:"n"`
	mean    float64 `col:"mean"` // NaN: no value
	sd      float64 `col:"sd"`   // NaN: fewer than two values
}

// descriptiveRows summarises every analysed outcome at every wave of the
// study, per arm (in the study's order) and over all arms (ALL): n, mean and
// sample SD (n − 1) of the participants not withdrawn with a value at that
// wave. It is the per-arm summary a trial report prints beside its adjusted
// differences (CONSORT item 17a), so it uses the analysis frame's values as
// the models do, and leaves nobody out but the withdrawn and the missing.
// An outcome with no value at a wave (GAS at baseline) has rows with n = 0.
func descriptiveRows(s *schemas.Study, d *cmpColumns) []descRow {
	armName := func(i int) string {
		if c := d.arm[i]; c >= 0 && int(c) < len(d.arms.levels) {
			return d.arms.levels[c]
		}
		return ""
	}
	var rows []descRow
	for oi, outcome := range s.Analysis.Outcomes {
		for wi, wave := range s.Waves {
			if oi >= len(d.vals) || wi >= len(d.vals[oi]) {
				continue
			}
			vals := &d.vals[oi][wi]
			groups := append(append([]string(nil), s.Arms...), descriptiveAll)
			sums := make(map[string]*welford, len(groups))
			for _, g := range groups {
				sums[g] = &welford{}
			}
			for i := 0; i < d.n; i++ {
				if d.withdrawn[i] {
					continue
				}
				x := vals.At(i)
				if math.IsNaN(x) {
					continue
				}
				if w, ok := sums[armName(i)]; ok {
					w.add(x)
				}
				sums[descriptiveAll].add(x)
			}
			for _, g := range groups {
				w := sums[g]
				rows = append(rows, descRow{outcome: outcome, wave: wave, arm: g, n: w.n, mean: w.meanOrNaN(), sd: w.sdOrNaN()})
			}
		}
	}
	return rows
}

// welford accumulates a mean and a sum of squared deviations in one pass
// (Welford's method: no cancellation with large values).
type welford struct {
	n        int
	mean, m2 float64
}

func (w *welford) add(x float64) {
	w.n++
	d := x - w.mean
	w.mean += d / float64(w.n)
	w.m2 += d * (x - w.mean)
}

func (w *welford) meanOrNaN() float64 {
	if w.n == 0 {
		return math.NaN()
	}
	return w.mean
}

func (w *welford) sdOrNaN() float64 {
	if w.n < 2 {
		return math.NaN()
	}
	return math.Sqrt(w.m2 / float64(w.n-1))
}

// writeDescriptives writes the descriptives table sorted by its key.
func writeDescriptives(env warehouse.Env, tx *warehouse.Tx, rows []descRow) error {
	return warehouse.WriteRecords(env, tx, "descriptives", rows)
}
