package score

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// service_sums (DESIGN §13) are the units of every costed service (an item
// of a cost scale) summed exactly, in integers, per trust, wave, team, arm,
// withdrawn and service, over the responses rows with a value: compare's
// service_use is made from them (its own rules, arms and unit costs
// applied there) without passing over responses again. Score sums them as
// it reads each row (svcPlan.of names a row's service), so they cost one
// comparison a row.

// svcPlan is the study's costed services: their names in the study's
// order (instruments, then scales, then items), and of[ref] the service of
// the item itemRefs[ref] (−1: not costed).
type svcPlan struct {
	names []string
	of    []int
}

func newSvcPlan(s *schemas.Study, p *scorePlan) svcPlan {
	sp := svcPlan{of: make([]int, len(p.itemRefs))}
	for i := range sp.of {
		sp.of[i] = -1
	}
	for _, in := range s.Instruments {
		for k := range in.Scales {
			if in.Scales[k].Method != "cost" {
				continue
			}
			for _, item := range in.ScaleItems(&in.Scales[k]) {
				ref, ok := p.itemByName[item]
				if !ok || sp.of[ref] >= 0 {
					continue
				}
				sp.of[ref] = len(sp.names)
				sp.names = append(sp.names, item)
			}
		}
	}
	return sp
}

// svcSums are one trust's sums: per group of participants (team, arm,
// withdrawn), [wave × service].
type svcSums struct {
	waves, services int
	groups          []svcGroup
	cur             []svcAcc // the group of the participant held
}

type svcGroup struct {
	team, arm string
	withdrawn bool
	acc       []svcAcc
}

// svcAcc is one cell's sums; over marks a sum beyond int64 (written null).
type svcAcc struct {
	n, using, sum, sq int64
	sumOver, sqOver   bool
}

// enter makes the group of a participant (team and arm are interned
// strings) the one rows are added to.
func (s *svcSums) enter(team, arm string, withdrawn bool) {
	for i := range s.groups {
		if g := &s.groups[i]; g.team == team && g.arm == arm && g.withdrawn == withdrawn {
			s.cur = g.acc
			return
		}
	}
	s.groups = append(s.groups, svcGroup{team: team, arm: arm, withdrawn: withdrawn, acc: make([]svcAcc, s.waves*s.services)})
	s.cur = s.groups[len(s.groups)-1].acc
}

// add counts v units of service k at wave w for the participant held.
func (s *svcSums) add(w, k int, v int32) {
	if s.cur == nil {
		return // no participant held (responses without a study_id)
	}
	a := &s.cur[w*s.services+k]
	a.n++
	if v > 0 {
		a.using++
	}
	x := int64(v)
	var ok bool
	if a.sum, ok = addInt64(a.sum, x); !ok {
		a.sumOver = true
	}
	if a.sq, ok = addInt64(a.sq, x*x); !ok { // |x| ≤ 2³¹: x² fits
		a.sqOver = true
	}
}

// addInt64 is a + b and whether it did not overflow.
func addInt64(a, b int64) (int64, bool) {
	c := a + b
	return c, (c > a) == (b > 0)
}

// writeServiceSums writes the trust's service_sums file, in key order
// (wave, team, arm, withdrawn, service; byte order).
func (j *scoreJob) writeServiceSums(tx *warehouse.Tx) error {
	env, p, s := j.env, j.plan, &j.svc
	tb := env.Study.Tables.Table("service_sums")
	schema := warehouse.ArrowSchema(env, "service_sums", nil)
	tf, err := tx.CreateTableFile(schema, "service_sums", "trust", j.trust, "data")
	if err != nil {
		return err
	}
	col := func(c string) int { return warehouse.ColIndex(tb, c) }
	cWave, cTrust, cTeam, cArm, cWd, cSvc := col("wave"), col("trust"), col("team"), col("arm"), col("withdrawn"), col("service")
	cN, cUsing, cSum, cSq := col("n"), col("n_using"), col("sum_units"), col("sum_units_sq")
	slices.SortFunc(s.groups, func(a, b svcGroup) int {
		return cmp.Or(strings.Compare(a.team, b.team), strings.Compare(a.arm, b.arm), cmp.Compare(b2i(a.withdrawn), b2i(b.withdrawn)))
	})
	order := make([]int, len(p.svc.names))
	for k := range order {
		order[k] = k
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(p.svc.names[a], p.svc.names[b]) })
	rw := warehouse.NewRowWriter(schema, tf)
	for _, w := range p.waveOut {
		for _, g := range s.groups {
			for _, k := range order {
				a := g.acc[w*s.services+k]
				if a.n == 0 {
					continue
				}
				rw.Str(cTrust, j.trust)
				rw.Str(cWave, p.waves[w])
				rw.Str(cTeam, g.team)
				rw.Str(cArm, g.arm)
				rw.Bool(cWd, g.withdrawn)
				rw.Str(cSvc, p.svc.names[k])
				rw.Int64(cN, a.n)
				rw.Int64(cUsing, a.using)
				int64OrNull(rw, cSum, a.sum, !a.sumOver)
				int64OrNull(rw, cSq, a.sq, !a.sqOver)
				if err := rw.RowDone(); err != nil {
					rw.Abort()
					return fmt.Errorf("write service_sums: %w", err)
				}
			}
		}
	}
	if err := rw.Close(); err != nil {
		return fmt.Errorf("write service_sums: %w", err)
	}
	return nil
}

func int64OrNull(rw *warehouse.RowWriter, col int, v int64, ok bool) {
	if ok {
		rw.Int64(col, v)
	} else {
		rw.Null(col)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
