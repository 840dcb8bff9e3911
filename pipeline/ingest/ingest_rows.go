package ingest

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/connectingpeople/cpi/schemas"
)

// Interview is one accepted participant row, in canonical values.
type Interview struct {
	Line      int
	Pid       string
	Team      string
	Wave      string
	Date      int32    // days since 1970-01-01, nullInt when blank
	Demo      []string // the study's coded demographics (CodedDemographics), "" when blank
	Flags     []int32  // its 0/1 demographics (BinaryDemographics), nullInt when blank
	Withdrawn bool
	Items     []int32 // the instrument fields' values in field order, nullInt when blank
}

// interviewed reports whether the row records an interview (it is dated).
func (iv *Interview) interviewed() bool { return iv.Date != NullInt }

// rating is one accepted fidelity row.
type rating struct {
	line   int
	team   string
	period string
	rater  string
	role   string
	date   int32
	values []int32 // per component, nullInt when blank
}

// exportSink receives a file's accepted rows: one participant at a time,
// in participant order, or all ratings at once. Nothing it writes is
// visible until close; abort drops it.
type exportSink interface {
	participant(ivs []*Interview) error
	ratings(rs []*rating) error
	close() error
	abort()
}

// errUnsorted stops a streaming read of a participants export whose rows
// are not in participant order; the export is then read again and sorted.
var errUnsorted = errors.New("participants not in order")

// groupRow is one row of a participant's group.
type groupRow struct {
	line  int
	pid   string
	wave  string
	iv    *Interview // nil when the row is rejected on its own, or spilled
	probs []Problem
	// buffered mode: the interview is in the spill file, not in memory
	at      Spilled
	spilled bool
}

// accumulator gathers a file's checked rows and applies the rules that span
// rows: duplicate keys, a team changed between waves, a follow-up dated
// before the baseline.
//
// Participants exports in participant order (as databases export them) are
// streamed: each participant's rows are judged and handed to the sink as
// soon as the next participant starts, so memory follows one participant.
// With buffered set, rows are kept and sorted at the end instead: for
// exports in any other order, their interviews written to a temporary file
// meanwhile (see rowSpill). Fidelity exports are small and always kept.
type accumulator struct {
	study    *schemas.Study
	h        *header
	trust    string
	sink     exportSink // nil: validate only
	buffered bool
	sortDir  string // buffered: where the spill file goes

	idx        map[string]int // field positions by name
	demoFields []int          // fields of the coded demographics
	flagFields []int          // fields of the 0/1 demographics
	itemFields []int          // fields that are instrument answers
	instOf     []*schemas.Instrument

	rows     int
	rejected int
	accepted int // rows handed on (to the sink, when there is one)
	units    int // participants (or ratings) with a row handed on
	probs    *problemSet
	err      error // the first error of keeping problems

	curPid string
	group  []groupRow
	buf    []groupRow   // buffered mode
	spill  *rowSpill    // buffered mode: the interviews of buf
	free   []*Interview // interviews to reuse once their group is judged

	keys    map[string][]int // fidelity: key → candidate indexes
	ratingL []*rating
	rateRow []int
}

// newAccumulator: sortDir "" streams; otherwise rows are buffered and
// sorted, their interviews spilled to a file in sortDir.
// Row problems go to probs.
func newAccumulator(study *schemas.Study, h *header, trust string, sink exportSink, sortDir string, probs *problemSet) *accumulator {
	a := &accumulator{study: study, h: h, trust: trust, sink: sink, buffered: sortDir != "", sortDir: sortDir, idx: map[string]int{}, keys: map[string][]int{}, probs: probs}
	for i, f := range h.fields {
		a.idx[f.Name] = i
	}
	for _, name := range study.CodedDemographics() {
		a.demoFields = append(a.demoFields, a.idx[name])
	}
	for _, name := range study.BinaryDemographics() {
		a.flagFields = append(a.flagFields, a.idx[name])
	}
	for i, f := range h.fields {
		if f.Instrument != "" {
			a.itemFields = append(a.itemFields, i)
			in, _ := study.Instrument(f.Instrument)
			a.instOf = append(a.instOf, in)
		}
	}
	return a
}

func (a *accumulator) reject(probs ...Problem) {
	a.rejected++
	if err := a.probs.Add(probs...); err != nil && a.err == nil {
		a.err = err
	}
}

// add takes one checked row. It returns errUnsorted when a streamed
// participants export turns out not to be in participant order.
func (a *accumulator) add(p *parsedRow) error {
	if a.err != nil {
		return a.err
	}
	row := a.rows
	a.rows++
	if a.h.kind == schemas.KindFidelity {
		a.addRating(row, p)
		return nil
	}
	pid, wave := p.strs[a.idx["participant_id"]], p.strs[a.idx["wave"]]
	date := p.ints[a.idx["interview_date"]]
	answered := false
	for j, fi := range a.itemFields {
		if p.ints[fi] == NullInt {
			continue
		}
		answered = true
		if wave != "" && !a.instOf[j].AskedAt(wave) {
			p.fail(a.h.fields[fi].Name, CodeNotAsked, a.h.fields[fi].Name+" is not asked at the "+wave+" wave")
		}
	}
	if answered && date == NullInt && len(p.errors) == 0 {
		p.fail("interview_date", CodeDateMissing, "the row has answers but no interview_date")
	}
	g := groupRow{line: p.line, pid: pid, wave: wave}
	if len(p.errors) > 0 {
		g.probs = append([]Problem(nil), p.errors...)
	} else {
		g.iv = a.newInterview(p, pid, wave, date)
	}
	if pid == "" { // a blank or malformed id is an error of its own: no group
		a.reject(g.probs...)
		return nil
	}
	if a.buffered {
		return a.keep(g)
	}
	if pid != a.curPid {
		if a.curPid != "" && pid < a.curPid {
			return errUnsorted
		}
		if err := a.flushGroup(); err != nil {
			return err
		}
		a.curPid = pid
	}
	a.group = append(a.group, g)
	return nil
}

// keep holds a row of a buffered export until the end: its interview goes
// to the spill file, and its id and wave are copied out of the row read
// (which would otherwise stay in memory with them).
func (a *accumulator) keep(g groupRow) error {
	g.pid = strings.Clone(g.pid)
	g.wave = a.studyWave(g.wave)
	if g.iv != nil {
		if a.spill == nil {
			s, err := NewRowSpill(a.sortDir)
			if err != nil {
				return err
			}
			a.spill = s
		}
		at, err := a.spill.Put(g.iv)
		if err != nil {
			return err
		}
		a.free = append(a.free, g.iv)
		g.iv, g.at, g.spilled = nil, at, true
	}
	a.buf = append(a.buf, g)
	return nil
}

// studyWave is the study's own copy of wave (blank or a wave code, once
// the row is checked).
func (a *accumulator) studyWave(wave string) string {
	for _, w := range a.study.Waves {
		if w == wave {
			return w
		}
	}
	return strings.Clone(wave)
}

// unspill reads the interviews of a buffered group back.
func (a *accumulator) unspill(g []groupRow) error {
	for i := range g {
		if !g[i].spilled {
			continue
		}
		iv := &Interview{}
		if n := len(a.free); n > 0 {
			iv = a.free[n-1]
			a.free = a.free[:n-1]
		}
		if err := a.spill.Get(g[i].at, iv); err != nil {
			return err
		}
		g[i].iv = iv
	}
	return nil
}

// close releases the spill file, if there is one.
func (a *accumulator) close() {
	a.spill.Close()
	a.spill = nil
}

func (a *accumulator) newInterview(p *parsedRow, pid, wave string, date int32) *Interview {
	var items []int32
	var demo []string
	var flags []int32
	if n := len(a.free); n > 0 {
		items, demo, flags = a.free[n-1].Items, a.free[n-1].Demo, a.free[n-1].Flags
		a.free = a.free[:n-1]
	} else {
		items = make([]int32, len(a.itemFields))
		demo = make([]string, len(a.demoFields))
		flags = make([]int32, len(a.flagFields))
	}
	iv := &Interview{
		Line: p.line, Pid: pid, Team: p.strs[a.idx["team_code"]], Wave: wave, Date: date,
		Withdrawn: p.ints[a.idx["withdrawn"]] == 1,
		Items:     items, Demo: demo, Flags: flags,
	}
	for i, fi := range a.demoFields {
		iv.Demo[i] = p.strs[fi]
	}
	for i, fi := range a.flagFields {
		iv.Flags[i] = p.ints[fi]
	}
	for j, fi := range a.itemFields {
		iv.Items[j] = p.ints[fi]
	}
	return iv
}

// flushGroup judges the rows of one participant and hands the accepted
// ones, in wave order, to the sink.
func (a *accumulator) flushGroup() error {
	g := a.group
	a.group = a.group[:0]
	if len(g) == 0 {
		return nil
	}
	perWave := map[string]int{}
	for _, r := range g {
		if r.wave != "" {
			perWave[r.wave]++
		}
	}
	var ok []*Interview
	for i := range g {
		r := &g[i]
		if perWave[r.wave] > 1 {
			r.probs = append(r.probs, Problem{Line: r.line, Column: "participant_id", Code: CodeDuplicateKey, Severity: SeverityError,
				Message: "the same participant and wave appear on more than one row of the file; all of them are rejected"})
			r.iv = nil
		}
		if r.iv == nil {
			a.reject(r.probs...)
			continue
		}
		ok = append(ok, r.iv)
	}
	ok = a.crossWave(ok)
	a.accepted += len(ok)
	if len(ok) > 0 {
		a.units++
	}
	waveOrder := a.study.WaveIndex
	sort.Slice(ok, func(i, j int) bool { return waveOrder(ok[i].Wave) < waveOrder(ok[j].Wave) })
	var err error
	if a.sink != nil && len(ok) > 0 {
		err = a.sink.participant(ok) // the sink keeps nothing of them
	}
	for _, r := range g {
		if r.iv != nil {
			a.free = append(a.free, r.iv)
		}
	}
	return err
}

// crossWave rejects later waves whose team differs from the baseline's, or
// whose date is before the baseline's; it returns the rows kept. Without a
// baseline row, the team of the earliest wave is the reference: every
// accepted row of a participant has one team (scores and the comparison
// rely on it).
func (a *accumulator) crossWave(ivs []*Interview) []*Interview {
	bw := a.study.BaselineWave()
	var base, first *Interview
	for _, iv := range ivs {
		if iv.Wave == bw {
			base = iv
		}
		if first == nil || a.study.WaveIndex(iv.Wave) < a.study.WaveIndex(first.Wave) {
			first = iv
		}
	}
	ref, msg := base, "team_code differs from the participant's baseline team; allocation is by the baseline team"
	if base == nil {
		ref, msg = first, "team_code differs from the team at the participant's first interview in the file (there is no baseline row); allocation is by one team"
	}
	if ref == nil {
		return ivs
	}
	kept := ivs[:0]
	for _, iv := range ivs {
		switch {
		case iv == ref:
		case iv.Team != ref.Team:
			a.reject(Problem{Line: iv.Line, Column: "team_code", Code: CodeTeamChanged, Severity: SeverityError, Message: msg})
			continue
		case base != nil && iv.Date != NullInt && base.Date != NullInt && iv.Date < base.Date:
			a.reject(Problem{Line: iv.Line, Column: "interview_date", Code: CodeFollowupEarly, Severity: SeverityError,
				Message: "interview_date is before the participant's baseline interview"})
			continue
		}
		kept = append(kept, iv)
	}
	return kept
}

func (a *accumulator) addRating(row int, p *parsedRow) {
	team, period, rater := p.strs[a.idx["team_code"]], p.strs[a.idx["period"]], p.strs[a.idx["rater_id"]]
	if team != "" && period != "" && rater != "" {
		k := team + "\x00" + period + "\x00" + rater
		a.keys[k] = append(a.keys[k], row)
	}
	if len(p.errors) > 0 {
		a.reject(p.errors...)
		return
	}
	r := &rating{line: p.line, team: team, period: period, rater: rater, role: p.strs[a.idx["rater_role"]], date: p.ints[a.idx["rating_date"]]}
	for _, c := range a.study.Fidelity.Components {
		r.values = append(r.values, p.ints[a.idx[c.Code]])
	}
	a.rateRow = append(a.rateRow, row)
	a.ratingL = append(a.ratingL, r)
}

// finish judges what is left, hands it to the sink, and returns the number
// of accepted rows; the row problems are in the accumulator's problemSet.
func (a *accumulator) finish() (int, error) {
	if a.h.kind == schemas.KindFidelity {
		dup := map[int]bool{}
		for _, rows := range a.keys {
			if len(rows) > 1 {
				for _, r := range rows {
					dup[r] = true
				}
			}
		}
		var kept []*rating
		for i, r := range a.ratingL {
			if dup[a.rateRow[i]] {
				a.reject(Problem{Line: r.line, Column: "rater_id", Code: CodeDuplicateKey, Severity: SeverityError,
					Message: "the same team, period and rater appear on more than one row of the file; all of them are rejected"})
				continue
			}
			kept = append(kept, r)
		}
		a.accepted += len(kept)
		a.units += len(kept)
		if a.sink != nil {
			if err := a.sink.ratings(kept); err != nil {
				return 0, err
			}
		}
	} else if a.buffered {
		if a.spill != nil {
			if err := a.spill.Done(); err != nil {
				return 0, err
			}
		}
		sort.SliceStable(a.buf, func(i, j int) bool { return a.buf[i].pid < a.buf[j].pid })
		for i := 0; i < len(a.buf); {
			j := i
			for j < len(a.buf) && a.buf[j].pid == a.buf[i].pid {
				j++
			}
			a.group = append(a.group[:0], a.buf[i:j]...)
			if err := a.unspill(a.group); err != nil {
				return 0, err
			}
			if err := a.flushGroup(); err != nil {
				return 0, err
			}
			i = j
		}
		a.buf = nil
	} else if err := a.flushGroup(); err != nil {
		return 0, err
	}
	if a.err != nil {
		return 0, a.err
	}
	if a.accepted+a.rejected != a.rows {
		return 0, fmt.Errorf("row accounting: %d rows read, %d accepted, %d rejected", a.rows, a.accepted, a.rejected)
	}
	return a.accepted, nil
}
