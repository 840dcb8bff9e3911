package synth

import (
	"context"
	"hash/fnv"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/connectingpeople/cpi/schemas"
)

// The participant model of the synthetic study.
//
// Each person has a latent social-capital score: a trust effect, their
// team's random intercept, a little from their demographics, and a
// person-level part that carries over from wave to wave (correlation
// synthRhoSocial). The Resource Generator-UK total is that score on the
// points scale, plus a general time trend and, at every wave after the
// baseline, SynthEffect for the intervention arm. Wellbeing carries part of
// social capital and its own person-level part; recovery, loneliness and
// health-related quality of life mix the two. Items are thresholded from
// their latent with item-specific locations, so scales are internally
// consistent (alpha about 0.75–0.9) and correlated with each other.
//
// Every draw comes from a PCG source seeded from the options' seed, the
// trust and the participant's index within the trust: a participant's
// values depend on nothing else, however many others are generated.

const (
	synthRhoSocial    = 0.6  // person-level social capital, wave to wave
	synthRhoWellbeing = 0.55 // person-level wellbeing, wave to wave
	synthRGMean       = 11.0 // RG-UK total at baseline, average person
	synthRGSD         = 4.6  // RG-UK points per SD of the latent
	synthRGTrend      = 0.3  // RG-UK points gained by everyone per wave
	synthTeamSD       = 0.3  // team random intercept, latent SD units
	synthTrustSD      = 0.15 // trust effect, latent SD units

	synthPNotInterviewed = 0.05 // recruited, never interviewed
	synthPLost           = 0.15 // no row at a later wave (and after)
	synthPWithdrawn      = 0.03 // withdrawn=1 at a later wave
	synthPWithdrawnAns   = 0.34 // of the withdrawn: interviewed, then withdrew
	synthPDemogRepeat    = 0.08 // follow-up rows that repeat demographics
	synthPDemogBlank     = 0.01 // a demographic left blank at baseline

	synthPMissingWithin = 0.05  // an instrument with a few blanks, prorated
	synthPMissingBeyond = 0.008 // one with more blanks than allowed
	synthPMissingStrict = 0.012 // a blank in an instrument allowing none

	synthWaveDays = 182 // days between waves
	synthWaveJit  = 21  // ± days around it
)

// synthBaselineFirst and synthBaselineLast bound the baseline interviews;
// synthStudyStart is month 1 of the study (fidelity periods count from it).
var (
	SynthBaselineFirst = time.Date(2018, time.January, 8, 0, 0, 0, 0, time.UTC)
	SynthBaselineLast  = time.Date(2018, time.June, 29, 0, 0, 0, 0, time.UTC)
	synthStudyStart    = time.Date(2018, time.January, 1, 0, 0, 0, 0, time.UTC)
)

// synthSplitMix is the SplitMix64 finaliser: a bijective mixer of 64 bits.
func synthSplitMix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// synthKey hashes the seed and a domain (what the stream is for: a trust,
// a team) into a 64-bit key.
func synthKey(seed uint64, domain ...string) uint64 {
	h := fnv.New64a()
	for _, d := range domain {
		h.Write([]byte(d))
		h.Write([]byte{0})
	}
	return synthSplitMix(seed ^ synthSplitMix(h.Sum64()))
}

// synthSeed seeds p for item i of the stream key.
func synthSeed(p *rand.PCG, key, i uint64) {
	p.Seed(synthSplitMix(key^synthSplitMix(i)), synthSplitMix(key+0x632be59bd9b4e019*(i+1)))
}

// synthRand returns a generator of its own for item i of the stream key.
func synthRand(key, i uint64) *rand.Rand {
	p := &rand.PCG{}
	synthSeed(p, key, i)
	return rand.New(p)
}

// synthTrustSizes splits the participants over the trusts that have teams,
// in proportion to weights drawn from the seed (0.85–1.15 each), by
// largest remainder.
func synthTrustSizes(s *schemas.Study, opts SynthOptions) map[string]int {
	type share struct {
		code string
		w    float64
		n    int
		rem  float64
	}
	var shares []share
	total := 0.0
	for _, t := range s.Trusts {
		if len(synthTeamsOf(s, t.Code)) == 0 {
			continue
		}
		w := 0.85 + 0.3*synthRand(synthKey(opts.Seed, "trust-size", t.Code), 0).Float64()
		shares = append(shares, share{code: t.Code, w: w})
		total += w
	}
	out := map[string]int{}
	if len(shares) == 0 {
		return out
	}
	left := opts.Participants
	for i := range shares {
		x := float64(opts.Participants) * shares[i].w / total
		shares[i].n = int(math.Floor(x))
		shares[i].rem = x - float64(shares[i].n)
		left -= shares[i].n
	}
	for ; left > 0; left-- {
		best := 0
		for i := range shares {
			if shares[i].rem > shares[best].rem {
				best = i
			}
		}
		shares[best].n++
		shares[best].rem = -1
	}
	for _, sh := range shares {
		out[sh.code] = sh.n
	}
	return out
}

func synthTeamsOf(s *schemas.Study, trust string) []schemas.Team {
	var out []schemas.Team
	for _, t := range s.Teams {
		if t.Trust == trust {
			out = append(out, t)
		}
	}
	return out
}

// synthTeam is a team with its random intercept.
type synthTeam struct {
	code         string
	arm          string
	intervention bool
	u            float64
	costU        float64 // team effect on service use (log scale)
}

// synthGen generates one trust's participants.
type synthGen struct {
	s       *schemas.Study
	opts    SynthOptions
	trust   string
	n       int
	teams   []synthTeam
	trustFx float64
	key     uint64 // participant streams
	idKey   uint64 // pseudonyms
	blkKey  uint64 // team allocation blocks
	pcg     rand.PCG
	rng     *rand.Rand
	// Service use is drawn from a stream of its own (suKey, per
	// participant), so adding it left every other answer as it was.
	suKey   uint64
	suPCG   rand.PCG
	suRng   *rand.Rand
	insts   []*synthInst
	days    []time.Time // weekdays of the baseline window
	demog   []synthCat  // the study's coded demographics, in its order
	coded   []string    // their names
	flags   []string    // the study's 0/1 demographics, in its order
	row     SynthInterview
	block   []int // team index by position in the current block
	blockNo int
}

// synthCat is a categorical distribution over a code list.
type synthCat struct {
	codes []string
	cum   []float64
}

func (c *synthCat) draw(r *rand.Rand) string {
	u := r.Float64() * c.cum[len(c.cum)-1]
	for i, x := range c.cum {
		if u < x {
			return c.codes[i]
		}
	}
	return c.codes[len(c.codes)-1]
}

// synthDemogWeights are the relative frequencies of the default codes;
// a code not listed gets weight 2 (so a study's own demographics are
// uniform).
var synthDemogWeights = map[string]map[string]float64{
	"age_band":        {"18-24": 10, "25-34": 20, "35-44": 22, "45-54": 23, "55-64": 16, "65+": 9},
	"gender":          {"female": 47, "male": 47, "non_binary": 1.5, "other": 0.5, "not_stated": 4},
	"ethnicity":       {"white": 79, "mixed": 3, "asian": 8, "black": 4, "other": 2, "not_stated": 4},
	"diagnosis_group": {"psychosis": 32, "bipolar": 12, "depression": 26, "anxiety": 11, "personality": 10, "other": 6, "not_stated": 3},
}

func newSynthCat(codes []string, weights map[string]float64) synthCat {
	c := synthCat{codes: codes}
	sum := 0.0
	for _, code := range codes {
		w, ok := weights[code]
		if !ok {
			w = 2
		}
		sum += w
		c.cum = append(c.cum, sum)
	}
	return c
}

func newSynthGen(s *schemas.Study, opts SynthOptions, trust string, n int) *synthGen {
	g := &synthGen{
		s: s, opts: opts, trust: trust, n: n,
		key:     synthKey(opts.Seed, "participant", trust),
		idKey:   synthKey(opts.Seed, "pseudonym", trust),
		blkKey:  synthKey(opts.Seed, "block", trust),
		trustFx: synthTrustSD * synthRand(synthKey(opts.Seed, "trust", trust), 0).NormFloat64(),
		blockNo: -1,
	}
	g.rng = rand.New(&g.pcg)
	g.suKey = synthKey(opts.Seed, "service-use", trust)
	g.suRng = rand.New(&g.suPCG)
	for _, t := range synthTeamsOf(s, trust) {
		g.teams = append(g.teams, synthTeam{
			code:         t.Code,
			arm:          t.Arm,
			intervention: t.Arm == s.InterventionArm(),
			u:            synthTeamSD * synthRand(synthKey(opts.Seed, "team", t.Code), 0).NormFloat64(),
			costU:        synthCostTeamSD * synthRand(synthKey(opts.Seed, "team-cost", t.Code), 0).NormFloat64(),
		})
	}
	for d := SynthBaselineFirst; !d.After(SynthBaselineLast); d = d.AddDate(0, 0, 1) {
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			g.days = append(g.days, d)
		}
	}
	g.coded = s.CodedDemographics()
	for _, k := range g.coded {
		g.demog = append(g.demog, newSynthCat(s.Demographics[k], synthDemogWeights[k]))
	}
	g.flags = s.BinaryDemographics()
	g.row.Demo = make([]string, len(g.demog))
	g.row.Flags = make([]SynthValue, len(g.flags))
	g.insts = synthPlan(s)
	for _, in := range g.insts {
		g.row.ItemNames = append(g.row.ItemNames, in.names...)
	}
	g.row.Items = make([]SynthValue, len(g.row.ItemNames))
	g.row.Trust = trust
	return g
}

// teamOf allocates participants to teams in permuted blocks of two per
// team, so team sizes differ a little and depend on nothing but the seed.
func (g *synthGen) teamOf(i int) *synthTeam {
	k := len(g.teams)
	b := i / (2 * k)
	if b != g.blockNo {
		r := synthRand(g.blkKey, uint64(b))
		g.block = g.block[:0]
		for j := 0; j < 2*k; j++ {
			g.block = append(g.block, j%k)
		}
		r.Shuffle(len(g.block), func(x, y int) { g.block[x], g.block[y] = g.block[y], g.block[x] })
		g.blockNo = b
	}
	return &g.teams[g.block[i%(2*k)]]
}

// synthPseudonym is "P" and five digits for the first 90,000 participants
// of a trust, six for the next 900,000 and so on: a keyed permutation of
// the index, so unique within the trust, never ten digits or more for any
// realistic study (no NHS number or phone number look-alike).
func synthPseudonym(key uint64, i int) string {
	lo, m := uint64(10000), uint64(90000)
	x := uint64(i)
	tier := uint64(0)
	for x >= m {
		x -= m
		lo, m = lo*10, m*10
		tier++
	}
	return "P" + strconv.FormatUint(lo+synthPermute(x, m, synthSplitMix(key+tier)), 10)
}

// synthPermute is a keyed bijection of [0, m): an invertible mix of the
// bits needed for m, cycle-walked until it lands below m.
func synthPermute(x, m, key uint64) uint64 {
	nb := uint(bits.Len64(m - 1))
	mask := uint64(1)<<nb - 1
	for {
		for r := uint(0); r < 3; r++ {
			x = (x ^ (key >> (r * 16))) & mask
			x = (x * (key>>(r*5)&^1 | 1)) & mask // odd multiplier: bijective mod 2^nb
			x ^= x >> (nb/2 + 1)
		}
		if x < m {
			return x
		}
	}
}

// synthPerson carries a participant's latents from wave to wave.
type synthPerson struct {
	team   *synthTeam
	demFx  float64      // demographic shift of social capital
	e, h   float64      // person-level social capital and wellbeing parts
	scBase float64      // social capital at baseline, for goal attainment
	need   float64      // person-level service need (log scale)
	demo   []string     // coded demographics (synthGen.demog)
	flags  []SynthValue // 0/1 demographics (synthGen.flags)
}

// synthPAlone is the chance of living alone in each arm (the arms differ a
// little: a non-randomised study); any other 0/1 demographic is a coin.
const (
	synthPAloneIntervention = 0.43
	synthPAloneControl      = 0.35
	synthPFlag              = 0.5
)

// synthLatent is a participant's latent state at one wave.
type synthLatent struct {
	rgTotal   float64 // expected RG-UK total (points)
	social    float64 // social capital, SD units, effects included
	wellbeing float64
	recovery  float64
	lonely    float64
	change    float64 // social capital gained since baseline
	treated   bool    // intervention arm after the baseline
	need      float64 // service need, log scale (person and team)
}

// run generates the trust's participants in the order of their
// pseudonyms, as a trust's database exports them (each participant's values
// depend only on the seed, trust and index, so the order changes nothing
// else).
func (g *synthGen) run(ctx context.Context, visit func(*SynthInterview) error) error {
	if len(g.teams) == 0 || g.n == 0 {
		return nil
	}
	ids := make([]string, g.n)
	order := make([]int, g.n)
	for i := range order {
		ids[i] = synthPseudonym(g.idKey, i)
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return ids[order[a]] < ids[order[b]] })
	for k, i := range order {
		if k%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := g.participant(i, visit); err != nil {
			return err
		}
	}
	return nil
}

// participant generates participant i's rows, one per wave of the study in
// its order, baseline first. The order of draws is fixed, whatever is
// emitted.
//
// Waves: wave w's interview is synthWaveDays ± synthWaveJit days after wave
// w−1's (moved off a weekend), so about w × synthWaveDays after the
// baseline. At every wave after the first a participant is lost with
// probability synthPLost (no row at that wave or any later one: attrition
// is monotone) or else withdraws with probability synthPWithdrawn (the
// withdrawal row, with or without answers, is their last); instruments
// are answered only at the waves they are asked at (Instrument.AskedAt).
func (g *synthGen) participant(i int, visit func(*SynthInterview) error) error {
	synthSeed(&g.pcg, g.key, uint64(i))
	synthSeed(&g.suPCG, g.suKey, uint64(i))
	r := g.rng
	p := synthPerson{team: g.teamOf(i)}
	p.need = p.team.costU + synthCostPersonSD*g.suRng.NormFloat64()
	id := synthPseudonym(g.idKey, i)

	p.demo = make([]string, len(g.demog))
	for j := range g.demog {
		p.demo[j] = g.demog[j].draw(r)
	}
	p.flags = make([]SynthValue, len(g.flags))
	for j, name := range g.flags {
		pYes := synthPFlag
		if name == "living_alone" {
			pYes = synthPAloneControl
			if p.team.intervention {
				pYes = synthPAloneIntervention
			}
		}
		yes := r.Float64() < pYes
		p.flags[j] = SynthValue{Value: 0, Valid: true}
		if yes {
			p.flags[j].Value = 1
			if name == "living_alone" {
				p.demFx -= 0.3
			}
		}
	}
	// The default demographics' effects on social capital, in a fixed
	// order (diagnosis, then age: sums of floats depend on it).
	if g.demoOf(&p, "diagnosis_group") == "psychosis" {
		p.demFx -= 0.2
	}
	switch g.demoOf(&p, "age_band") {
	case "18-24", "25-34":
		p.demFx += 0.1
	case "65+":
		p.demFx -= 0.15
	}
	if len(p.demo) > 0 {
		blank := r.IntN(len(p.demo)) // which demographic may be blank
		if r.Float64() < synthPDemogBlank {
			p.demo[blank] = ""
		}
	}
	notInterviewed := r.Float64() < synthPNotInterviewed
	base := g.days[r.IntN(len(g.days))]
	if base.After(g.opts.ExportDate) {
		return nil // not yet recruited when the export was made
	}

	row := &g.row
	row.ParticipantID, row.Team, row.Arm = id, p.team.code, p.team.arm
	date := base
	for w, wave := range g.s.Waves {
		row.Wave = wave
		row.Withdrawn = false
		if w == 0 {
			p.e, p.h = r.NormFloat64(), r.NormFloat64()
		} else {
			p.e = synthRhoSocial*p.e + math.Sqrt(1-synthRhoSocial*synthRhoSocial)*r.NormFloat64()
			p.h = synthRhoWellbeing*p.h + math.Sqrt(1-synthRhoWellbeing*synthRhoWellbeing)*r.NormFloat64()
			date = date.AddDate(0, 0, synthWaveDays+r.IntN(2*synthWaveJit+1)-synthWaveJit)
			date = synthWeekday(date)
		}
		lat := g.latent(&p, w)
		if w == 0 {
			p.scBase = lat.social
		}
		u := r.Float64()
		ansWithdrawn := r.Float64() < synthPWithdrawnAns
		repeat := r.Float64() < synthPDemogRepeat
		g.items(r, &lat, wave) // drawn whatever is emitted: the stream stays aligned
		switch {
		case w == 0 && notInterviewed:
			g.blankRow(false)
			return visit(row)
		case w > 0 && u < synthPLost:
			return nil
		case date.After(g.opts.ExportDate):
			return nil // this wave is not in the export yet
		case w > 0 && u < synthPLost+synthPWithdrawn:
			row.Withdrawn = true
			if !ansWithdrawn {
				g.blankRow(true)
				return visit(row)
			}
		}
		row.Date = date
		if w == 0 || repeat {
			copy(row.Demo, p.demo)
			copy(row.Flags, p.flags)
		} else {
			g.blankDemographics()
		}
		if err := visit(row); err != nil {
			return err
		}
		if row.Withdrawn {
			return nil
		}
	}
	return nil
}

// blankRow clears the row's date, demographics and answers.
func (g *synthGen) blankRow(withdrawn bool) {
	row := &g.row
	row.Date = time.Time{}
	row.Withdrawn = withdrawn
	g.blankDemographics()
	for i := range row.Items {
		row.Items[i] = SynthValue{}
	}
}

// demoOf is p's value of the coded demographic name ("" if the study has
// none of that name).
func (g *synthGen) demoOf(p *synthPerson, name string) string {
	if i := slices.Index(g.coded, name); i >= 0 {
		return p.demo[i]
	}
	return ""
}

// blankDemographics clears the row's demographics.
func (g *synthGen) blankDemographics() {
	clear(g.row.Demo)
	clear(g.row.Flags)
}

// latent is the participant's latent state at wave w.
func (g *synthGen) latent(p *synthPerson, w int) synthLatent {
	sc := g.trustFx + p.team.u + p.demFx + p.e
	l := synthLatent{treated: w > 0 && p.team.intervention, need: p.need}
	l.rgTotal = synthRGMean + synthRGSD*sc + synthRGTrend*float64(w)
	if l.treated {
		l.rgTotal += SynthEffect
	}
	l.social = (l.rgTotal - synthRGMean) / synthRGSD
	l.wellbeing = 0.45*l.social + 0.89*p.h + 0.05*float64(w)
	l.recovery = (0.75*l.wellbeing + 0.35*l.social) / 0.95
	l.lonely = -(0.55*l.social + 0.45*l.wellbeing) / 0.85
	if w > 0 {
		l.change = l.social - p.scBase
	}
	return l
}

// synthWeekday moves a weekend date to the nearest weekday.
func synthWeekday(d time.Time) time.Time {
	switch d.Weekday() {
	case time.Saturday:
		return d.AddDate(0, 0, -1)
	case time.Sunday:
		return d.AddDate(0, 0, 1)
	}
	return d
}

// items fills the row's answers at a wave.
func (g *synthGen) items(r *rand.Rand, l *synthLatent, wave string) {
	out := g.row.Items
	for _, in := range g.insts {
		vals := out[in.first : in.first+len(in.names)]
		if !in.inst.AskedAt(wave) {
			for j := range vals {
				vals[j] = SynthValue{}
			}
			continue
		}
		if in.serviceUse {
			g.serviceUse(l, wave, in, vals)
			continue
		}
		in.generate(r, l, vals)
		for j, rev := range in.reverse {
			if rev && vals[j].Valid {
				vals[j].Value = in.min[j] + in.max[j] - vals[j].Value
			}
		}
		in.blanks(r, vals)
	}
}
