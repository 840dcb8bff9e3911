package describe

import (
	"math"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// All is the arm of the descriptives rows over every arm.
const All = "ALL"

// DescRow is a row of the descriptives table: an outcome at a wave in an
// arm (or ALL), over the participants not withdrawn with a value there.
type DescRow struct {
	outcome string  `col:"outcome"`
	wave    string  `col:"wave"`
	arm     string  `col:"arm"`
	n       int     `col:"n"`
	mean    float64 `col:"mean"` // NaN: no value
	sd      float64 `col:"sd"`   // NaN: fewer than two values
}

// Descriptives summarises every analysed outcome at every wave of the
// study, per arm (in the study's order) and over all arms (ALL): n, mean and
// sample SD (n − 1) of the participants not withdrawn with a value at that
// wave. It is the per-arm summary a trial report prints beside its adjusted
// differences (CONSORT item 17a), so it uses the analysis frame's values as
// the models do, and leaves nobody out but the withdrawn and the missing.
// An outcome with no value at a wave (GAS at baseline) has rows with n = 0.
// One pass over the participants per outcome and wave; each group's values
// are taken in participant order.
func Descriptives(s *schemas.Study, c *Columns) []DescRow {
	groups := append(append([]string(nil), s.Arms...), All)
	all := len(groups) - 1
	slots := c.armSlots(groups) // an arm named ALL counts twice in ALL, as it always has
	var rows []DescRow
	for oi, outcome := range s.Analysis.Outcomes {
		for wi, wave := range s.Waves {
			vals, ok := c.Values(oi, wi)
			if !ok {
				continue
			}
			sums := make([]welford, len(groups))
			for i := 0; i < c.N; i++ {
				if c.Withdrawn[i] {
					continue
				}
				x := vals.At(i)
				if math.IsNaN(x) {
					continue
				}
				if g := c.slot(slots, i); g >= 0 {
					sums[g].add(x)
				}
				sums[all].add(x)
			}
			for g, name := range groups {
				w := &sums[g]
				rows = append(rows, DescRow{outcome: outcome, wave: wave, arm: name, n: w.n, mean: w.meanOrNaN(), sd: w.sdOrNaN()})
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

// WriteDescriptives writes the descriptives table sorted by its key.
func WriteDescriptives(env warehouse.Env, tx *warehouse.Tx, rows []DescRow) error {
	return warehouse.WriteRecords(env, tx, "descriptives", rows)
}
