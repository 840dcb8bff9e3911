package compare

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/schemas"
)

// Reasons a participant is left out, as indices into dropReasons.
const (
	dropWithdrawn = iota
	dropNoFollowUp
	dropNoBaseline
	dropNoTeam
	dropOtherArm
	dropNoBand
	dropNoCovariate
	dropNoBaselineInterview
)

// colFrame is the population of one model as columns (the column-wise
// frame): rows are indices into cmpColumns; stratum is each row's trust as
// an index into strata (strataOrder's order), cluster its team numbered in
// order of first appearance (as stats.Codes numbers them).
type colFrame struct {
	rows    []int32
	yFU     []float64
	yBase   []float64 // nil without a baseline
	arm     []float64 // 1 intervention, 0 control
	stratum []int32
	strata  []string
	cluster []int32
	teams   []string // team of each cluster number
	dropped [8]int   // by dropReasons index
	// aux are complete auxiliary columns that itt_mi's imputation model
	// includes as fixed effects and the analysis model does not (nil: none).
	aux [][]float64
}

// dropNote is "dropped 8 without follow-up, 3 withdrawn", or "".
func (f *colFrame) dropNote() string {
	return dropNoteOf(func(i int) int { return f.dropped[i] })
}

// buildColFrame selects the population of outcome o at a follow-up wave
// (an index into the study's waves): the complete cases as buildFrame
// does, unless pop keeps the withdrawn or the incomplete (their values are
// then NaN in the frame);
// keep, when not nil, returns the dropReasons index of a further reason to
// leave participant i out, or −1.
// The frame's columns come from pool (nil: new ones).
func buildColFrame(s *schemas.Study, d *cmpColumns, o, wave int, needBase bool, pop Population, keep func(i int) int, pool *framePool) *colFrame {
	f := &colFrame{}
	base, fu := &d.vals[o][0], &d.vals[o][wave]
	armI, armC := int32(-2), int32(-2)
	if i, ok := d.arms.index[s.InterventionArm()]; ok {
		armI = int32(i)
	}
	if len(s.Arms) > 1 {
		if i, ok := d.arms.index[s.Arms[1]]; ok {
			armC = int32(i)
		}
	}
	clusterOf := make([]int32, len(d.teams.levels))
	for i := range clusterOf {
		clusterOf[i] = -1
	}
	present := make([]bool, len(d.trusts.levels))
	// First the reason each participant is left out (−1: kept): the
	// outcome's and wave's reasons, the same for all its populations with
	// pop's Keep flags (kept in the pool), then keep's over the rows they
	// keep; then the columns, allocated at their size.
	key := frameKey{o, wave, needBase, pop.KeepWithdrawn, pop.KeepIncomplete}
	fb := &frameReasons{} // a nil pool's
	if pool != nil {
		fb = &pool.base
	}
	if fb.key != key || fb.reasons == nil {
		fb.key, fb.reasons, fb.dropped, fb.kept = key, slices.Grow(fb.reasons[:0], d.n)[:d.n], [8]int{}, 0
		for i := 0; i < d.n; i++ {
			reason := -1
			switch {
			case d.withdrawn[i] && !pop.KeepWithdrawn:
				reason = dropWithdrawn
			case math.IsNaN(fu.At(i)) && !pop.KeepIncomplete:
				reason = dropNoFollowUp
			case needBase && math.IsNaN(base.At(i)) && !pop.KeepIncomplete:
				reason = dropNoBaseline
			case d.team[i] < 0 || d.trust[i] < 0:
				reason = dropNoTeam
			case d.arm[i] != armI && d.arm[i] != armC:
				reason = dropOtherArm
			}
			fb.reasons[i] = int8(reason)
			if reason >= 0 {
				fb.dropped[reason]++
			} else {
				fb.kept++
			}
		}
	}
	reasons, kept := fb.reasons, fb.kept
	f.dropped = fb.dropped
	if keep != nil {
		reasons = pool.int8s(d.n)
		copy(reasons, fb.reasons)
		for i, r := range reasons {
			if r < 0 {
				if r := keep(i); r >= 0 {
					reasons[i] = int8(r)
					f.dropped[r]++
					kept--
				}
			}
		}
	}
	f.rows = pool.int32s(kept)[:0]
	f.yFU = pool.float64s(kept)[:0]
	if needBase {
		f.yBase = pool.float64s(kept)[:0]
	}
	f.arm = pool.float64s(kept)[:0]
	f.stratum = pool.int32s(kept)[:0]
	f.cluster = pool.int32s(kept)[:0]
	for i, reason := range reasons {
		if reason >= 0 {
			continue
		}
		f.rows = append(f.rows, int32(i))
		f.yFU = append(f.yFU, fu.At(i))
		if needBase {
			f.yBase = append(f.yBase, base.At(i))
		}
		a := 0.0
		if d.arm[i] == armI {
			a = 1
		}
		f.arm = append(f.arm, a)
		f.stratum = append(f.stratum, d.trust[i]) // recoded below
		present[d.trust[i]] = true
		t := d.team[i]
		if clusterOf[t] < 0 {
			clusterOf[t] = int32(len(f.teams))
			f.teams = append(f.teams, d.teams.levels[t])
		}
		f.cluster = append(f.cluster, clusterOf[t])
	}
	var names []string
	for t, ok := range present {
		if ok {
			names = append(names, d.trusts.levels[t])
		}
	}
	f.strata = StrataOrder(s, names)
	pos := make([]int32, len(d.trusts.levels))
	for i, name := range f.strata {
		pos[d.trusts.index[name]] = int32(i)
	}
	for i, t := range f.stratum {
		f.stratum[i] = pos[t]
	}
	if keep != nil {
		pool.put(reasons)
	}
	return f
}

// framePool keeps the columns of frames no longer needed for the next
// frames, so that the 3 frames of every outcome (N values each) are not
// each new memory for the garbage collector to clear and collect. A nil
// pool allocates.
type framePool struct {
	f64  [][]float64
	i32  [][]int32
	i8   [][]int8
	base frameReasons
}

// frameReasons are the reasons (−1: kept) each participant is left out of
// the frames of an outcome at a wave before any Exclude (buildColFrame),
// for key.
type frameReasons struct {
	key     frameKey
	reasons []int8
	dropped [8]int
	kept    int
}

type frameKey struct {
	o, wave                                 int
	needBase, keepWithdrawn, keepIncomplete bool
}

// take returns a slice of n from free (the first with room), or a new one.
func take[T any](free *[][]T, n int) []T {
	for i, b := range *free {
		if cap(b) >= n {
			last := len(*free) - 1
			(*free)[i] = (*free)[last]
			*free = (*free)[:last]
			return b[:n]
		}
	}
	if last := len(*free) - 1; last >= 0 { // too small: the new one replaces it
		(*free)[last], *free = nil, (*free)[:last]
	}
	return make([]T, n)
}

func (p *framePool) float64s(n int) []float64 {
	if p == nil {
		return make([]float64, n)
	}
	return take(&p.f64, n)
}

func (p *framePool) int32s(n int) []int32 {
	if p == nil {
		return make([]int32, n)
	}
	return take(&p.i32, n)
}

func (p *framePool) int8s(n int) []int8 {
	if p == nil {
		return make([]int8, n)
	}
	return take(&p.i8, n)
}

// put gives back slices (of float64, int32 or int8) no longer used.
func (p *framePool) put(slices ...any) {
	if p == nil {
		return
	}
	for _, s := range slices {
		switch b := s.(type) {
		case []float64:
			if cap(b) > 0 {
				p.f64 = append(p.f64, b)
			}
		case []int32:
			if cap(b) > 0 {
				p.i32 = append(p.i32, b)
			}
		case []int8:
			if cap(b) > 0 {
				p.i8 = append(p.i8, b)
			}
		}
	}
}

// release gives the frame's columns back to the pool: the frame must not
// be used after.
func (f *colFrame) release(p *framePool) {
	p.put(f.rows, f.yFU, f.yBase, f.arm, f.stratum, f.cluster)
	*f = colFrame{}
}

// clusterInts is the cluster numbers as the dense stats functions take
// them.
func (f *colFrame) clusterInts() []int {
	out := make([]int, len(f.cluster))
	for i, c := range f.cluster {
		out[i] = int(c)
	}
	return out
}

// colDesign is the design [intercept, term, (y_baseline), trust dummies] of
// linearDesign over a column frame, row by row, without the N × K matrix.
type colDesign struct {
	f        *colFrame
	term     []float64
	withBase bool
	names    []string
}

func newColDesign(f *colFrame, termName string, term []float64, withBase bool) colDesign {
	names := []string{"(intercept)", termName}
	if withBase {
		names = append(names, "y_baseline")
	}
	for _, t := range f.strata[min(1, len(f.strata)):] {
		names = append(names, "trust="+t)
	}
	return colDesign{f: f, term: term, withBase: withBase, names: names}
}

func (d colDesign) k() int { return len(d.names) }

// row fills buf (K values) with row i of the design.
func (d colDesign) row(i int, buf []float64) {
	clear(buf)
	buf[0] = 1
	buf[1] = d.term[i]
	j := 2
	if d.withBase {
		buf[2] = d.f.yBase[i]
		j = 3
	}
	if s := d.f.stratum[i]; s > 0 {
		buf[j+int(s)-1] = 1
	}
}

// dense is the design as a matrix (linearDesign's): only for the dense
// route, when the sufficient statistics cannot decide.
func (d colDesign) dense() *mat.Dense {
	n, k := len(d.f.rows), d.k()
	x := mat.NewDense(max(n, 1), k, nil)
	buf := make([]float64, k)
	for i := 0; i < n; i++ {
		d.row(i, buf)
		x.SetRow(i, buf)
	}
	return x
}

// betweenColumns counts the columns constant within every cluster, as
// betweenColumns does over the matrix, from a row of each of the team
// groups g (every column but y_baseline is constant within a group) and
// y_baseline row by row (finite: the sums were accumulated).
func (d colDesign) betweenColumns(g *teamGroups) int {
	k, nt := d.k(), len(d.f.teams)
	first := make([]float64, nt*k) // each cluster's first row
	seen := make([]bool, nt)
	constant := make([]bool, k)
	for j := range constant {
		constant[j] = true
	}
	buf := make([]float64, k)
	for gi, c := range g.cluster {
		d.row(int(g.first[gi]), buf)
		fc := first[c*k : c*k+k]
		if !seen[c] {
			seen[c] = true
			copy(fc, buf)
			continue
		}
		for j, v := range buf {
			if v != fc[j] {
				constant[j] = false
			}
		}
	}
	for i, c := range d.f.cluster {
		if d.withBase && d.f.yBase[i] != first[int(c)*k+2] {
			constant[2] = false
			break
		}
	}
	count := 0
	for _, c := range constant {
		if c {
			count++
		}
	}
	return count
}

// covIndex locates a propensity covariate: a coded one's index into
// cmpColumns.cat (cat true) or a 0/1 one's into cmpColumns.num, or −1.
func (d *cmpColumns) covIndex(name string) (i int, cat bool) {
	if i := slices.Index(d.catNames, name); i >= 0 {
		return i, true
	}
	return slices.Index(d.numNames, name), false
}

// newPropensitySpecCols checks the study's propensity covariates against
// its demographic fields and leaves out any that nobody has.
func newPropensitySpecCols(s *schemas.Study, d *cmpColumns) (*propensitySpec, error) {
	ps := &propensitySpec{}
	for _, c := range s.Analysis.PropensityCovariates {
		ci, cat := d.covIndex(c)
		if ci < 0 {
			var names []string
			for _, f := range s.DemographicFields() {
				names = append(names, f.Name)
			}
			return nil, fmt.Errorf("analysis.propensity_covariates: %q is not a participants covariate (%s)",
				c, strings.Join(names, ", "))
		}
		recorded := false
		if cat {
			recorded = slices.ContainsFunc(d.cat[ci], func(v int32) bool { return v >= 0 })
		} else {
			recorded = slices.ContainsFunc(d.num[ci], func(v float64) bool { return !math.IsNaN(v) })
		}
		if !recorded {
			ps.notes = append(ps.notes, c+" not recorded, left out of the propensity model")
			continue
		}
		ps.covs = append(ps.covs, c)
	}
	return ps, nil
}

// keepCols drops a participant with any used covariate missing.
func (ps *propensitySpec) keepCols(d *cmpColumns) func(i int) int {
	var cats [][]int32
	var nums [][]float64
	for _, c := range ps.covs {
		if ci, cat := d.covIndex(c); cat {
			cats = append(cats, d.cat[ci])
		} else {
			nums = append(nums, d.num[ci])
		}
	}
	return func(i int) int {
		for _, col := range cats {
			if col[i] < 0 {
				return dropNoCovariate
			}
		}
		for _, col := range nums {
			if math.IsNaN(col[i]) {
				return dropNoCovariate
			}
		}
		return -1
	}
}

// propCov is one propensity covariate of a frame: a numeric one (x, the
// values per frame row) or a categorical one (codes per frame row and the
// codes of its levels present, in covariateLevels' order).
type propCov struct {
	name    string
	x       []float64
	codes   []int32
	levels  []int32
	names   []string // the levels' names
	inModel bool     // numeric: varies
	binary  bool     // numeric: a 0/1 demographic field
}

// propensityCovs lists the frame's propensity covariates (and y_baseline)
// as propensityDesign does, with the notes on columns left out.
func propensityCovs(s *schemas.Study, d *cmpColumns, f *colFrame, ps *propensitySpec) (covs []propCov, notes []string) {
	n := len(f.rows)
	for _, c := range ps.covs {
		ci, cat := d.covIndex(c)
		if !cat {
			col := make([]float64, n)
			for i, r := range f.rows {
				col[i] = d.num[ci][r]
			}
			pc := propCov{name: c, x: col, inModel: varies(col), binary: true}
			if !pc.inModel {
				notes = append(notes, c)
			}
			covs = append(covs, pc)
			continue
		}
		codes := make([]int32, n)
		present := make([]bool, len(d.catCodes[ci].levels))
		for i, r := range f.rows {
			codes[i] = d.cat[ci][r]
			present[codes[i]] = true
		}
		pc := propCov{name: c, codes: codes}
		for _, lv := range s.Demographics[c] {
			if j, ok := d.catCodes[ci].index[lv]; ok && present[j] {
				pc.levels = append(pc.levels, int32(j))
				pc.names = append(pc.names, lv)
				present[j] = false
			}
		}
		var rest []string
		for j, ok := range present {
			if ok {
				rest = append(rest, d.catCodes[ci].levels[j])
			}
		}
		sort.Strings(rest)
		for _, lv := range rest {
			pc.levels = append(pc.levels, int32(d.catCodes[ci].index[lv]))
			pc.names = append(pc.names, lv)
		}
		if len(pc.levels) == 1 {
			notes = append(notes, c)
		}
		for _, lv := range s.Demographics[c] {
			if !slices.Contains(pc.names, lv) {
				notes = append(notes, c+"="+lv)
			}
		}
		covs = append(covs, pc)
	}
	if f.yBase != nil {
		pc := propCov{name: "y_baseline", x: f.yBase, inModel: varies(f.yBase)}
		if !pc.inModel {
			notes = append(notes, "y_baseline")
		}
		covs = append(covs, pc)
	}
	return covs, notes
}

// modelWidth is the number of propensity model columns after the
// intercept.
func modelWidth(covs []propCov) int {
	k := 0
	for _, c := range covs {
		switch {
		case c.codes != nil:
			k += max(len(c.levels)-1, 0)
		case c.inModel:
			k++
		}
	}
	return k
}

// modelRow fills buf with row i of the propensity model, intercept first;
// levelPos maps each categorical covariate's codes to its model column
// (−1: the reference level).
func modelRow(covs []propCov, levelPos [][]int, i int, buf []float64) {
	clear(buf)
	buf[0] = 1
	j := 1
	for ci, c := range covs {
		switch {
		case c.codes != nil:
			if p := levelPos[ci][c.codes[i]]; p >= 0 {
				buf[j+p] = 1
			}
			j += max(len(c.levels)-1, 0)
		case c.inModel:
			buf[j] = c.x[i]
			j++
		}
	}
}

// levelPositions maps each categorical covariate's codes to the position
// of its dummy among the covariate's model columns (−1: reference or
// absent).
func levelPositions(d *cmpColumns, covs []propCov) [][]int {
	out := make([][]int, len(covs))
	for ci, c := range covs {
		if c.codes == nil {
			continue
		}
		di, _ := d.covIndex(c.name)
		pos := make([]int, len(d.catCodes[di].levels))
		for j := range pos {
			pos[j] = -1
		}
		for li, code := range c.levels {
			if li > 0 {
				pos[code] = li - 1
			}
		}
		out[ci] = pos
	}
	return out
}
