package synth

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/connectingpeople/cpi/schemas"
)

// How the synthetic study answers each instrument's items from the latent
// state (synth_model.go). Instruments the generator does not know are
// answered from wellbeing, so a study with other instruments still gets
// plausible, internally consistent answers.

// synthInst is one instrument's answer generator.
type synthInst struct {
	inst     *schemas.Instrument
	names    []string
	first    int // position of the first item in the row's Items
	min, max []int32
	reverse  []bool
	allowed  int // missing items allowed by the main sum scale
	noBlanks bool
	// serviceUse marks an instrument scored as a cost: its counts come
	// from serviceUse (synthGen), from a stream of their own.
	serviceUse bool
	generate   func(r *rand.Rand, l *synthLatent, out []SynthValue)
	scratch    []float64
	order      []int
}

// synthLatentOf names the latent an instrument's items come from.
var synthLatentOf = map[string]struct {
	latent   func(*synthLatent) float64
	loading  float64
	location float64 // shift of the answers, SD units; positive is higher
}{
	"swemwbs": {func(l *synthLatent) float64 { return l.wellbeing }, 0.72, -0.25},
	"qpr":     {func(l *synthLatent) float64 { return l.recovery }, 0.72, 0.15},
	"ucla3":   {func(l *synthLatent) float64 { return l.lonely }, 0.72, 0},
}

// synthEQLocations shift the five EQ-5D dimensions (mobility, self-care,
// usual activities, pain, anxiety/depression): most people report no or
// slight problems, fewest with self-care, most with anxiety/depression.
var synthEQLocations = []float64{-1.1, -1.5, -0.5, -0.5, -0.1}

// synthPlan builds every instrument's generator, in template order.
func synthPlan(s *schemas.Study) []*synthInst {
	primaryInst, _, _ := strings.Cut(s.Analysis.PrimaryOutcome, ".")
	var out []*synthInst
	pos := 0
	for _, in := range s.Instruments {
		si := &synthInst{inst: in, first: pos, allowed: -1}
		for _, it := range in.Items {
			si.names = append(si.names, it.Name)
			si.min = append(si.min, int32(it.Min))
			si.max = append(si.max, int32(it.Max))
			si.reverse = append(si.reverse, it.Reverse)
		}
		pos += len(in.Items)
		si.scratch = make([]float64, len(in.Items))
		si.order = make([]int, len(in.Items))
		for i := range in.Scales {
			if sc := &in.Scales[i]; sc.Method == "sum" && si.allowed < 0 {
				si.allowed = sc.MissingAllowed
			}
		}
		if si.allowed < 0 {
			si.allowed = 0
		}
		si.serviceUse = slices.ContainsFunc(in.Scales, func(sc schemas.Scale) bool { return sc.Method == "cost" })
		if !si.serviceUse {
			si.generate = synthGenerator(si, in, in.Name == primaryInst)
		}
		out = append(out, si)
	}
	return out
}

// synthGenerator picks the answer model of an instrument.
func synthGenerator(si *synthInst, in *schemas.Instrument, primary bool) func(*rand.Rand, *synthLatent, []SynthValue) {
	for i := range in.Scales {
		if sc := &in.Scales[i]; sc.Method == "gas" {
			si.noBlanks = true // blank goals are the model's own
			return synthGAS(si, sc)
		}
	}
	binary := true
	for i := range si.min {
		binary = binary && si.min[i] == 0 && si.max[i] == 1
	}
	if primary && binary {
		return synthResources(si)
	}
	var problems []string // EQ-5D-style dimensions: higher is worse
	for i := range in.Scales {
		if sc := &in.Scales[i]; sc.Method == "valueset" {
			problems = append(problems, sc.Items...)
		}
	}
	m, known := synthLatentOf[in.Name]
	if !known {
		m.latent, m.loading = func(l *synthLatent) float64 { return l.wellbeing }, 0.65
		if primary {
			m.latent = func(l *synthLatent) float64 { return l.social }
		}
	}
	type itemGen struct {
		latent     func(*synthLatent) float64
		loading    float64
		thresholds []float64 // ordinal items
		wide       bool      // long ranges (a VAS): a continuous answer
	}
	gens := make([]itemGen, len(si.names))
	dim := 0
	for j, name := range si.names {
		ig := itemGen{latent: m.latent, loading: m.loading}
		loc := m.location + 0.25*math.Sin(1.7*float64(j)+float64(len(in.Name)))
		if slices.Contains(problems, name) {
			ig.latent = func(l *synthLatent) float64 { return -l.wellbeing }
			ig.loading = 0.6
			loc = synthEQLocations[dim%len(synthEQLocations)]
			dim++
		} else if len(problems) > 0 {
			ig.latent, ig.loading = func(l *synthLatent) float64 { return l.wellbeing }, 0.6
		}
		k := int(si.max[j]-si.min[j]) + 1
		if k > 11 {
			ig.wide = true
		} else {
			for c := 1; c < k; c++ {
				ig.thresholds = append(ig.thresholds, synthProbit(float64(c)/float64(k))-loc)
			}
		}
		gens[j] = ig
	}
	return func(r *rand.Rand, l *synthLatent, out []SynthValue) {
		for j := range out {
			ig := &gens[j]
			z := ig.loading*ig.latent(l) + math.Sqrt(1-ig.loading*ig.loading)*r.NormFloat64()
			lo, hi := si.min[j], si.max[j]
			var v int32
			if ig.wide {
				f := float64(lo) + float64(hi-lo)*synthNormCDF(0.25+0.75*z)
				if r.Float64() < 0.5 {
					f = 5 * math.Round(f/5) // many mark the VAS at a multiple of five
				}
				v = int32(math.Round(f))
			} else {
				v = lo
				for _, t := range ig.thresholds {
					if z > t {
						v++
					}
				}
			}
			out[j] = SynthValue{Value: min(max(v, lo), hi), Valid: true}
		}
	}
}

// synthResources answers the Resource Generator: the person's total is
// their expected total (the latent on the points scale) with a little
// noise, and which resources make it up is drawn without replacement by
// each resource's commonness. The total's expectation, and so the true
// intervention effect on it, is exactly the model's.
func synthResources(si *synthInst) func(*rand.Rand, *synthLatent, []SynthValue) {
	n := len(si.names)
	weights := make([]float64, n)
	for j := range weights {
		b := -1.4
		if n > 1 {
			b += 2.8 * float64((j*10)%n) / float64(n-1)
		}
		weights[j] = math.Exp(b)
	}
	return func(r *rand.Rand, l *synthLatent, out []SynthValue) {
		t := int(math.Round(l.rgTotal + 0.8*r.NormFloat64()))
		t = min(max(t, 0), n)
		w := si.scratch
		copy(w, weights)
		sum := 0.0
		for _, x := range w {
			sum += x
		}
		for j := range out {
			out[j] = SynthValue{Value: 0, Valid: true}
		}
		for range t {
			u := r.Float64() * sum
			pick := -1
			for j, x := range w {
				if x == 0 {
					continue
				}
				pick = j
				if u < x {
					break
				}
				u -= x
			}
			out[pick].Value = 1
			sum -= w[pick]
			w[pick] = 0
		}
	}
}

// synthGAS answers goal attainment: one to three goals, each attained
// around the expected level (0), better with more social capital gained
// since baseline and in the intervention arm; weights blank (1) or 1–3.
func synthGAS(si *synthInst, sc *schemas.Scale) func(*rand.Rand, *synthLatent, []SynthValue) {
	index := func(name string) int { return slices.Index(si.names, name) }
	type goal struct{ level, weight int }
	var goals []goal
	for _, g := range sc.Goals {
		goals = append(goals, goal{index(g.Level), index(g.Weight)})
	}
	cut := []float64{-1.5, -0.5, 0.5, 1.5}
	return func(r *rand.Rand, l *synthLatent, out []SynthValue) {
		for j := range out {
			out[j] = SynthValue{}
		}
		u := r.Float64()
		n := 3
		switch {
		case u < 0.25:
			n = 1
		case u < 0.65:
			n = 2
		}
		treated := 0.0
		if l.treated {
			treated = 1
		}
		for g, gl := range goals {
			z := 0.45*l.change + 0.35*treated + 0.85*r.NormFloat64()
			blankWeight := r.Float64() < 0.5
			weight := int32(1 + r.IntN(3))
			if g >= n {
				continue
			}
			if gl.level >= 0 {
				v := int32(-2)
				for _, c := range cut {
					if z > c {
						v++
					}
				}
				out[gl.level] = SynthValue{Value: min(max(v, si.min[gl.level]), si.max[gl.level]), Valid: true}
			}
			if gl.weight >= 0 && !blankWeight {
				out[gl.weight] = SynthValue{Value: min(max(weight, si.min[gl.weight]), si.max[gl.weight]), Valid: true}
			}
		}
	}
}

// blanks leaves a few answers blank: now and then a few within the
// instrument's prorating allowance, rarely more than it allows.
func (si *synthInst) blanks(r *rand.Rand, vals []SynthValue) {
	u := r.Float64()
	if si.noBlanks {
		return
	}
	k := 0
	switch a := si.allowed; {
	case a > 0 && u < synthPMissingWithin:
		k = 1 + r.IntN(a)
	case a > 0 && u < synthPMissingWithin+synthPMissingBeyond:
		k = a + 1 + r.IntN(2)
	case a == 0 && u < synthPMissingStrict:
		k = 1
	}
	k = min(k, len(vals))
	for j := range si.order {
		si.order[j] = j
	}
	for j := 0; j < k; j++ {
		x := j + r.IntN(len(vals)-j)
		si.order[j], si.order[x] = si.order[x], si.order[j]
		vals[si.order[j]] = SynthValue{}
	}
}

// synthProbit is the standard normal quantile function.
func synthProbit(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }

// synthNormCDF is the standard normal distribution function.
func synthNormCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// Service use: counts per 6 months of recall, skewed, with many zeros and
// a few inpatient stays (DESIGN §13). Each service is used with
// probability use, and then a count with the given mean (a Poisson mixed
// over the person's need, so counts are overdispersed).
const (
	synthCostTeamSD   = 0.25 // team effect on service use, log scale
	synthCostPersonSD = 0.6  // person effect on service use, log scale
	synthPInpatient   = 0.05 // an inpatient stay in a 6-month recall period
	synthPServiceGap  = 0.04 // one service left blank (the cost is then null)
)

var synthServices = map[string]struct{ use, mean, treated float64 }{
	"su_gp":             {0.75, 2.5, 0},
	"su_practice_nurse": {0.45, 1.5, 0},
	"su_cmht":           {0.85, 7, 1.5}, // the intervention adds contacts
	"su_psychiatrist":   {0.55, 1.5, 0},
	"su_ae":             {0.15, 1.2, 0},
	"su_social_worker":  {0.30, 2, 0},
	"su_day_centre":     {0.15, 5, 0},
	"su_peer_support":   {0.20, 4, 1},
}

// serviceUse draws a wave's service use into vals (the csri items in
// order) from the service-use stream.
func (g *synthGen) serviceUse(l *synthLatent, wave string, si *synthInst, vals []SynthValue) {
	r := g.suRng
	scale := 1.0
	if m, ok := g.s.Economics.RecallMonths[wave]; ok {
		scale = m / 6
	}
	need := math.Exp(l.need - 0.25*l.wellbeing)
	for j, name := range si.names {
		v := int32(0)
		u, z := r.Float64(), r.NormFloat64()
		if name == "su_inpatient_days" {
			if u < synthPInpatient*scale*need {
				v = int32(3 + math.Round(math.Exp(2.5+0.7*z)))
			}
		} else {
			sv, ok := synthServices[name]
			if !ok {
				sv.use, sv.mean = 0.3, 1
			}
			mean := sv.mean
			if l.treated {
				mean += sv.treated
			}
			mean *= scale * need * math.Exp(0.5*z-0.125)
			if u < sv.use {
				v = synthPoisson(r, mean)
			}
		}
		vals[j] = SynthValue{Value: min(max(v, si.min[j]), si.max[j]), Valid: true}
	}
	if u, j := r.Float64(), r.IntN(len(vals)); u < synthPServiceGap {
		vals[j] = SynthValue{}
	}
}

// synthPoisson draws a Poisson count (Knuth's method below a mean of 30,
// a rounded normal above).
func synthPoisson(r *rand.Rand, mean float64) int32 {
	if mean <= 0 {
		return 0
	}
	if mean >= 30 {
		return int32(max(0, math.Round(mean+math.Sqrt(mean)*r.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), int32(0), 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
