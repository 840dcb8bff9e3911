package score

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/pipeline/warehouse/codes"
	"github.com/connectingpeople/cpi/schemas"
)

// MetaValueSetPrefix starts the scores table's key/value metadata entries
// naming each value set used: cpi.valueset.<name> = "<title> version <version>".
const MetaValueSetPrefix = "cpi.valueset."

// MetaUnitCostsPrefix starts the scores table's key/value metadata entries
// naming each unit-cost table used: cpi.unitcosts.<name> = "<title>; price
// year <year>; source: <source>" (the price year costs are in: the
// study's economics.price_year when set, the table's own otherwise).
const MetaUnitCostsPrefix = "cpi.unitcosts."

// Score computes every participant's instrument scores and the scales'
// psychometrics (DESIGN §7, §8).
//
// It reads the item-level responses table (partitioned by trust; within a
// partition, rows sorted by study_id, wave, instrument, item, its files in
// path order), only its study_id, wave, item and value columns, and each
// participant's team, arm and withdrawal from the participants table (the
// same for every interview: ingest rejects a change of team), and rewrites
// three tables completely:
//
//   - scores, one file per trust (every trust of the study, and any other
//     trust found in responses; a trust with no responses gets an empty
//     file): one row per participant × wave × instrument asked at that wave ×
//     scale, sorted by study_id, wave, instrument, scale. A participant-wave
//     with no responses rows gets no rows. base is the participant's
//     baseline value of the same scale at every wave (the value itself at
//     baseline), chg = value − base after baseline. The table's metadata
//     names every value set the study's instruments use.
//   - reliability: per scale marked reliability, wave at which its
//     instrument is asked and trust (and ALL, pooled): Cronbach's alpha over
//     the complete cases with Feldt's 95% interval, the share of item
//     answers missing, and the items whose corrected item–total correlation
//     is negative.
//   - service_sums, one file per trust like scores: the units of every
//     costed service (an item of a cost scale) summed exactly in int64 per
//     wave, team, arm, withdrawn and service (see service_sums.go), from
//     which compare makes service_use.
//
// Scoring is driven by the instrument definitions alone (methods sum,
// lookup, valueset, item, gas; see scoreInstrument); nothing depends on an
// instrument's name. A blank answer to an item that declares a blank value
// counts as that value; reverse-keyed items are scored min + max − value
// (in sum, item and lookup scales and in reliability; value sets and GAS
// use the codes as recorded).
//
// Memory follows the batch size and the number of trusts, not the number
// of participants: one participant's answers are held at a time, trust
// partitions are scored in parallel (up to GOMAXPROCS), and each writes its
// own file; reliability keeps sums and cross-products of the items, O(k²)
// per scale × wave × trust (see reliability.go).
//
// Problems that fail the stage: a responses file outside a trust=
// partition or holding another trust's rows, rows not sorted by study_id,
// a wave, instrument or item the study does not define, a value outside
// its item's range, an instrument definition the scorer cannot use (a
// lookup from a scale that is neither sum nor item, a lookup table of the
// wrong length, a value set scale allowing missing dimensions), read or
// write errors, and cancellation. Problems that become nulls: a score with
// more items missing than allowed (items_answered shows it), a lookup of a
// null raw score, an index with a dimension missing, a GAS score with no
// goal levelled, a chg without both values, an alpha with fewer than three
// complete cases or a total that does not vary (the row is still written).
func Score(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
	return score(ctx, env, tx, (*scoreJob).readCodes)
}

// responseReader reads the responses of a trust's files into a job:
// (*scoreJob).readCodes, or in tests the pqarrow route they check it
// against.
type responseReader func(j *scoreJob, ctx context.Context, rw *warehouse.RowWriter, files []string) error

// score is Score with the responses read by read.
func score(ctx context.Context, env warehouse.Env, tx *warehouse.Tx, read responseReader) error {
	plan, err := newScorePlan(env.Study)
	if err != nil {
		return fmt.Errorf("score: %w", err)
	}
	parts, err := scorePartitions(tx.Dir)
	if err != nil {
		return fmt.Errorf("score: %w", err)
	}
	trusts := env.Study.TrustCodes()
	for t := range parts {
		if !slices.Contains(trusts, t) {
			trusts = append(trusts, t)
		}
	}
	slices.Sort(trusts)

	for _, name := range []string{"scores", "reliability", "service_sums"} {
		if err := scoreRemoveTable(tx, name); err != nil {
			return fmt.Errorf("score: %w", err)
		}
	}
	var rows int64
	for _, files := range parts {
		rows += tableRows(files)
	}
	task := env.Progress.Start("score", "responses", rows)
	defer task.Done()
	env.Task = task
	schema := warehouse.ArrowSchema(env, "scores", plan.meta)
	accs := make([]*relAcc, len(trusts))
	errs := make([]error, len(trusts))
	counts := make([]scoreCounts, len(trusts))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := min(runtime.GOMAXPROCS(0), len(trusts))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				job := newScoreJob(env, plan, schema, trusts[i])
				job.read = read
				errs[i] = job.run(ctx, tx, parts[trusts[i]])
				if errs[i] != nil {
					cancel()
				}
				accs[i], counts[i] = job.rel, job.counts
			}
		}()
	}
	for i := range trusts {
		next <- i
	}
	close(next)
	wg.Wait()
	// The first failure that is not the cancellation it caused.
	var first error
	for i, e := range errs {
		if e == nil {
			continue
		}
		e = fmt.Errorf("score trust %s: %w", trusts[i], e)
		if first == nil || (errors.Is(first, context.Canceled) && !errors.Is(e, context.Canceled)) {
			first = e
		}
	}
	if first != nil {
		return first
	}
	if err := writeReliability(ctx, env, tx, plan, trusts, accs); err != nil {
		return fmt.Errorf("score: %w", err)
	}
	var total scoreCounts
	for _, c := range counts {
		total.participantWaves += c.participantWaves
		total.rows += c.rows
	}
	env.Logger().Info("scored", "trusts", len(trusts), "participant_waves", total.participantWaves, "score_rows", total.rows)
	return nil
}

// scoreRemoveTable drops a table's files from the generation before a stage
// rewrites it.
func scoreRemoveTable(tx *warehouse.Tx, name string) error {
	return tx.ReplaceTable(name)
}

// tableRows is the number of rows in a table's files, from their footers
// (0 when one cannot be read: the progress line then shows no total).
func tableRows(files []string) int64 {
	var n int64
	for _, f := range files {
		pf, err := file.OpenParquetFile(f, false)
		if err != nil {
			return 0
		}
		n += pf.NumRows()
		pf.Close()
	}
	return n
}

// scorePartitions groups the responses table's files by trust partition,
// each partition's files in path order.
func scorePartitions(genDir string) (map[string][]string, error) {
	files, err := warehouse.TableFiles(genDir, "responses")
	if err != nil {
		return nil, err
	}
	root := filepath.Join(genDir, "tables", "responses")
	out := map[string][]string{}
	for _, p := range files {
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return nil, err
		}
		dir, _, found := strings.Cut(filepath.ToSlash(rel), "/")
		trust, ok := strings.CutPrefix(dir, "trust=")
		if !found || !ok || trust == "" {
			return nil, fmt.Errorf("responses file %s is not in a trust= partition", rel)
		}
		out[trust] = append(out[trust], p)
	}
	return out, nil
}

// scorePlan is the study's instruments compiled for scoring.
type scorePlan struct {
	waves      []string // definition order; waves[0] is the baseline
	waveIdx    map[string]int
	waveOut    []int // wave indices in output (byte) order
	insts      []*scoreInst
	instIdx    map[string]int
	instOut    []int // instrument indices in output (byte) order
	rel        []relScale
	meta       map[string]string
	itemByName map[string]int // item name → itemRefs (item names are unique in a study)
	itemRefs   []scoreItemRef
	months     []float64 // nominal wave times from baseline (auc scales)
	discount   float64   // yearly discount rate beyond the first year (auc scales)
	stratified bool      // a value set depends on age band and gender
	svc        svcPlan   // the costed services (service_sums)
}

// scoreItemRef places an item: its instrument and its position there.
type scoreItemRef struct{ inst, item int }

// scoreInst is one instrument compiled for scoring.
type scoreInst struct {
	name     string
	items    []schemas.Item
	itemIdx  map[string]int
	asked    []bool // per wave
	scales   []scoreScale
	scaleOut []int // scale indices in output (byte) order
}

// vsTable is one value-set table compiled for scoring: decrements per
// dimension (dec[d][level − min], in the scale's item order), or a
// utility per health state (states[profile as base 5], five levels each).
type vsTable struct {
	dec    [][]float64
	states []float64
}

// scoreScale is one scale compiled for scoring.
type scoreScale struct {
	name, method   string
	items          []int // item positions in scoreInst.items
	missingAllowed int
	from           int                 // lookup: the source scale
	lowest         int                 // lookup: the lowest possible raw score
	table          []float64           // lookup
	vs             *vsTable            // valueset
	strata         map[string]*vsTable // valueset by age band and gender: key ageBand + "\x00" + gender
	rho            float64
	goals          [][2]int // gas: level and weight item positions
	reliability    bool
	unitCost       []float64 // cost: the unit cost of each item, in the study's price year
}

func newScorePlan(s *schemas.Study) (*scorePlan, error) {
	if len(s.Waves) == 0 {
		return nil, errors.New("the study defines no waves")
	}
	p := &scorePlan{waves: s.Waves, waveIdx: map[string]int{}, instIdx: map[string]int{}, meta: map[string]string{}, itemByName: map[string]int{}, discount: s.Economics.Discount()}
	for i, w := range s.Waves {
		p.waveIdx[w] = i
		p.months = append(p.months, s.WaveMonth(w))
		p.waveOut = append(p.waveOut, i)
	}
	slices.SortFunc(p.waveOut, func(a, b int) int { return strings.Compare(s.Waves[a], s.Waves[b]) })
	for _, in := range s.Instruments {
		ip, err := newScoreInst(s, in)
		if err != nil {
			return nil, fmt.Errorf("instrument %s: %w", in.Name, err)
		}
		p.instIdx[ip.name] = len(p.insts)
		for k, it := range ip.items {
			if _, dup := p.itemByName[it.Name]; dup {
				return nil, fmt.Errorf("item %s belongs to two instruments", it.Name)
			}
			p.itemByName[it.Name] = len(p.itemRefs)
			p.itemRefs = append(p.itemRefs, scoreItemRef{inst: len(p.insts), item: k})
		}
		p.instOut = append(p.instOut, len(p.insts))
		p.insts = append(p.insts, ip)
		for _, sp := range ip.scales {
			p.stratified = p.stratified || sp.strata != nil
		}
		for _, sc := range in.Scales {
			switch sc.Method {
			case "valueset":
				vs := s.ValueSets[sc.ValueSet]
				p.meta[MetaValueSetPrefix+vs.Name] = vs.Describe()
			case "cost":
				u := s.UnitCosts[sc.UnitCosts]
				d := *u
				if s.Economics.PriceYear != 0 {
					d.PriceYear = s.Economics.PriceYear
				}
				p.meta[MetaUnitCostsPrefix+u.Name] = d.Describe()
			}
		}
	}
	slices.SortFunc(p.instOut, func(a, b int) int { return strings.Compare(p.insts[a].name, p.insts[b].name) })
	rel, err := newRelScales(p)
	if err != nil {
		return nil, err
	}
	p.rel = rel
	p.svc = newSvcPlan(s, p)
	return p, nil
}

func newScoreInst(s *schemas.Study, in *schemas.Instrument) (*scoreInst, error) {
	ip := &scoreInst{name: in.Name, items: in.Items, itemIdx: map[string]int{}}
	for i, it := range in.Items {
		ip.itemIdx[it.Name] = i
	}
	for _, w := range s.Waves {
		ip.asked = append(ip.asked, in.AskedAt(w))
	}
	pos := func(names []string) []int {
		out := make([]int, len(names))
		for i, n := range names {
			out[i] = ip.itemIdx[n]
		}
		return out
	}
	for si := range in.Scales {
		sc := &in.Scales[si]
		sp := scoreScale{name: sc.Name, method: sc.Method, missingAllowed: sc.MissingAllowed, rho: sc.Rho, reliability: sc.Reliability}
		switch sc.Method {
		case "sum", "item":
			sp.items = pos(in.ScaleItems(sc))
		case "lookup":
			from := slices.IndexFunc(ip.scales, func(x scoreScale) bool { return x.name == sc.From })
			if from < 0 {
				return nil, fmt.Errorf("scale %s: from %q is not an earlier scale", sc.Name, sc.From)
			}
			src := ip.scales[from]
			if src.method != "sum" && src.method != "item" {
				return nil, fmt.Errorf("scale %s: lookup from a %s scale is not supported (sum or item)", sc.Name, src.method)
			}
			lo, hi := 0, 0
			for _, j := range src.items {
				lo += in.Items[j].Min
				hi += in.Items[j].Max
			}
			if len(sc.Table) != hi-lo+1 {
				return nil, fmt.Errorf("scale %s: table has %d entries for raw scores %d..%d", sc.Name, len(sc.Table), lo, hi)
			}
			sp.from, sp.lowest, sp.table = from, lo, sc.Table
			sp.items = src.items
		case "valueset":
			if sc.MissingAllowed != 0 {
				return nil, fmt.Errorf("scale %s: a value set index cannot allow missing dimensions", sc.Name)
			}
			vs, ok := s.ValueSets[sc.ValueSet]
			if !ok {
				return nil, fmt.Errorf("scale %s: value set %q not loaded", sc.Name, sc.ValueSet)
			}
			sp.items = pos(in.ScaleItems(sc))
			tables := vs.Tables()
			compiled := make([]*vsTable, len(tables))
			for k, t := range tables {
				vt := &vsTable{}
				if t.States != nil {
					if len(sp.items) != schemas.StateDigits {
						return nil, fmt.Errorf("scale %s: value set %s is per health state of %d dimensions", sc.Name, vs.Name, schemas.StateDigits)
					}
					vt.states = make([]float64, schemas.StateCount)
					for profile, u := range t.States {
						i, ok := schemas.StateIndex(profile)
						if !ok {
							return nil, fmt.Errorf("scale %s: value set %s has a health state that is not five digits 1–5", sc.Name, vs.Name)
						}
						vt.states[i] = u
					}
					for _, j := range sp.items {
						if it := in.Items[j]; it.Max-it.Min+1 != 5 {
							return nil, fmt.Errorf("scale %s: value set %s is per health state of five levels; %s has %d", sc.Name, vs.Name, it.Name, it.Max-it.Min+1)
						}
					}
				} else {
					for _, j := range sp.items {
						it := in.Items[j]
						d := t.Dimensions[it.Name]
						if len(d) != it.Max-it.Min+1 {
							return nil, fmt.Errorf("scale %s: value set %s has no %d levels for %s", sc.Name, vs.Name, it.Max-it.Min+1, it.Name)
						}
						vt.dec = append(vt.dec, d)
					}
				}
				compiled[k] = vt
			}
			if len(vs.Strata) == 0 {
				sp.vs = compiled[0]
			} else {
				sp.strata = map[string]*vsTable{}
				for k, st := range vs.Strata {
					sp.strata[st.AgeBand+"\x00"+st.Gender] = compiled[k]
				}
			}
		case "cost":
			u, ok := s.UnitCosts[sc.UnitCosts]
			if !ok {
				return nil, fmt.Errorf("scale %s: unit-cost table %q not loaded", sc.Name, sc.UnitCosts)
			}
			if sc.MissingAllowed != 0 {
				return nil, fmt.Errorf("scale %s: a cost cannot allow missing services", sc.Name)
			}
			f := s.CostFactor(u)
			sp.items = pos(in.ScaleItems(sc))
			for _, j := range sp.items {
				c, ok := u.Cost(in.Items[j].Name)
				if !ok {
					return nil, fmt.Errorf("scale %s: unit-cost table %s has no cost for %s", sc.Name, u.Name, in.Items[j].Name)
				}
				sp.unitCost = append(sp.unitCost, c*f)
			}
		case "auc":
			from := slices.IndexFunc(ip.scales, func(x scoreScale) bool { return x.name == sc.From })
			if from < 0 {
				return nil, fmt.Errorf("scale %s: from %q is not an earlier scale", sc.Name, sc.From)
			}
			sp.from = from
		case "gas":
			for _, g := range sc.Goals {
				l, ok1 := ip.itemIdx[g.Level]
				w, ok2 := ip.itemIdx[g.Weight]
				if !ok1 || !ok2 {
					return nil, fmt.Errorf("scale %s: goal items %s, %s are not items", sc.Name, g.Level, g.Weight)
				}
				sp.goals = append(sp.goals, [2]int{l, w})
				sp.items = append(sp.items, l)
			}
		default:
			return nil, fmt.Errorf("scale %s: unknown method %q", sc.Name, sc.Method)
		}
		ip.scaleOut = append(ip.scaleOut, len(ip.scales))
		ip.scales = append(ip.scales, sp)
	}
	slices.SortFunc(ip.scaleOut, func(a, b int) int { return strings.Compare(ip.scales[a].name, ip.scales[b].name) })
	return ip, nil
}

// scoreResult is one scale's score for one participant-wave.
type scoreResult struct {
	value    float64
	ok       bool // value is not null
	answered int32
	total    int32
	prorated bool
}

// scoreAnswers is one participant-wave's answers to one instrument.
type scoreAnswers struct {
	val []int32
	ok  []bool // answered (the value was not blank)
}

// get is an item's scored code: the answer, or the item's blank value when
// it declares one; ok false when missing.
func (a *scoreAnswers) get(ip *scoreInst, j int) (int32, bool) {
	if a.ok[j] {
		return a.val[j], true
	}
	if b := ip.items[j].Blank; b != nil {
		return int32(*b), true
	}
	return 0, false
}

// keyed is get with a reverse-keyed item turned: min + max − value.
func (a *scoreAnswers) keyed(ip *scoreInst, j int) (int32, bool) {
	v, ok := a.get(ip, j)
	if ok && ip.items[j].Reverse {
		v = int32(ip.items[j].Min+ip.items[j].Max) - v
	}
	return v, ok
}

// scoreInstrument scores every scale of one instrument from a
// participant-wave's answers into out (one per scale, definition order).
//
//   - sum: k of the n items answered; with n − k ≤ missing_allowed (and
//     k > 0) the value is the person-mean prorated total sum·n/k (computed
//     from the exact integer sum·n with a single rounding, so a prorated
//     total that is exactly x.5 stays x.5), prorated when k < n; else null.
//   - lookup: the source scale's value rounded half up, then Table[raw −
//     lowest possible raw]; null when the raw score is null.
//   - valueset: 1 − Σ decrement[item][level − min] over every dimension;
//     null when any is missing. A value set by age band and gender takes
//     the decrements of the participant's stratum (null when they are in
//     none). A per-state value set gives the utility of the profile of
//     levels instead (null when any dimension is blank).
//   - item: the item's value.
//   - gas: t = 50 + 10 Σwx / √((1−ρ)Σw² + ρ(Σw)²) over the goals with a
//     level (a blank weight counts as the weight item's blank value); null
//     when no goal has one.
//   - cost: Σ units × unit cost over every item; null when any is blank
//     (a missing quantity never becomes £0).
//   - auc: left null here; it needs every wave (see scoreAUC).
func scoreInstrument(ip *scoreInst, a *scoreAnswers, stratum string, out []scoreResult) error {
	for si := range ip.scales {
		sp := &ip.scales[si]
		r := scoreResult{total: int32(len(sp.items))}
		switch sp.method {
		case "sum":
			var sum int64
			for _, j := range sp.items {
				if v, ok := a.keyed(ip, j); ok {
					sum += int64(v)
					r.answered++
				}
			}
			n, k := int64(len(sp.items)), int64(r.answered)
			switch {
			case k == n:
				r.value, r.ok = float64(sum), true
			case k > 0 && n-k <= int64(sp.missingAllowed):
				r.value, r.ok, r.prorated = float64(sum*n)/float64(k), true, true
			}
		case "item":
			if v, ok := a.keyed(ip, sp.items[0]); ok {
				r.value, r.ok, r.answered = float64(v), true, 1
			}
		case "lookup":
			src := out[sp.from]
			r.answered, r.total, r.prorated = src.answered, src.total, src.prorated
			if src.ok {
				i := int(math.Floor(src.value+0.5)) - sp.lowest
				if i < 0 || i >= len(sp.table) {
					return fmt.Errorf("scale %s.%s: raw score outside the lookup table", ip.name, sp.name)
				}
				r.value, r.ok = sp.table[i], true
			}
		case "valueset":
			vt := sp.vs
			if sp.strata != nil {
				vt = sp.strata[stratum]
			}
			var dec float64
			state := 0
			for d, j := range sp.items {
				v, ok := a.get(ip, j)
				if !ok {
					continue
				}
				r.answered++
				level := int(v) - ip.items[j].Min
				if level < 0 || level > ip.items[j].Max-ip.items[j].Min {
					return fmt.Errorf("scale %s.%s: an answer outside %s's levels", ip.name, sp.name, ip.items[j].Name)
				}
				state = state*5 + level
				if vt != nil && vt.states == nil {
					dec += vt.dec[d][level]
				}
			}
			if r.answered == r.total && vt != nil {
				if vt.states != nil {
					r.value, r.ok = vt.states[state], true
				} else {
					r.value, r.ok = 1-dec, true
				}
			}
		case "gas":
			var sw, sw2, swx float64
			for _, g := range sp.goals {
				x, ok := a.get(ip, g[0])
				if !ok {
					continue
				}
				w, ok := a.get(ip, g[1])
				if !ok {
					continue
				}
				r.answered++
				sw += float64(w)
				sw2 += float64(w) * float64(w)
				swx += float64(w) * float64(x)
			}
			den := (1-sp.rho)*sw2 + sp.rho*(sw*sw) // ρ(Σw)²: (Σw)² is exact, so one rounding
			if r.answered > 0 && den > 0 {
				r.value, r.ok = 50+10*swx/math.Sqrt(den), true
			}
		case "cost":
			var cost float64
			for d, j := range sp.items {
				v, ok := a.get(ip, j)
				if !ok {
					continue
				}
				r.answered++
				cost += float64(v) * sp.unitCost[d]
			}
			if r.answered == r.total {
				r.value, r.ok = cost, true
			}
		case "auc":
			r.total = 0
		}
		out[si] = r
	}
	return nil
}

// scoreCounts is what one trust's scoring did, for the log.
type scoreCounts struct {
	participantWaves int64
	rows             int64
}

// scoreJob scores one trust partition.
type scoreJob struct {
	env    warehouse.Env
	plan   *scorePlan
	schema *arrow.Schema
	trust  string
	col    [13]int
	rel    *relAcc
	counts scoreCounts
	names  map[string]int // interned team and arm codes: index into strs
	read   responseReader
	strs   []string

	// The participant being read, their team and arm, and (for a value
	// set by age band and gender) their stratum.
	id        string
	team, arm string
	stratum   string
	people    *participantCursor
	svc       svcSums
	waves     []scoreWave
	result    [][][]scoreResult // [wave][instrument][scale]
}

// scoreWave is one participant-wave's answers.
type scoreWave struct {
	present bool
	ans     []scoreAnswers // per instrument
}

func newScoreJob(env warehouse.Env, plan *scorePlan, schema *arrow.Schema, trust string) *scoreJob {
	tb := env.Study.Tables.Table("scores")
	j := &scoreJob{env: env, plan: plan, schema: schema, trust: trust, rel: newRelAcc(plan), names: map[string]int{}}
	for i, c := range []string{"study_id", "wave", "instrument", "scale", "trust", "team", "arm", "value", "items_answered", "items_total", "prorated", "base", "chg"} {
		j.col[i] = warehouse.ColIndex(tb, c)
	}
	j.svc = svcSums{waves: len(plan.waves), services: len(plan.svc.names)}
	j.waves = make([]scoreWave, len(plan.waves))
	j.result = make([][][]scoreResult, len(plan.waves))
	for w := range j.waves {
		j.waves[w].ans = make([]scoreAnswers, len(plan.insts))
		j.result[w] = make([][]scoreResult, len(plan.insts))
		for i, ip := range plan.insts {
			j.waves[w].ans[i] = scoreAnswers{val: make([]int32, len(ip.items)), ok: make([]bool, len(ip.items))}
			j.result[w][i] = make([]scoreResult, len(ip.scales))
		}
	}
	return j
}

// intern numbers a team or arm code read from a batch (whose memory is
// released with it): j.strs[intern(s)] is a stable copy.
func (j *scoreJob) intern(s string) int {
	if i, ok := j.names[s]; ok {
		return i
	}
	j.strs = append(j.strs, strings.Clone(s))
	j.names[j.strs[len(j.strs)-1]] = len(j.strs) - 1
	return len(j.strs) - 1
}

func (j *scoreJob) run(ctx context.Context, tx *warehouse.Tx, files []string) error {
	people, err := warehouse.TableFiles(tx.Dir, "participants")
	if err != nil {
		return fmt.Errorf("read participants: %w", err)
	}
	cols := []string{"study_id", "team", "arm", "withdrawn"}
	if j.plan.stratified {
		cols = append(cols, "age_band", "gender")
	}
	j.people = &participantCursor{scan: warehouse.NewColumnScan(ctx, partitionFiles(people, j.trust), cols, nil)}
	defer j.people.scan.Close()
	tf, err := tx.CreateTableFile(j.schema, "scores", "trust", j.trust, "data")
	if err != nil {
		return err
	}
	rw := warehouse.NewRowWriter(j.schema, tf)
	err = func() error {
		if err := j.read(j, ctx, rw, files); err != nil {
			return fmt.Errorf("read responses: %w", err)
		}
		if j.id != "" {
			return j.flush(rw)
		}
		return nil
	}()
	if err != nil {
		rw.Abort()
		return err
	}
	if err := rw.Close(); err != nil {
		return fmt.Errorf("write scores: %w", err)
	}
	return j.writeServiceSums(tx)
}

// readCodes reads the responses of files straight from their pages
// (codes.Read): study_id, wave and item as codes, value as numbers.
func (j *scoreJob) readCodes(ctx context.Context, rw *warehouse.RowWriter, files []string) error {
	for _, f := range files {
		if err := checkPartitionFile(f, j.trust); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
	}
	p := j.plan
	// A study_id's code is its place in ids, a row group's distinct ids
	// (its dictionary's; a run's of a page written plain): the lookup runs
	// on the goroutine decoding study_id, before fn is called.
	var ids []string
	cols := []codes.Column{
		{Name: "study_id", Lookup: func(s string) int32 { ids = append(ids, s); return int32(len(ids) - 1) }},
		{Name: "wave", Lookup: func(s string) int32 { return int32(scoreMapIndex(p.waveIdx, s)) }},
		{Name: "item", Lookup: func(s string) int32 { return int32(scoreMapIndex(p.itemByName, s)) }},
		{Name: "value"},
	}
	var batchErr error // a row's error, reported without the file's name
	err := codes.Read(ctx, files, cols, func(b *codes.Batch) error {
		batchErr = j.codesBatch(rw, b, ids)
		ids = ids[:0]
		if batchErr != nil {
			return batchErr
		}
		j.env.Task.Add(int64(b.Rows))
		return nil
	})
	if batchErr != nil {
		return batchErr
	}
	return err
}

// checkPartitionFile checks a responses file's footer: its row groups
// hold only trust's rows (checkPartitionStats).
func checkPartitionFile(path, trust string) error {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return err
	}
	defer pf.Close()
	return checkPartitionStats(pf, "trust", trust)
}

// codesBatch takes one row group of responses read by readCodes: ids
// are the study_ids its codes name.
func (j *scoreJob) codesBatch(rw *warehouse.RowWriter, b *codes.Batch, ids []string) error {
	sid, wave, item, val, valid := b.Vals[0], b.Vals[1], b.Vals[2], b.Vals[3], b.Valid[3]
	if len(sid) != b.Rows || len(wave) != b.Rows || len(item) != b.Rows || len(val) != b.Rows || valid != nil && len(valid) != b.Rows {
		return errors.New("columns of unequal lengths")
	}
	for r := range b.Rows {
		// A code repeating the row before's is the same participant.
		if r == 0 || sid[r] != sid[r-1] {
			if err := j.participant(rw, ids[sid[r]]); err != nil {
				return err
			}
		}
		if err := j.answer(int(wave[r]), int(item[r]), val[r], valid == nil || valid[r]); err != nil {
			return err
		}
	}
	return nil
}

// partitionFiles are the files of one trust= partition among a table's.
func partitionFiles(files []string, trust string) []string {
	var out []string
	dir := string(filepath.Separator) + "trust=" + trust + string(filepath.Separator)
	for _, f := range files {
		if strings.Contains(f, dir) {
			out = append(out, f)
		}
	}
	return out
}

// participantCursor walks the participants table of a trust in study_id
// order alongside its responses: the team, arm and withdrawal of each
// participant.
type participantCursor struct {
	scan *warehouse.ColumnScan
	row  int
}

// find moves to participant id (the ids asked for ascend) and returns
// their team, arm and withdrawal, and, when the cursor reads age_band and
// gender, their stratum (age band + "\x00" + gender; "" when either is
// null).
func (c *participantCursor) find(id string) (team, arm, stratum string, withdrawn bool, err error) {
	for {
		if c.scan.Cols == nil || c.row >= c.scan.Cols[0].Len() {
			ok, err := c.scan.Next()
			if err != nil {
				return "", "", "", false, fmt.Errorf("read participants: %w", err)
			}
			if !ok {
				return "", "", "", false, errors.New("responses name a participant missing from the participants table")
			}
			c.row = 0
		}
		sid, err := scoreStringColumn(c.scan.Cols[0])
		if err != nil {
			return "", "", "", false, fmt.Errorf("participants column study_id: %w", err)
		}
		for ; c.row < c.scan.Cols[0].Len(); c.row++ {
			switch p := sid(c.row); {
			case p < id:
				continue
			case p > id:
				return "", "", "", false, errors.New("responses name a participant missing from the participants table")
			}
			t, ok1 := c.scan.Cols[1].(*array.String)
			a, ok2 := c.scan.Cols[2].(*array.String)
			if !ok1 || !ok2 {
				return "", "", "", false, errors.New("participants columns team and arm are not strings")
			}
			wd, ok := c.scan.Cols[3].(*array.Boolean)
			if !ok {
				return "", "", "", false, errors.New("participants column withdrawn is not bool")
			}
			if len(c.scan.Cols) == 6 {
				g, ok1 := c.scan.Cols[4].(*array.String)
				s, ok2 := c.scan.Cols[5].(*array.String)
				if !ok1 || !ok2 {
					return "", "", "", false, errors.New("participants columns age_band and gender are not strings")
				}
				if g.IsValid(c.row) && s.IsValid(c.row) {
					stratum = g.Value(c.row) + "\x00" + s.Value(c.row)
				}
			}
			return t.Value(c.row), a.Value(c.row), stratum, wd.IsValid(c.row) && wd.Value(c.row), nil
		}
	}
}

// checkPartitionStats makes sure every row group of a partition's file
// holds only the partition's value in column name, from the column's
// statistics (which cpi always writes), without reading the column.
func checkPartitionStats(pf *file.Reader, name, value string) error {
	col := pf.MetaData().Schema.ColumnIndexByName(name)
	if col < 0 {
		return fmt.Errorf("column %s missing", name)
	}
	for i := range pf.NumRowGroups() {
		cc, err := pf.MetaData().RowGroup(i).ColumnChunk(col)
		if err != nil {
			return err
		}
		if cc.NumValues() == 0 {
			continue
		}
		st, err := cc.Statistics()
		if err != nil {
			return err
		}
		bs, ok := st.(*metadata.ByteArrayStatistics)
		if !ok || !bs.HasMinMax() || string(bs.Min()) != value || string(bs.Max()) != value {
			return errors.New("a responses partition holds rows of another trust (or its trust column has no statistics)")
		}
	}
	return nil
}

// answer records one responses row of the participant held: wave w and
// item ref (plan codes; −1: not defined by the study), its value unless
// null.
func (j *scoreJob) answer(w, ref int, v int32, ok bool) error {
	p := j.plan
	switch {
	case w < 0:
		return errors.New("responses name a wave the study does not define")
	case ref < 0:
		return errors.New("responses name an item the study does not define")
	}
	sw := &j.waves[w]
	sw.present = true
	if !ok {
		return nil
	}
	in, it := p.itemRefs[ref].inst, p.itemRefs[ref].item
	ip := p.insts[in]
	if d := ip.items[it]; int(v) < d.Min || int(v) > d.Max {
		return fmt.Errorf("a value of %s.%s is outside its range", ip.name, d.Name)
	}
	a := &sw.ans[in]
	a.val[it], a.ok[it] = v, true
	if k := p.svc.of[ref]; k >= 0 {
		j.svc.add(w, k, v)
	}
	return nil
}

// participant moves on to the participant of a row, if it is not the one
// held: the one held is scored and written first.
func (j *scoreJob) participant(rw *warehouse.RowWriter, id string) error {
	if id == j.id {
		return nil
	}
	if j.id != "" {
		if id < j.id {
			return errors.New("responses are not sorted by study_id")
		}
		if err := j.flush(rw); err != nil {
			return err
		}
	}
	return j.start(strings.Clone(id))
}

func scoreMapIndex(m map[string]int, s string) int {
	if i, ok := m[s]; ok {
		return i
	}
	return -1
}

// start clears the participant buffer for the next participant and finds
// their team and arm.
func (j *scoreJob) start(id string) error {
	j.id = id
	for w := range j.waves {
		sw := &j.waves[w]
		if !sw.present {
			continue
		}
		sw.present = false
		for i := range sw.ans {
			clear(sw.ans[i].ok)
		}
	}
	team, arm, stratum, withdrawn, err := j.people.find(id)
	if err != nil {
		return err
	}
	j.team, j.arm = j.strs[j.intern(team)], j.strs[j.intern(arm)]
	j.svc.enter(j.team, j.arm, withdrawn)
	j.stratum = j.strs[j.intern(stratum)]
	return nil
}

// flush scores the participant held and writes their rows: waves,
// instruments and scales in byte order.
func (j *scoreJob) flush(rw *warehouse.RowWriter) error {
	p := j.plan
	for w := range p.waves {
		sw := &j.waves[w]
		if !sw.present {
			continue
		}
		j.counts.participantWaves++
		for i, ip := range p.insts {
			if !ip.asked[w] {
				continue
			}
			if err := scoreInstrument(ip, &sw.ans[i], j.stratum, j.result[w][i]); err != nil {
				return err
			}
		}
		j.rel.add(p, w, sw.ans)
	}
	j.scoreAUC()
	c := &j.col
	base := &j.waves[0]
	for _, w := range p.waveOut {
		sw := &j.waves[w]
		if !sw.present {
			continue
		}
		for _, i := range p.instOut {
			ip := p.insts[i]
			if !ip.asked[w] {
				continue
			}
			for _, si := range ip.scaleOut {
				if w == 0 && ip.scales[si].method == "auc" {
					continue // an area from baseline exists after baseline only
				}
				r := j.result[w][i][si]
				var b scoreResult
				if base.present && ip.asked[0] {
					b = j.result[0][i][si]
				}
				rw.Str(c[0], j.id)
				rw.Str(c[1], p.waves[w])
				rw.Str(c[2], ip.name)
				rw.Str(c[3], ip.scales[si].name)
				rw.Str(c[4], j.trust)
				rw.Str(c[5], j.team)
				rw.Str(c[6], j.arm)
				rw.Float64(c[7], r.value, r.ok)
				rw.Int32(c[8], r.answered, true)
				rw.Int32(c[9], r.total, true)
				rw.Bool(c[10], r.prorated)
				rw.Float64(c[11], b.value, b.ok)
				rw.Float64(c[12], r.value-b.value, w != 0 && r.ok && b.ok)
				j.counts.rows++
				if err := rw.RowDone(); err != nil {
					return fmt.Errorf("write scores: %w", err)
				}
			}
		}
	}
	return nil
}

// scoreAUC fills the auc scales of the participant held, at every wave
// after the first they were interviewed at: the area under the from
// scale's curve from baseline to the wave (see QALYs). items_answered and
// items_total count the waves on the path with a value and on it.
func (j *scoreJob) scoreAUC() {
	p := j.plan
	var t, u []float64
	for i, ip := range p.insts {
		for si := range ip.scales {
			sp := &ip.scales[si]
			if sp.method != "auc" {
				continue
			}
			t, u = t[:0], u[:0]
			answered := int32(0)
			for w := range p.waves {
				v := scoreResult{}
				if j.waves[w].present && ip.asked[w] {
					v = j.result[w][i][sp.from]
				}
				if v.ok {
					answered++
				}
				t, u = append(t, p.months[w]), append(u, v.value)
				if w == 0 || !j.waves[w].present || !ip.asked[w] {
					continue
				}
				r := scoreResult{answered: answered, total: int32(w + 1)}
				if answered == r.total {
					r.value, r.ok = QALYs(t, u, p.discount), true
				}
				j.result[w][i][si] = r
			}
		}
	}
}

// QALYs is the area under a utility curve given at times t (months from
// baseline, ascending) by the trapezium rule, in years: Σ (t[k+1] − t[k])/12
// × (u[k] + u[k+1])/2, each part of the curve in year y from baseline
// (y = 0 the first) discounted by (1 + rate)^−y. A trapezium crossing a
// year's end is split there, the utility interpolated linearly, so with
// every time within the first year the result is the plain trapezium sum
// (DESIGN §13: no discounting within the first year).
func QALYs(t, u []float64, rate float64) float64 {
	var sum float64
	for k := 0; k+1 < len(t); k++ {
		a, b := t[k], t[k+1]
		ua, ub := u[k], u[k+1]
		for a < b {
			y := math.Floor(a / 12)
			end := min(b, (y+1)*12)
			ue := ub
			if end < b {
				ue = ua + (ub-ua)*(end-a)/(b-a)
			}
			area := (end - a) / 12 * (ua + ue) / 2
			if y > 0 {
				area /= math.Pow(1+rate, y)
			}
			sum += area
			ua, a = ue, end
		}
	}
	return sum
}

// scoreStringColumn reads a string column given plain or dictionary-encoded
// (read as a dictionary, a long column's repeated values are not copied out
// of the file's dictionary one by one).
func scoreStringColumn(a arrow.Array) (func(int) string, error) {
	switch c := a.(type) {
	case *array.String:
		return c.Value, nil
	case *array.Dictionary:
		dict, ok := c.Dictionary().(*array.String)
		idx, ok2 := c.Indices().(*array.Int32)
		if !ok || !ok2 {
			return nil, errors.New("not a dictionary of strings with int32 indices")
		}
		return func(r int) string { return dict.Value(int(idx.Value(r))) }, nil
	}
	return nil, errors.New("not a string column")
}
