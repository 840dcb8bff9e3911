package compare

import (
	"math"
	"sort"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// missingRow is one row of missing_data.
type missingRow struct {
	outcome, wave, arm string
	expected, observed int
}

// missingData counts, for outcome o (its index in analysis.outcomes) at
// every wave and in each of the two arms, the participants expected
// (interviewed at the first wave, not withdrawn, in a team and trust: the
// population of itt_mi) and those of them with the outcome at the wave.
// An outcome without a baseline has no row at the first wave.
func missingData(s *schemas.Study, d *cmpColumns, o int, outcome string) []missingRow {
	arms := s.Arms[:min(2, len(s.Arms))]
	var out []missingRow
	hasBase := OutcomeHasBaseline(s, outcome)
	for w, wave := range s.Waves {
		if w == 0 && !hasBase {
			continue // not asked at the first wave (gas.t)
		}
		for _, arm := range arms {
			r := missingRow{outcome: outcome, wave: wave, arm: arm}
			code, ok := d.arms.index[arm]
			if ok {
				vals := &d.vals[o][w]
				for i := 0; i < d.n; i++ {
					if d.arm[i] != int32(code) || d.withdrawn[i] || !d.interviewed[i] || d.team[i] < 0 || d.trust[i] < 0 {
						continue
					}
					r.expected++
					if !math.IsNaN(vals.At(i)) {
						r.observed++
					}
				}
			}
			out = append(out, r)
		}
	}
	return out
}

// writeMissingData writes missing_data sorted by its key.
func writeMissingData(env warehouse.Env, tx *warehouse.Tx, rows []missingRow) error {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		return CmpKeys([]string{a.outcome, a.wave, a.arm}, []string{b.outcome, b.wave, b.arm}) < 0
	})
	tb := env.Study.Tables.Table("missing_data")
	col := func(name string) int { return warehouse.ColIndex(tb, name) }
	return WriteTable(env, tx, "missing_data", func(rw *warehouse.RowWriter) error {
		for _, r := range rows {
			rw.Str(col("outcome"), r.outcome)
			rw.Str(col("wave"), r.wave)
			rw.Str(col("arm"), r.arm)
			rw.Int32(col("n_expected"), int32(r.expected), true)
			rw.Int32(col("n_observed"), int32(r.observed), true)
			rw.Int32(col("n_missing"), int32(r.expected-r.observed), true)
			pct := math.NaN()
			if r.expected > 0 {
				pct = 100 * float64(r.expected-r.observed) / float64(r.expected)
			}
			optFloat(rw, col("pct_missing"), pct)
			if err := rw.RowDone(); err != nil {
				return err
			}
		}
		return nil
	})
}
