package compare

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/connectingpeople/cpi/schemas"
	"github.com/connectingpeople/cpi/stats"
)

// This file turns the warehouse tables into the model frames and design
// matrices of the analysis plan (DESIGN §9): who is in a model and why
// not, the columns of each design and their coding.

// CmpParticipant is one row of participants as the comparison needs it.
type CmpParticipant struct {
	Id, Trust, Team, Arm string
	// Levels holds the coded demographic fields ("" or absent when null),
	// Nums the 0/1 ones (absent when null), by name
	// (s.DemographicFields()).
	Levels              map[string]string
	Nums                map[string]float64
	Withdrawn           bool
	InterviewedBaseline bool
}

// SetCovariate records a demographic field: a level of a coded one, or a
// number of a 0/1 one (NaN: null).
func (p *CmpParticipant) SetCovariate(name, level string, num float64) {
	if level != "" {
		if p.Levels == nil {
			p.Levels = map[string]string{}
		}
		p.Levels[name] = level
	}
	if !math.IsNaN(num) {
		if p.Nums == nil {
			p.Nums = map[string]float64{}
		}
		p.Nums[name] = num
	}
}

// Covariate returns a propensity covariate's value: coded ones as a level
// ("" when missing), 0/1 ones as a number (NaN when missing).
func (p *CmpParticipant) Covariate(name string) (level string, num float64) {
	if v, ok := p.Nums[name]; ok {
		return "", v
	}
	return p.Levels[name], math.NaN()
}

// CategoricalCovariates are the participants columns that go into a
// propensity model as dummies (the coded demographic fields);
// NumericCovariates go in as they are (the 0/1 ones).
func CategoricalCovariates(s *schemas.Study) []string {
	var out []string
	for _, f := range s.DemographicFields() {
		if !f.Binary {
			out = append(out, f.Name)
		}
	}
	return out
}

// NumericCovariates: see CategoricalCovariates.
func NumericCovariates(s *schemas.Study) []string {
	var out []string
	for _, f := range s.DemographicFields() {
		if f.Binary {
			out = append(out, f.Name)
		}
	}
	return out
}

// CompareData is what the comparison reads from the warehouse.
type CompareData struct {
	Parts []CmpParticipant // sorted by study_id
	// Base and fu hold each outcome's baseline and follow-up value per
	// participant (index into parts), NaN when missing.
	Base, Fu map[string][]float64
	// bands is each team's fidelity band in the last rating period.
	bands      map[string]string
	lastPeriod string
}

// OutcomeName splits "instrument.scale".
func OutcomeName(outcome string) (instrument, scale string, ok bool) {
	instrument, scale, ok = strings.Cut(outcome, ".")
	return instrument, scale, ok && instrument != "" && scale != ""
}

// OutcomeHasBaseline reports whether the instrument of the outcome's
// baseline scale (Study.OutcomeBaseline: its own, or the one
// analysis.baselines names) is asked at the baseline wave (GAS is not: it
// has no baseline value).
func OutcomeHasBaseline(s *schemas.Study, outcome string) bool {
	name, _, _ := OutcomeName(s.OutcomeBaseline(outcome))
	in, ok := s.Instrument(name)
	return ok && in.AskedAt(s.BaselineWave())
}

// dropReasons are the reasons a participant is left out of a model, in the
// order a participant is tested for them (each is counted once, under the
// first that applies) and the order the note lists them.
var dropReasons = []string{
	"withdrawn",
	"without follow-up",
	"without baseline",
	"without a team or trust",
	"in another arm",
	"in a team without a fidelity band",
	"with a missing propensity covariate",
	"not interviewed at the first wave",
}

// frame is the population of one model: its rows, response pieces,
// clusters (teams) and strata (trusts), and who was left out and why.
type frame struct {
	Rows    []int     // indices into compareData.parts
	YFU     []float64 // outcome at follow-up
	YBase   []float64 // outcome at baseline (nil without a baseline)
	Arm     []float64 // 1 intervention, 0 control
	Trusts  []string  // per row
	Cluster []int     // team code per row (stats.Codes)
	teams   []string  // team of each cluster code
	dropped map[string]int
}

// dropNote is "dropped 8 without follow-up, 3 withdrawn", or "".
func (f *frame) dropNote() string {
	return dropNoteOf(func(i int) int { return f.dropped[dropReasons[i]] })
}

// dropNoteOf writes the drop note from the count of each of dropReasons.
func dropNoteOf(count func(i int) int) string {
	var parts []string
	for i, r := range dropReasons {
		if n := count(i); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, r))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "dropped " + strings.Join(parts, ", ")
}

// BuildFrame selects the complete cases of an outcome (DESIGN §9): not
// withdrawn, with the outcome at follow-up and (when the outcome has one)
// at baseline, in a team and trust, in the intervention or control arm.
// keep, when not nil, may leave out more rows: it returns the reason.
func BuildFrame(s *schemas.Study, d *CompareData, outcome string, needBase bool, keep func(p *CmpParticipant) string) *frame {
	f := &frame{dropped: map[string]int{}}
	base, fu := d.Base[outcome], d.Fu[outcome]
	var teams []string
	control := ""
	if len(s.Arms) > 1 {
		control = s.Arms[1]
	}
	for i := range d.Parts {
		p := &d.Parts[i]
		reason := ""
		switch {
		case p.Withdrawn:
			reason = "withdrawn"
		case math.IsNaN(fu[i]):
			reason = "without follow-up"
		case needBase && math.IsNaN(base[i]):
			reason = "without baseline"
		case p.Team == "" || p.Trust == "":
			reason = "without a team or trust"
		case p.Arm != s.InterventionArm() && p.Arm != control:
			reason = "in another arm"
		case keep != nil:
			reason = keep(p)
		}
		if reason != "" {
			f.dropped[reason]++
			continue
		}
		f.Rows = append(f.Rows, i)
		f.YFU = append(f.YFU, fu[i])
		if needBase {
			f.YBase = append(f.YBase, base[i])
		}
		a := 0.0
		if p.Arm == s.InterventionArm() {
			a = 1
		}
		f.Arm = append(f.Arm, a)
		f.Trusts = append(f.Trusts, p.Trust)
		teams = append(teams, p.Team)
	}
	f.Cluster, f.teams = stats.Codes(teams)
	return f
}

// StrataOrder lists the trusts present in the frame: the study's trusts in
// study order, then any others in byte order.
func StrataOrder(s *schemas.Study, trusts []string) []string {
	present := map[string]bool{}
	for _, t := range trusts {
		present[t] = true
	}
	var out []string
	for _, t := range s.TrustCodes() {
		if present[t] {
			out = append(out, t)
			delete(present, t)
		}
	}
	rest := make([]string, 0, len(present))
	for t := range present {
		rest = append(rest, t)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// design is a design matrix with its column names.
type design struct {
	X     *mat.Dense
	names []string
}

// LinearDesign builds [intercept, term, (y_baseline), trust dummies]: the
// term is column 1; trusts are coded by treatment contrasts with the first
// trust present (in study order) as the reference, as R's default
// contr.treatment with the study's trust order as factor levels.
func LinearDesign(s *schemas.Study, f *frame, termName string, term []float64, withBase bool) design {
	strata := StrataOrder(s, f.Trusts)
	names := []string{"(intercept)", termName}
	if withBase {
		names = append(names, "y_baseline")
	}
	for _, t := range strata[min(1, len(strata)):] {
		names = append(names, "trust="+t)
	}
	n, k := len(f.Rows), len(names)
	x := mat.NewDense(max(n, 1), k, nil)
	for i := 0; i < n; i++ {
		x.Set(i, 0, 1)
		x.Set(i, 1, term[i])
		j := 2
		if withBase {
			x.Set(i, j, f.YBase[i])
			j++
		}
		for _, t := range strata[min(1, len(strata)):] {
			if f.Trusts[i] == t {
				x.Set(i, j, 1)
			}
			j++
		}
	}
	return design{X: x, names: names}
}

// collinear reports whether column j of x lies (numerically) in the span of
// the other columns: the term is then not estimable apart from them. It
// orthogonalises the other columns by modified Gram–Schmidt, skipping any
// that are themselves dependent, and compares what is left of column j with
// its length.
func collinear(x *mat.Dense, j int) bool {
	n, k := x.Dims()
	var basis [][]float64
	for c := 0; c < k; c++ {
		if c == j {
			continue
		}
		v := mat.Col(nil, c, x)
		norm0 := floatsNorm(v)
		for _, q := range basis {
			floatsAddScaled(v, -floatsDot(q, v), q)
		}
		if nv := floatsNorm(v); nv > 1e-9*math.Max(norm0, 1) {
			for i := range v {
				v[i] /= nv
			}
			basis = append(basis, v)
		}
	}
	v := mat.Col(nil, j, x)
	norm0 := floatsNorm(v)
	if norm0 == 0 || n == 0 {
		return true
	}
	for _, q := range basis {
		floatsAddScaled(v, -floatsDot(q, v), q)
	}
	return floatsNorm(v) <= 1e-9*norm0
}

func floatsDot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func floatsNorm(a []float64) float64 { return math.Sqrt(floatsDot(a, a)) }

func floatsAddScaled(dst []float64, alpha float64, s []float64) {
	for i := range dst {
		dst[i] += alpha * s[i]
	}
}

// betweenColumns counts the columns of x that are constant within every
// cluster (the intercept, arm, trust dummies): the between-cluster
// parameters of the containment rule for a mixed model's degrees of freedom.
func betweenColumns(x *mat.Dense, cluster []int) int {
	n, k := x.Dims()
	count := 0
	for c := 0; c < k; c++ {
		first := map[int]float64{}
		constant := true
		for i := 0; i < n && constant; i++ {
			v := x.At(i, c)
			if f, ok := first[cluster[i]]; ok {
				constant = f == v
			} else {
				first[cluster[i]] = v
			}
		}
		if constant {
			count++
		}
	}
	return count
}

// propensityColumn is one column of a propensity model, or a covariate
// shown in the balance table.
type propensityColumn struct {
	Name string    // "age_band=25-34", "living_alone", "y_baseline"
	x    []float64 // per frame row
}

// propensitySpec lists the propensity covariates of the study: the frame's
// keep function that drops rows with a missing covariate, and the notes on
// covariates left out.
type propensitySpec struct {
	covs  []string // covariates used (recorded for at least one participant)
	notes []string
}

// NewPropensitySpec checks the study's propensity covariates and leaves out
// any that is not recorded for anyone in the frame's population.
func NewPropensitySpec(s *schemas.Study, d *CompareData) (*propensitySpec, error) {
	ps := &propensitySpec{}
	cats, nums := CategoricalCovariates(s), NumericCovariates(s)
	for _, c := range s.Analysis.PropensityCovariates {
		if !slices.Contains(cats, c) && !slices.Contains(nums, c) {
			return nil, fmt.Errorf("analysis.propensity_covariates: %q is not a participants covariate (%s)",
				c, strings.Join(append(cats, nums...), ", "))
		}
		recorded := false
		for i := range d.Parts {
			lv, num := d.Parts[i].Covariate(c)
			if lv != "" || !math.IsNaN(num) {
				recorded = true
				break
			}
		}
		if !recorded {
			ps.notes = append(ps.notes, c+" not recorded, left out of the propensity model")
			continue
		}
		ps.covs = append(ps.covs, c)
	}
	return ps, nil
}

// Keep drops a participant with any used covariate missing.
func (ps *propensitySpec) Keep(p *CmpParticipant) string {
	for _, c := range ps.covs {
		lv, num := p.Covariate(c)
		if lv == "" && math.IsNaN(num) {
			return "with a missing propensity covariate"
		}
	}
	return ""
}

// covariateLevels lists a categorical covariate's levels present in the frame, in
// the order of the study's code list, then any others in byte order.
func covariateLevels(s *schemas.Study, d *CompareData, f *frame, cov string) []string {
	present := map[string]bool{}
	for _, r := range f.Rows {
		lv, _ := d.Parts[r].Covariate(cov)
		present[lv] = true
	}
	var out []string
	for _, lv := range s.Demographics[cov] {
		if present[lv] {
			out = append(out, lv)
			delete(present, lv)
		}
	}
	rest := make([]string, 0, len(present))
	for lv := range present {
		rest = append(rest, lv)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// PropensityDesign builds the propensity model's covariates for a frame:
// balance lists every covariate as shown in the balance table (a dummy for
// every level present, living_alone, y_baseline); model lists the model's
// columns after the intercept (treatment contrasts: the first level of the
// study's code list present in the frame is the reference, as R's
// contr.treatment with the code list as factor levels; a column without
// variation is left out and named in notes).
func PropensityDesign(s *schemas.Study, d *CompareData, f *frame, ps *propensitySpec) (balance, model []propensityColumn, notes []string) {
	n := len(f.Rows)
	nums := NumericCovariates(s)
	for _, c := range ps.covs {
		if slices.Contains(nums, c) {
			col := make([]float64, n)
			for i, r := range f.Rows {
				_, col[i] = d.Parts[r].Covariate(c)
			}
			pc := propensityColumn{Name: c, x: col}
			balance = append(balance, pc)
			if varies(col) {
				model = append(model, pc)
			} else {
				notes = append(notes, c)
			}
			continue
		}
		levels := covariateLevels(s, d, f, c)
		for li, lv := range levels {
			col := make([]float64, n)
			for i, r := range f.Rows {
				if got, _ := d.Parts[r].Covariate(c); got == lv {
					col[i] = 1
				}
			}
			pc := propensityColumn{Name: c + "=" + lv, x: col}
			balance = append(balance, pc)
			if li > 0 {
				model = append(model, pc)
			}
		}
		if len(levels) == 1 {
			notes = append(notes, c)
		}
		for _, lv := range s.Demographics[c] {
			if !slices.Contains(levels, lv) {
				notes = append(notes, c+"="+lv)
			}
		}
	}
	if f.YBase != nil {
		pc := propensityColumn{Name: "y_baseline", x: f.YBase}
		balance = append(balance, pc)
		if varies(f.YBase) {
			model = append(model, pc)
		} else {
			notes = append(notes, "y_baseline")
		}
	}
	return balance, model, notes
}

func varies(x []float64) bool {
	for _, v := range x[min(1, len(x)):] {
		if v != x[0] {
			return true
		}
	}
	return false
}

// WithIntercept is [1, cols...] as a matrix.
func WithIntercept(n int, cols []propensityColumn) *mat.Dense {
	x := mat.NewDense(max(n, 1), len(cols)+1, nil)
	for i := 0; i < n; i++ {
		x.Set(i, 0, 1)
		for j, c := range cols {
			x.Set(i, j+1, c.x[i])
		}
	}
	return x
}

// formatICC is the note of a mixed model's intraclass correlation.
func formatICC(icc float64) string {
	return "icc=" + strconv.FormatFloat(icc, 'f', 3, 64)
}
