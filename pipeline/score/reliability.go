package score

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/stats"
)

// Reliability (DESIGN §8), computed by Score as it reads the responses.
//
// While the participants stream past, Score adds each complete case's
// scored item values to a stats.AlphaAccumulator per scale × wave × trust:
// item sums and cross-products, k² + 3k float64s for a scale of k items
// (for the default instruments, under 10 KB per wave and trust), however
// many participants there are. The pooled ALL rows merge the trusts'
// accumulators. With integer item codes the sums are exact (into the
// millions of cases), so the result does not depend on the order of the
// participants or of the trusts.

// relAllTrusts is the trust code of the pooled reliability rows.
const relAllTrusts = "ALL"

// relScale is one scale whose reliability is reported.
type relScale struct {
	inst  int
	scale int
	items []int    // item positions in the instrument
	names []string // their names
}

// newRelScales lists the scales marked reliability, sorted by instrument
// and scale name (the reliability table's order).
func newRelScales(p *scorePlan) ([]relScale, error) {
	var out []relScale
	for i, ip := range p.insts {
		for si, sp := range ip.scales {
			if !sp.reliability {
				continue
			}
			rs := relScale{inst: i, scale: si, items: sp.items}
			for _, j := range sp.items {
				rs.names = append(rs.names, ip.items[j].Name)
			}
			out = append(out, rs)
		}
	}
	slices.SortFunc(out, func(a, b relScale) int {
		if c := strings.Compare(p.insts[a.inst].name, p.insts[b.inst].name); c != 0 {
			return c
		}
		return strings.Compare(p.insts[a.inst].scales[a.scale].name, p.insts[b.inst].scales[b.scale].name)
	})
	return out, nil
}

// relAcc is one trust's reliability data: a cell per reliability scale ×
// wave.
type relAcc struct {
	waves int
	cells []relCell
	row   []float64 // scratch: one case's item values
}

// relCell is one scale × wave × trust.
type relCell struct {
	interviews int64 // participant-waves that answered an item of the instrument
	blanks     int64 // the scale's item answers missing among them
	cases      *stats.AlphaAccumulator
}

func newRelAcc(p *scorePlan) *relAcc {
	acc := &relAcc{waves: len(p.waves), cells: make([]relCell, len(p.rel)*len(p.waves))}
	for ri, rs := range p.rel {
		for w := range p.waves {
			acc.cells[ri*len(p.waves)+w].cases = stats.NewAlphaAccumulator(len(rs.items))
		}
		acc.row = make([]float64, max(len(acc.row), len(rs.items)))
	}
	return acc
}

func (acc *relAcc) cell(ri, w int) *relCell { return &acc.cells[ri*acc.waves+w] }

// add counts one participant-wave's answers (per instrument).
func (acc *relAcc) add(p *scorePlan, w int, ans []scoreAnswers) {
	for ri, rs := range p.rel {
		ip := p.insts[rs.inst]
		a := &ans[rs.inst]
		if !ip.asked[w] || !slices.Contains(a.ok, true) {
			continue
		}
		c := acc.cell(ri, w)
		c.interviews++
		row := acc.row[:len(rs.items)]
		complete := true
		for d, j := range rs.items {
			v, ok := a.keyed(ip, j)
			if !ok {
				c.blanks++
				complete = false
			}
			row[d] = float64(v)
		}
		if complete {
			c.cases.Add(row)
		}
	}
}

// writeReliability writes the reliability table from every trust's cells:
// per reliability scale, wave at which its instrument is asked, and trust
// (with ALL pooling the trusts in byte order of their codes), in key
// order.
func writeReliability(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, p *scorePlan, trusts []string, accs []*relAcc) error {
	const name = "reliability"
	tb := env.Study.Tables.Table(name)
	schema := warehouse.ArrowSchema(env, name, nil)
	tf, err := tx.CreateTableFile(schema, name, "", "", "data")
	if err != nil {
		return err
	}
	rw := warehouse.NewRowWriter(schema, tf)
	var c [11]int
	for i, col := range []string{"instrument", "scale", "wave", "trust", "n", "items", "alpha", "alpha_ci_low", "alpha_ci_high", "items_missing_pct", "negative_items"} {
		c[i] = warehouse.ColIndex(tb, col)
	}
	groups := append([]string{relAllTrusts}, trusts...)
	slices.Sort(groups)
	write := func() error {
		for ri, rs := range p.rel {
			ip := p.insts[rs.inst]
			k := len(rs.items)
			for _, w := range p.waveOut {
				if !ip.asked[w] {
					continue
				}
				for _, g := range groups {
					if err := ctx.Err(); err != nil {
						return err
					}
					var cases *stats.AlphaAccumulator
					var interviews, blanks int64
					for t, acc := range accs {
						if g != relAllTrusts && g != trusts[t] {
							continue
						}
						cl := acc.cell(ri, w)
						interviews += cl.interviews
						blanks += cl.blanks
						if g != relAllTrusts {
							cases = cl.cases
							continue
						}
						if cases == nil {
							cases = stats.NewAlphaAccumulator(k)
						}
						if err := cases.Merge(cl.cases); err != nil {
							return err
						}
					}
					if cases == nil {
						cases = stats.NewAlphaAccumulator(k) // no trusts
					}
					n := cases.N()
					var a stats.Alpha
					ok := false
					if n >= 3 && k >= 2 {
						var err error
						a, err = cases.Result(0.95)
						ok = err == nil && !math.IsNaN(a.Alpha) && !math.IsInf(a.Alpha, 0)
					}
					var negative []string
					if ok {
						for d, r := range a.ItemRestCorr {
							if r < 0 {
								negative = append(negative, rs.names[d])
							}
						}
					}
					rw.Str(c[0], ip.name)
					rw.Str(c[1], ip.scales[rs.scale].name)
					rw.Str(c[2], p.waves[w])
					rw.Str(c[3], g)
					rw.Int32(c[4], int32(n), true)
					rw.Int32(c[5], int32(k), true)
					rw.Float64(c[6], a.Alpha, ok)
					rw.Float64(c[7], a.CILow, ok)
					rw.Float64(c[8], a.CIHigh, ok)
					rw.Float64(c[9], 100*float64(blanks)/float64(interviews*int64(k)), interviews > 0)
					rw.NullStr(c[10], strings.Join(negative, " "))
					if err := rw.RowDone(); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if err := write(); err != nil {
		rw.Abort()
		return fmt.Errorf("write reliability: %w", err)
	}
	if err := rw.Close(); err != nil {
		return fmt.Errorf("write reliability: %w", err)
	}
	return nil
}
