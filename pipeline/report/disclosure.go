package report

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/connectingpeople/cpi/schemas"
)

// Disclosure is the disclosure control of one report (DESIGN §10): every
// count of people the report publishes is a cell, every published relation
// between them (a total and its parts, wherever on the page they are
// printed) is a sum, and Protect decides once, over all of them, which
// cells are shown and which are suppressed.
//
//   - Primary suppression: a cell from 1 to MinCount-1 is hidden. Zero is
//     shown (there is no one to disclose).
//   - Secondary suppression: more cells are hidden, one at a time, until no
//     hidden cell can be worked out from the shown cells and the sums. A
//     hidden cell x_j is determined by the linear relations when the unit
//     vector e_j lies in the row space of the sums' matrix restricted to
//     the hidden cells (the shown cells substituted); that is decided by
//     exact integer Gauss–Jordan elimination. The cell hidden next is one
//     of the shown cells that the derivation of x_j uses (the certificate
//     y with yᵀA_hidden = e_j names them), preferring a low avoid, then the
//     smallest count. A last pass shows again, the most needed first, every
//     cell hidden this way whose showing leaves nothing determined.
//
// What this does not cover: a reader who also uses the symbols' bounds.
// With "<5", a hidden small count is known to be 1 to 4, so four trusts
// shown as <5 whose total is shown as <5 are 1 each, and two <5 adding up
// to a shown 8 are 4 each. Such a count is not determined by adding and
// subtracting, and it is not always avoidable (the first example needs no
// secondary suppression at all to be pinned); one symbol for every
// suppressed count (the study's disclosure.symbol, "*" in the NHS England
// convention) leaves a reader only "at least 1", which pins far less.
//
// A cell may also be Implied: a count the report does not print but that a
// sum ties in (raters not scored = raters − scored). It is never shown; if
// it is small it is protected like a hidden cell.
type Disclosure struct {
	rule  schemas.Disclosure
	cells []disclosureCell
	names map[string]int
	sums  [][]int // each: the total's cell, then its parts' cells

	hidden    []bool
	protected bool
}

type disclosureCell struct {
	name    string
	value   int64
	implied bool
	avoid   int
}

// NewDisclosure starts the disclosure control of one report under rule.
func NewDisclosure(rule schemas.Disclosure) *Disclosure {
	return &Disclosure{rule: rule, names: map[string]int{}}
}

// Count adds a published count and returns its cell. avoid ranks how much
// the report needs the cell shown (a denominator of percentages, a grand
// total): secondary suppression takes cells with a lower avoid first. A
// name given twice is the same cell (the count printed in two places); its
// value must be the same.
func (d *Disclosure) Count(name string, value int64, avoid int) int {
	return d.add(name, value, false, avoid)
}

// Lookup finds a cell by name: its index and value.
func (d *Disclosure) Lookup(name string) (cell int, value int64, ok bool) {
	i, ok := d.names[name]
	if !ok {
		return 0, 0, false
	}
	return i, d.cells[i].value, true
}

// Implied adds a count that the report does not print but that a sum ties
// to printed ones.
func (d *Disclosure) Implied(name string, value int64) int {
	return d.add(name, value, true, 0)
}

func (d *Disclosure) add(name string, value int64, implied bool, avoid int) int {
	if i, ok := d.names[name]; ok {
		c := &d.cells[i]
		if c.value != value {
			c.value = math.MinInt64 // reported by Protect
		}
		c.implied = c.implied && implied
		c.avoid = max(c.avoid, avoid)
		return i
	}
	d.names[name] = len(d.cells)
	d.cells = append(d.cells, disclosureCell{name: name, value: value, implied: implied, avoid: avoid})
	return len(d.cells) - 1
}

// Sum records that the cell total is the sum of the cells parts.
func (d *Disclosure) Sum(total int, parts ...int) {
	d.sums = append(d.sums, append([]int{total}, parts...))
}

// Small reports whether a count is primary-suppressed.
func (d *Disclosure) Small(v int64) bool { return v > 0 && v < int64(d.rule.MinCount) }

// Rule is the study's disclosure rule the counts are protected under.
func (d *Disclosure) Rule() schemas.Disclosure { return d.rule }

// Protect applies primary and secondary suppression over every cell and
// sum. It fails when a sum does not hold for the counts given (the tables
// disagree: nothing is published rather than something unchecked), or
// when the integer elimination would overflow.
func (d *Disclosure) Protect() error {
	if err := d.rule.Check(); err != nil {
		return err
	}
	for _, c := range d.cells {
		if c.value == math.MinInt64 {
			return fmt.Errorf("disclosure control: %s is printed with two different values", c.name)
		}
		if c.value < 0 {
			return fmt.Errorf("disclosure control: %s is negative", c.name)
		}
	}
	for _, s := range d.sums {
		for _, i := range s {
			if i < 0 || i >= len(d.cells) {
				return fmt.Errorf("disclosure control: a sum names no cell")
			}
		}
		var parts int64
		for _, i := range s[1:] {
			parts += d.cells[i].value
		}
		if parts != d.cells[s[0]].value {
			return fmt.Errorf("disclosure control: %s is %d but its parts add up to %d", d.cells[s[0]].name, d.cells[s[0]].value, parts)
		}
	}
	d.hidden = make([]bool, len(d.cells))
	for i, c := range d.cells {
		d.hidden[i] = !c.implied && d.Small(c.value)
	}
	settled := false
	for range len(d.cells) + 1 {
		pick, err := d.nextSuppression()
		if err != nil {
			return err
		}
		if pick < 0 {
			settled = true
			break
		}
		d.hidden[pick] = true
	}
	if !settled {
		return errors.New("disclosure control: secondary suppression did not settle")
	}
	// The greedy pass follows one derivation at a time and may hide a cell
	// that a later suppression made unnecessary: show again every secondary
	// cell, the most needed first, whose showing leaves nothing determined.
	var secondary []int
	for i, c := range d.cells {
		if d.hidden[i] && !d.Small(c.value) {
			secondary = append(secondary, i)
		}
	}
	sort.SliceStable(secondary, func(a, b int) bool {
		ca, cb := d.cells[secondary[a]], d.cells[secondary[b]]
		return ca.avoid > cb.avoid || ca.avoid == cb.avoid && ca.value > cb.value
	})
	for _, i := range secondary {
		d.hidden[i] = false
		pick, err := d.nextSuppression()
		if err != nil {
			return err
		}
		if pick >= 0 {
			d.hidden[i] = true
		}
	}
	d.protected = true
	return nil
}

// mustProtect reports whether cell i may not be determined: every hidden
// cell, and an implied cell that is small.
func (d *Disclosure) mustProtect(i int) bool {
	if d.cells[i].implied {
		return d.Small(d.cells[i].value)
	}
	return d.hidden[i]
}

// discSystem is the sums restricted to the unknown cells (hidden or
// implied), brought to reduced row echelon form with [A_unknown | I]: the
// identity part of a row says which sums make it.
type discSystem struct {
	unknown []int // cells, by column
	rows    [][]int64
	pivots  []int
}

func (d *Disclosure) system() (*discSystem, error) {
	sys := &discSystem{}
	col := map[int]int{}
	for i, c := range d.cells {
		if c.implied || d.hidden[i] {
			col[i] = len(sys.unknown)
			sys.unknown = append(sys.unknown, i)
		}
	}
	n, m := len(sys.unknown), len(d.sums)
	sys.rows = make([][]int64, m)
	for s, sum := range d.sums {
		r := make([]int64, n+m)
		for k, i := range sum {
			c, ok := col[i]
			if !ok {
				continue
			}
			if k == 0 {
				r[c]++
			} else {
				r[c]--
			}
		}
		r[n+s] = 1
		sys.rows[s] = r
	}
	var err error
	sys.pivots, err = rrefInt(sys.rows, n)
	return sys, err
}

// nextSuppression returns the cell to hide next, or -1 when no cell that
// must be protected is determined by the shown cells and the sums.
func (d *Disclosure) nextSuppression() (int, error) {
	sys, err := d.system()
	if err != nil {
		return 0, err
	}
	n := len(sys.unknown)
	// Determined cells: a pivot row whose unknown part is that pivot alone.
	for r, p := range sys.pivots {
		row := sys.rows[r]
		if !d.mustProtect(sys.unknown[p]) || !unitRow(row[:n], p) {
			continue
		}
		// x_p = yᵀ(the sums' shown parts): the shown cells with a non-zero
		// coefficient in y's combination of the sums are the candidates.
		coef := make([]int64, len(d.cells))
		for s, sum := range d.sums {
			y := row[n+s]
			if y == 0 {
				continue
			}
			for k, i := range sum {
				if k == 0 {
					coef[i] += y
				} else {
					coef[i] -= y
				}
			}
		}
		var cands []int
		for i, c := range coef {
			if c != 0 && d.candidate(i) {
				cands = append(cands, i)
			}
		}
		if len(cands) == 0 {
			return 0, fmt.Errorf("disclosure control: %s cannot be protected", d.cells[sys.unknown[p]].name)
		}
		// The cheapest cell of this derivation that alone leaves the cell
		// undetermined, if one does (another derivation may go round
		// others); else the cheapest of the derivation.
		j := sys.unknown[p]
		for _, k := range d.byCost(cands) {
			d.hidden[k] = true
			det, err := d.Determined(j)
			d.hidden[k] = false
			if err != nil {
				return 0, err
			}
			if !det {
				return k, nil
			}
		}
		return d.cheapest(cands), nil
	}
	return -1, nil
}

// byCost sorts cells cheapest first (see cheapest).
func (d *Disclosure) byCost(cells []int) []int {
	out := slices.Clone(cells)
	sort.SliceStable(out, func(a, b int) bool {
		ca, cb := d.cells[out[a]], d.cells[out[b]]
		return ca.avoid < cb.avoid || ca.avoid == cb.avoid && ca.value < cb.value
	})
	return out
}

// Determined reports whether unknown cell j follows from the shown cells
// and the sums.
func (d *Disclosure) Determined(j int) (bool, error) {
	sys, err := d.system()
	if err != nil {
		return false, err
	}
	n := len(sys.unknown)
	for r, p := range sys.pivots {
		if sys.unknown[p] == j {
			return unitRow(sys.rows[r][:n], p), nil
		}
	}
	return false, nil
}

// candidate reports whether cell i may be hidden to protect another: a
// shown, non-zero count.
func (d *Disclosure) candidate(i int) bool {
	c := d.cells[i]
	return !c.implied && !d.hidden[i] && c.value > 0
}

// cheapest is the candidate with the lowest avoid, then the smallest
// count, then the first added; -1 for none.
func (d *Disclosure) cheapest(cands []int) int {
	pick := -1
	for _, i := range cands {
		if pick < 0 {
			pick = i
			continue
		}
		a, b := d.cells[i], d.cells[pick]
		if a.avoid < b.avoid || a.avoid == b.avoid && (a.value < b.value || a.value == b.value && i < pick) {
			pick = i
		}
	}
	return pick
}

// Hidden reports whether the cell is suppressed; before Protect, every
// cell is.
func (d *Disclosure) Hidden(i int) bool { return !d.protected || d.hidden[i] }

// Show is the cell as the report prints it: the count, or the small or the
// secondary symbol. Before Protect every count is hidden.
func (d *Disclosure) Show(i int) string {
	c := d.cells[i]
	switch {
	case !d.protected:
		return d.rule.SecondarySymbol()
	case !d.hidden[i]:
		return strconv.FormatInt(c.value, 10)
	case d.Small(c.value):
		return d.rule.SmallSymbol()
	}
	return d.rule.SecondarySymbol()
}

// ShowModelN is how a model's number analysed is printed: a model result is
// not a frequency table (DESIGN §10; the ACRO and Five Safes output-checking
// conventions), so it is shown when it is at least the threshold, and as
// the small symbol otherwise. It is in no sum: the people left out of a
// model are not printed.
func ShowModelN(n int64, rule schemas.Disclosure) string {
	if n > 0 && n < int64(rule.MinCount) {
		return rule.SmallSymbol()
	}
	return strconv.FormatInt(n, 10)
}

func unitRow(r []int64, p int) bool {
	for k, v := range r {
		if (k == p) != (v != 0) {
			return false
		}
	}
	return true
}

var errDisclosureOverflow = errors.New("disclosure control: integer overflow in the elimination")

// checkedMul returns a*b, or an error when it overflows int64.
func checkedMul(a, b int64) (int64, error) {
	if a == 0 || b == 0 {
		return 0, nil
	}
	c := a * b
	if c/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return 0, errDisclosureOverflow
	}
	return c, nil
}

func checkedSub(a, b int64) (int64, error) {
	c := a - b
	if (c > a) != (b < 0) {
		return 0, errDisclosureOverflow
	}
	return c, nil
}

func gcd64(a, b int64) int64 {
	if a < 0 {
		a = -a
	}
	if b < 0 {
		b = -b
	}
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// rrefInt brings rows to reduced row echelon form over their first n
// columns by fraction-free Gauss–Jordan elimination on integers (each row
// divided by the gcd of its entries after every step, so entries stay
// small): row r of the result has its pivot in column pivots[r], and every
// other row is zero in that column. Pivots need not be 1. Rows after
// len(pivots) are zero in the first n columns.
func rrefInt(rows [][]int64, n int) ([]int, error) {
	var pivots []int
	rank := 0
	for c := 0; c < n && rank < len(rows); c++ {
		best := -1
		for r := rank; r < len(rows); r++ {
			if v := rows[r][c]; v != 0 && (best < 0 || abs64(v) < abs64(rows[best][c])) {
				best = r
			}
		}
		if best < 0 {
			continue
		}
		rows[rank], rows[best] = rows[best], rows[rank]
		piv := rows[rank]
		for r := range rows {
			if r == rank || rows[r][c] == 0 {
				continue
			}
			g := gcd64(piv[c], rows[r][c])
			a, b := piv[c]/g, rows[r][c]/g
			row := rows[r]
			var rg int64
			for k := range row {
				if row[k] == 0 && piv[k] == 0 {
					continue
				}
				x, err := checkedMul(a, row[k])
				if err != nil {
					return nil, err
				}
				y, err := checkedMul(b, piv[k])
				if err != nil {
					return nil, err
				}
				if row[k], err = checkedSub(x, y); err != nil {
					return nil, err
				}
				rg = gcd64(rg, row[k])
			}
			if rg > 1 {
				for k := range row {
					row[k] /= rg
				}
			}
		}
		pivots = append(pivots, c)
		rank++
	}
	return pivots, nil
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
