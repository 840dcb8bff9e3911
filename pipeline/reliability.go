package pipeline

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/connectingpeople/cpi/stats"
)

// Reliability (DESIGN §8), computed by Score as it reads the responses.
//
// Cronbach's alpha needs every complete case's item values, so while the
// participants stream past, Score keeps, per scale × wave × trust, the
// complete cases' scored item values as int8 (one byte per item; the items
// of a reliability scale must lie in −128..127) in fixed-size chunks. With
// the default instruments that is 27 + 7 + 15 + 3 = 52 bytes per complete
// participant-wave: about 104 MB for a million participants at two waves.
// Each reliability row then expands its cases to the float64 columns that
// stats.CronbachAlpha takes (n × k × 8 bytes, one reused buffer: 216 MB for
// the pooled RG-UK of a million participants, and stats.CronbachAlpha
// copies each column once more as it goes).

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
				it := ip.items[j]
				if it.Min < math.MinInt8 || it.Max > math.MaxInt8 {
					return nil, fmt.Errorf("instrument %s scale %s: reliability needs item codes within %d..%d (%s)", ip.name, sp.name, math.MinInt8, math.MaxInt8, it.Name)
				}
				rs.names = append(rs.names, it.Name)
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
}

// relCell is one scale × wave × trust.
type relCell struct {
	interviews int64 // participant-waves that answered an item of the instrument
	blanks     int64 // the scale's item answers missing among them
	cases      relInt8Rows
}

func newRelAcc(p *scorePlan) *relAcc {
	acc := &relAcc{waves: len(p.waves), cells: make([]relCell, len(p.rel)*len(p.waves))}
	for ri, rs := range p.rel {
		for w := range p.waves {
			acc.cells[ri*len(p.waves)+w].cases.k = len(rs.items)
		}
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
		complete := true
		for _, j := range rs.items {
			if _, ok := a.keyed(ip, j); !ok {
				c.blanks++
				complete = false
			}
		}
		if !complete {
			continue
		}
		row := c.cases.next()
		for d, j := range rs.items {
			v, _ := a.keyed(ip, j)
			row[d] = int8(v)
		}
	}
}

// relInt8Rows is a growing matrix of k int8 columns, stored row-wise in
// fixed-size chunks (no doubling copies).
type relInt8Rows struct {
	k      int
	n      int
	chunks [][]int8
}

const relChunkRows = 8192

// next appends a row and returns it to be filled.
func (m *relInt8Rows) next() []int8 {
	i := m.n % relChunkRows
	if i == 0 {
		m.chunks = append(m.chunks, make([]int8, relChunkRows*m.k))
	}
	m.n++
	c := m.chunks[len(m.chunks)-1]
	return c[i*m.k : (i+1)*m.k]
}

// columns copies the rows, from row offset on, into cols[d][offset:].
func (m *relInt8Rows) columns(cols [][]float64, offset int) {
	for r := 0; r < m.n; r++ {
		c := m.chunks[r/relChunkRows]
		i := r % relChunkRows
		for d := 0; d < m.k; d++ {
			cols[d][offset+r] = float64(c[i*m.k+d])
		}
	}
}

// writeReliability writes the reliability table from every trust's cells:
// per reliability scale, wave at which its instrument is asked, and trust
// (with ALL pooling the trusts in byte order of their codes), in key
// order.
func writeReliability(ctx context.Context, env Env, tx *Tx, p *scorePlan, trusts []string, accs []*relAcc) error {
	const name = "reliability"
	tb := env.Study.Tables.Table(name)
	schema := tableSchema(env, name, nil)
	tf, err := tx.CreateTableFile(schema, name, "", "", "data")
	if err != nil {
		return err
	}
	rw := NewRowWriter(schema, tf)
	var c [11]int
	for i, col := range []string{"instrument", "scale", "wave", "trust", "n", "items", "alpha", "alpha_ci_low", "alpha_ci_high", "items_missing_pct", "negative_items"} {
		c[i] = colIndex(tb, col)
	}
	groups := append([]string{relAllTrusts}, trusts...)
	slices.Sort(groups)
	var buf []float64
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
					var cells []*relCell
					for t, acc := range accs {
						if g == relAllTrusts || g == trusts[t] {
							cells = append(cells, acc.cell(ri, w))
						}
					}
					var n int
					var interviews, blanks int64
					for _, cl := range cells {
						n += cl.cases.n
						interviews += cl.interviews
						blanks += cl.blanks
					}
					var a stats.Alpha
					ok := false
					if n >= 3 && k >= 2 {
						if cap(buf) < n*k {
							buf = make([]float64, n*k)
						}
						cols := make([][]float64, k)
						for d := range cols {
							cols[d] = buf[d*n : (d+1)*n]
						}
						off := 0
						for _, cl := range cells {
							cl.cases.columns(cols, off)
							off += cl.cases.n
						}
						var err error
						a, err = stats.CronbachAlpha(cols)
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
