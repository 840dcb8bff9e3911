// Package describe holds the comparison stage's summaries that are not
// analyses: the descriptives table (n, mean and SD of every outcome at
// every wave, per arm), missing_data (the participants expected and
// observed for each outcome), service_use (from score's service_sums) and
// the participant flow (read from interviews; compare adds the analysed
// stages, which count its frames). They read plain columns of the
// participants (Columns) or tables, never an analysis frame, so the
// counts live apart from compare's fitting machinery; compare fills
// Columns and writes the tables.
package describe

import (
	"math"
	"sort"
	"strings"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// Values is one outcome's values at one wave, one per participant; NaN is
// missing.
type Values interface {
	At(i int) float64
}

// Columns is what the summaries read of the participants: one entry per
// participant in every slice.
type Columns struct {
	N int
	// Arm is each participant's arm as a code into Arms (−1: none).
	Arm  []int32
	Arms []string
	// Team and Trust are codes (−1: none); only their presence is read.
	Team, Trust []int32
	Withdrawn   []bool
	// Interviewed is interviewed_baseline: interviewed at the first wave.
	Interviewed []bool
	// Values returns outcome o's values (o indexes analysis.outcomes) at
	// wave w (w indexes the study's waves); false when there are none.
	Values func(o, w int) (Values, bool)
}

// armSlots maps each arm code to the position of its name in names, or −1.
func (c *Columns) armSlots(names []string) []int {
	slots := make([]int, len(c.Arms))
	for code, name := range c.Arms {
		slots[code] = -1
		for j, n := range names {
			if n == name {
				slots[code] = j
				break
			}
		}
	}
	return slots
}

// slot is participant i's arm slot, or −1.
func (c *Columns) slot(slots []int, i int) int {
	if a := c.Arm[i]; a >= 0 && int(a) < len(slots) {
		return slots[a]
	}
	return -1
}

// optFloat appends v, or null when v is NaN or infinite.
func optFloat(rw *warehouse.RowWriter, col int, v float64) {
	rw.Float64(col, v, !math.IsNaN(v) && !math.IsInf(v, 0))
}

// cmpKeys compares two keys column by column in byte order.
func cmpKeys(a, b []string) int {
	for i := range a {
		if c := strings.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}

// MissingRow is one row of missing_data.
type MissingRow struct {
	outcome, wave, arm string
	expected, observed int
}

// MissingData counts, for outcome o (its index in analysis.outcomes) at
// every wave and in each of the two arms, the participants expected
// (interviewed at the first wave, not withdrawn, in a team and trust: the
// population of itt_mi) and those of them with the outcome at the wave, in
// one pass over the participants per wave. An outcome without a baseline
// (hasBase false) has no row at the first wave.
func MissingData(s *schemas.Study, c *Columns, o int, outcome string, hasBase bool) []MissingRow {
	arms := s.Arms[:min(2, len(s.Arms))]
	slots := c.armSlots(arms)
	var out []MissingRow
	for w, wave := range s.Waves {
		if w == 0 && !hasBase {
			continue // not asked at the first wave (gas.t)
		}
		rows := make([]MissingRow, len(arms))
		for a, arm := range arms {
			rows[a] = MissingRow{outcome: outcome, wave: wave, arm: arm}
		}
		if vals, ok := c.Values(o, w); ok {
			for i := 0; i < c.N; i++ {
				a := c.slot(slots, i)
				if a < 0 || c.Withdrawn[i] || !c.Interviewed[i] || c.Team[i] < 0 || c.Trust[i] < 0 {
					continue
				}
				rows[a].expected++
				if !math.IsNaN(vals.At(i)) {
					rows[a].observed++
				}
			}
		}
		out = append(out, rows...)
	}
	return out
}

// WriteMissingData writes missing_data sorted by its key.
func WriteMissingData(env warehouse.Env, tx *warehouse.Tx, rows []MissingRow) error {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		return cmpKeys([]string{a.outcome, a.wave, a.arm}, []string{b.outcome, b.wave, b.arm}) < 0
	})
	tb := env.Study.Tables.Table("missing_data")
	col := func(name string) int { return warehouse.ColIndex(tb, name) }
	return warehouse.WriteTable(env, tx, "missing_data", func(rw *warehouse.RowWriter) error {
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
