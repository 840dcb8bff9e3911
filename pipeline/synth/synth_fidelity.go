package synth

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/connectingpeople/cpi/schemas"
)

// Fidelity ratings of the synthetic study: every team in every rating
// period, rated by a researcher and one or two of the team's practitioners.
// A team has a fidelity level (intervention teams mostly high or moderate,
// control teams moderate or low, intervention teams improving between
// periods) and its own strong and weak components that persist across
// periods, so components are correlated within a team.

const (
	synthFidInterv   = 2.9  // mean component rating, intervention teams (0–4)
	synthFidControl  = 1.85 // mean component rating, control teams
	synthFidTeamSD   = 0.35
	synthFidCompSD   = 0.4  // a team's own strength in a component
	synthFidRaterSD  = 0.2  // a rater's leniency
	synthFidNoiseSD  = 0.45 // one rating of one component
	synthFidGain     = 0.15 // intervention teams' improvement per period
	synthFidPBlank   = 0.07 // a rating with one component blank
	synthFidPractMax = 3    // practitioners on a team's rota
)

// synthRatings generates one trust's fidelity ratings.
func synthRatings(ctx context.Context, s *schemas.Study, opts SynthOptions, trust string, visit func(*SynthRating) error) error {
	f := &s.Fidelity
	row := &SynthRating{Trust: trust}
	for _, c := range f.Components {
		row.ComponentNames = append(row.ComponentNames, c.Code)
	}
	row.Components = make([]SynthValue, len(f.Components))
	researcher, practitioner := f.RaterRoles[0], f.RaterRoles[len(f.RaterRoles)-1]
	for ti, team := range synthTeamsOf(s, trust) {
		if err := ctx.Err(); err != nil {
			return err
		}
		key := synthKey(opts.Seed, "fidelity", team.Code)
		r := synthRand(key, 0)
		mean := synthFidControl
		gain := 0.03
		if team.Arm == s.InterventionArm() {
			mean, gain = synthFidInterv, synthFidGain
		}
		level := mean + synthFidTeamSD*r.NormFloat64()
		strength := make([]float64, len(f.Components))
		for k := range strength {
			strength[k] = synthFidCompSD*r.NormFloat64() + 0.25*math.Sin(2.1*float64(k)+0.5)
		}
		researcherID := fmt.Sprintf("R%02d", 1+r.IntN(3))
		rota := r.Perm(synthFidPractMax)
		for p, period := range s.Periods {
			r := synthRand(key, uint64(p+1))
			month := synthPeriodMonth(period, p)
			first := synthStudyStart.AddDate(0, month-1, 0)
			n := 2 + r.IntN(2)
			for rater := 0; rater < n; rater++ {
				date := synthNextWeekday(first.AddDate(0, 0, r.IntN(26)))
				bias := synthFidRaterSD * r.NormFloat64()
				row.Team, row.Arm, row.Period, row.Date = team.Code, team.Arm, period, date
				if rater == 0 {
					row.RaterID, row.RaterRole = researcherID, researcher
				} else {
					row.RaterID, row.RaterRole = fmt.Sprintf("R%d%d", ti+1, 1+rota[rater-1]), practitioner
				}
				for k := range row.Components {
					x := level + gain*float64(p) + strength[k] + bias + synthFidNoiseSD*r.NormFloat64()
					x = min(max(x, 0), 4)
					v := f.Min + int(math.Round(x/4*float64(f.Max-f.Min)))
					row.Components[k] = SynthValue{Value: int32(v), Valid: true}
				}
				if r.Float64() < synthFidPBlank {
					row.Components[r.IntN(len(row.Components))] = SynthValue{}
				}
				if date.After(opts.ExportDate) {
					continue // rated after the export was made
				}
				if err := visit(row); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// synthPeriodMonth is the study month a rating period falls in: the number
// in its name ("month3" → 3), else every three months from the first.
func synthPeriodMonth(period string, index int) int {
	digits := strings.TrimLeftFunc(period, func(c rune) bool { return c < '0' || c > '9' })
	if m, err := strconv.Atoi(digits); err == nil && m >= 1 && m <= 120 {
		return m
	}
	return 3 * (index + 1)
}

// synthNextWeekday moves a weekend date on to the Monday.
func synthNextWeekday(d time.Time) time.Time {
	switch d.Weekday() {
	case time.Saturday:
		return d.AddDate(0, 0, 2)
	case time.Sunday:
		return d.AddDate(0, 0, 1)
	}
	return d
}

// SynthRatingDateBounds are the first and last day a period's ratings may
// fall on.
func SynthRatingDateBounds(period string, index int) (time.Time, time.Time) {
	first := synthStudyStart.AddDate(0, synthPeriodMonth(period, index)-1, 0)
	return first, first.AddDate(0, 1, -1)
}
