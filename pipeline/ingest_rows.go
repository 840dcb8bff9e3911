package pipeline

import (
	"sort"

	"github.com/connectingpeople/cpi/schemas"
)

// interview is one accepted participant row, in canonical values.
type interview struct {
	line      int
	pid       string
	team      string
	wave      string
	date      int32 // days since 1970-01-01, nullInt when blank
	demo      [4]string
	living    int32
	withdrawn bool
	items     []int32 // the instrument fields' values in field order, nullInt when blank
}

// interviewed reports whether the row records an interview (it is dated).
func (iv *interview) interviewed() bool { return iv.date != nullInt }

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

// accumulator gathers a file's checked rows and applies the rules that span
// rows: duplicate keys, a team changed between waves, a follow-up dated
// before the baseline.
type accumulator struct {
	study *schemas.Study
	h     *header
	trust string

	idx        map[string]int // field positions by name
	itemFields []int          // fields that are instrument answers
	instOf     []*schemas.Instrument

	rows       int
	rejected   map[int]bool // row number → rejected
	problems   []Problem
	rowOf      []int            // row number of each candidate
	keys       map[string][]int // key → row numbers (valid keys, accepted or not)
	interviews []*interview
	ratings    []*rating
}

func newAccumulator(study *schemas.Study, h *header, trust string) *accumulator {
	a := &accumulator{study: study, h: h, trust: trust, idx: map[string]int{}, rejected: map[int]bool{}, keys: map[string][]int{}}
	for i, f := range h.fields {
		a.idx[f.Name] = i
		if f.Instrument != "" {
			a.itemFields = append(a.itemFields, i)
			in, _ := study.Instrument(f.Instrument)
			a.instOf = append(a.instOf, in)
		}
	}
	return a
}

func (a *accumulator) reject(row int, probs ...Problem) {
	a.rejected[row] = true
	a.problems = append(a.problems, probs...)
}

// add takes one checked row.
func (a *accumulator) add(p *parsedRow) {
	row := a.rows
	a.rows++
	if a.h.kind == schemas.KindFidelity {
		a.addRating(row, p)
		return
	}
	pid, wave := p.strs[a.idx["participant_id"]], p.strs[a.idx["wave"]]
	if pid != "" && wave != "" {
		k := pid + "\x00" + wave
		a.keys[k] = append(a.keys[k], row)
	}
	date := p.ints[a.idx["interview_date"]]
	answered := false
	for j, fi := range a.itemFields {
		if p.ints[fi] == nullInt {
			continue
		}
		answered = true
		if wave != "" && !a.instOf[j].AskedAt(wave) {
			p.fail(a.h.fields[fi].Name, CodeNotAsked, a.h.fields[fi].Name+" is not asked at the "+wave+" wave")
		}
	}
	if answered && date == nullInt && len(p.errors) == 0 {
		p.fail("interview_date", CodeDateMissing, "the row has answers but no interview_date")
	}
	if len(p.errors) > 0 {
		a.reject(row, p.errors...)
		return
	}
	iv := &interview{
		line: p.line, pid: pid, team: p.strs[a.idx["team_code"]], wave: wave, date: date,
		living:    p.ints[a.idx["living_alone"]],
		withdrawn: p.ints[a.idx["withdrawn"]] == 1,
		items:     make([]int32, len(a.itemFields)),
	}
	for i, name := range [4]string{"age_band", "gender", "ethnicity", "diagnosis_group"} {
		iv.demo[i] = p.strs[a.idx[name]]
	}
	for j, fi := range a.itemFields {
		iv.items[j] = p.ints[fi]
	}
	a.rowOf = append(a.rowOf, row)
	a.interviews = append(a.interviews, iv)
}

func (a *accumulator) addRating(row int, p *parsedRow) {
	team, period, rater := p.strs[a.idx["team_code"]], p.strs[a.idx["period"]], p.strs[a.idx["rater_id"]]
	if team != "" && period != "" && rater != "" {
		k := team + "\x00" + period + "\x00" + rater
		a.keys[k] = append(a.keys[k], row)
	}
	if len(p.errors) > 0 {
		a.reject(row, p.errors...)
		return
	}
	r := &rating{line: p.line, team: team, period: period, rater: rater, role: p.strs[a.idx["rater_role"]], date: p.ints[a.idx["rating_date"]]}
	for _, c := range a.study.Fidelity.Components {
		r.values = append(r.values, p.ints[a.idx[c.Code]])
	}
	a.rowOf = append(a.rowOf, row)
	a.ratings = append(a.ratings, r)
}

// finish applies the cross-row rules and returns the row problems (sorted
// by line, then column) and the number of accepted rows.
func (a *accumulator) finish() ([]Problem, int) {
	dupCol := "participant_id"
	if a.h.kind == schemas.KindFidelity {
		dupCol = "rater_id"
	}
	dupRows := map[int]bool{}
	for _, rows := range a.keys {
		if len(rows) > 1 {
			for _, r := range rows {
				dupRows[r] = true
			}
		}
	}
	lineOf := func(i int) int {
		if a.h.kind == schemas.KindFidelity {
			return a.ratings[i].line
		}
		return a.interviews[i].line
	}
	drop := map[int]bool{} // candidate index → rejected now
	for i, row := range a.rowOf {
		if dupRows[row] {
			drop[i] = true
			a.reject(row, Problem{Line: lineOf(i), Column: dupCol, Code: CodeDuplicateKey, Severity: SeverityError,
				Message: "the same key appears on more than one row of the file; all of them are rejected"})
		}
	}
	if a.h.kind == schemas.KindParticipants {
		a.crossWave(drop)
	}
	keepIv := a.interviews[:0]
	keepR := a.ratings[:0]
	for i := range a.rowOf {
		if drop[i] {
			continue
		}
		if a.h.kind == schemas.KindFidelity {
			keepR = append(keepR, a.ratings[i])
		} else {
			keepIv = append(keepIv, a.interviews[i])
		}
	}
	a.interviews, a.ratings = keepIv, keepR
	sort.SliceStable(a.problems, func(i, j int) bool {
		if a.problems[i].Line != a.problems[j].Line {
			return a.problems[i].Line < a.problems[j].Line
		}
		return a.problems[i].Column < a.problems[j].Column
	})
	return a.problems, a.rows - len(a.rejected)
}

// crossWave rejects later waves whose team differs from the baseline's, or
// whose date is before the baseline's.
func (a *accumulator) crossWave(drop map[int]bool) {
	base := map[string]int{} // pid → candidate index of the baseline row
	bw := a.study.BaselineWave()
	for i, iv := range a.interviews {
		if !drop[i] && iv.wave == bw {
			base[iv.pid] = i
		}
	}
	for i, iv := range a.interviews {
		if drop[i] || iv.wave == bw {
			continue
		}
		b, ok := base[iv.pid]
		if !ok {
			continue
		}
		bl := a.interviews[b]
		switch {
		case iv.team != bl.team:
			drop[i] = true
			a.reject(a.rowOf[i], Problem{Line: iv.line, Column: "team_code", Code: CodeTeamChanged, Severity: SeverityError,
				Message: "team_code differs from the participant's baseline team; allocation is by the baseline team"})
		case iv.date != nullInt && bl.date != nullInt && iv.date < bl.date:
			drop[i] = true
			a.reject(a.rowOf[i], Problem{Line: iv.line, Column: "interview_date", Code: CodeFollowupEarly, Severity: SeverityError,
				Message: "interview_date is before the participant's baseline interview"})
		}
	}
}

func (a *accumulator) rejectedRows() int { return len(a.rejected) }
