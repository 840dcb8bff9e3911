package fidelity

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"gonum.org/v1/plot"

	"github.com/connectingpeople/cpi/pipeline/report"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// Report writes the fidelity report of one team (DESIGN §10) as one
// self-contained HTML page.
//
// An intervention team's report is for its feedback meetings: the team's
// total and band per rating period against the study's thresholds, its
// components against their maximum, the change between periods, the team
// against the median of the other intervention teams (never named), the
// lowest components with the practice they stand for and a suggestion, and
// the raters per period.
//
// A control team's report is for the study team only, to monitor
// contamination: its own totals and bands per period against the
// thresholds, its own component means and its raters, and nothing else: no
// change narrative, no comparison with the intervention teams, no practice
// or suggestion (a control team given the intervention's coaching is a
// contaminated control). cpi run writes none (see ReportTeams).
//
// Counts of raters go through disclosure control (Disclosure). It reads
// fidelity, fidelity_components and fidelity_ratings (only to count raters
// by role) from the generation at genDir. It fails when team is not a study
// team or the fidelity tables have not been written (run the fidelity stage
// first); a team without ratings gets a report that says so. The same
// tables give the same bytes.
func Report(ctx context.Context, env warehouse.Env, genDir, team string, out io.Writer) error {
	if _, ok := env.Study.Team(team); !ok {
		return fmt.Errorf("fidelity report: %s is not a team of the study (teams: %s)", team, strings.Join(env.Study.TeamCodes(), ", "))
	}
	data, err := loadReportData(ctx, env.Study, genDir)
	if err != nil {
		return fmt.Errorf("fidelity report: %w", err)
	}
	t, err := report.Parse(templateFS, templateFile)
	if err != nil {
		return fmt.Errorf("fidelity report: %w", err)
	}
	return render(t, env, data, team, out)
}

// WriteReportFiles writes the fidelity report of each of teams to
// path(team), each file atomically and 0640, reading the generation at
// genDir once. It fails on a team the study does not define, and on a team
// code that is not a plain file name (path may build the file's name from it).
func WriteReportFiles(ctx context.Context, env warehouse.Env, genDir string, teams []string, path func(team string) string) error {
	for _, team := range teams {
		if _, ok := env.Study.Team(team); !ok {
			return fmt.Errorf("fidelity report: %s is not a team of the study (teams: %s)", team, strings.Join(env.Study.TeamCodes(), ", "))
		}
		if err := warehouse.CheckPathElem("team code", team); err != nil {
			return fmt.Errorf("fidelity report: %w", err)
		}
	}
	task := env.Progress.Start("report fidelity", "reports", int64(len(teams)))
	defer task.Done()
	data, err := loadReportData(ctx, env.Study, genDir)
	if err != nil {
		return fmt.Errorf("fidelity report: %w", err)
	}
	t, err := report.Parse(templateFS, templateFile)
	if err != nil {
		return fmt.Errorf("fidelity report: %w", err)
	}
	for _, team := range teams {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := warehouse.WriteFileAtomic(path(team), warehouse.FileMode, func(w io.Writer) error {
			return render(t, env, data, team, w)
		})
		if err != nil {
			return fmt.Errorf("fidelity report %s: %w", team, err)
		}
		task.Add(1)
	}
	return nil
}

// ReportTeams lists the teams whose fidelity reports are written
// by default, in study order: the intervention arm's teams (the first arm),
// whose reports are fed back to them; with control, every team, the
// control teams' reports being for the study team's monitoring of
// contamination.
func ReportTeams(s *schemas.Study, control bool) []string {
	var out []string
	for _, t := range s.Teams {
		if control || t.Arm == s.InterventionArm() {
			out = append(out, t.Code)
		}
	}
	return out
}

// WriteReports writes the fidelity report of every intervention
// team into the generation being written, as reports/fidelity-<TEAM>.html
// (0640), and removes the reports of other teams (control teams, and teams
// the study no longer defines): a report in the warehouse's reports folder
// is one that may go to its team. It reads what the fidelity stage wrote
// into tx, so it runs after it.
func WriteReports(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
	teams := ReportTeams(env.Study, false)
	old, err := filepath.Glob(tx.Path("reports", "fidelity-*.html"))
	if err != nil {
		return fmt.Errorf("fidelity reports: %w", err)
	}
	for _, p := range old {
		team := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "fidelity-"), ".html")
		if !slices.Contains(teams, team) {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("fidelity reports: %w", err)
			}
		}
	}
	return WriteReportFiles(ctx, env, tx.Dir, teams, func(team string) string {
		return tx.Path("reports", "fidelity-"+team+".html")
	})
}

// Key is a team and a rating period: a row of the fidelity table.
type Key struct{ Team, Period string }

// Summary is a row of the fidelity table.
type Summary struct {
	NRaters               int
	Total, Max, Pct, icc  float64
	TotalOK, PctOK, iccOK bool
	Band, lowest          string
}

// ReportData is what the fidelity reports are made from.
type ReportData struct {
	Summary map[Key]Summary
	// Comps holds component means by position in the study definition; NaN
	// when nobody rated the component.
	Comps map[Key][]float64
	// Roles counts the distinct raters of each team × period by role.
	Roles map[Key]map[string]int
	// Provenance is the data cut-off (nil: not read).
	Provenance *report.Provenance
}

func loadReportData(ctx context.Context, s *schemas.Study, genDir string) (*ReportData, error) {
	for _, table := range []string{"fidelity", "fidelity_components"} {
		files, err := warehouse.TableFiles(genDir, table)
		if err != nil {
			return nil, fmt.Errorf("read table %s: %w", table, err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("table %s has not been written: run cpi fidelity (or cpi run) first", table)
		}
	}
	d := &ReportData{
		Summary: map[Key]Summary{},
		Comps:   map[Key][]float64{},
		Roles:   map[Key]map[string]int{},
	}
	err := warehouse.ScanTable(ctx, genDir, "fidelity", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "team", "period", "n_raters", "total", "max", "pct", "band", "lowest_components", "icc2_1")
		if err != nil {
			return err
		}
		team, _ := cols[0].(*array.String)
		period, _ := cols[1].(*array.String)
		n, _ := cols[2].(*array.Int32)
		total, _ := cols[3].(*array.Float64)
		max, _ := cols[4].(*array.Float64)
		pct, _ := cols[5].(*array.Float64)
		band, _ := cols[6].(*array.String)
		lowest, _ := cols[7].(*array.String)
		icc, _ := cols[8].(*array.Float64)
		if team == nil || period == nil || n == nil || total == nil || max == nil || pct == nil || band == nil || lowest == nil || icc == nil {
			return fmt.Errorf("table fidelity has unexpected column types")
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			sm := Summary{NRaters: int(n.Value(i)), Max: max.Value(i)}
			if !total.IsNull(i) {
				sm.Total, sm.TotalOK = total.Value(i), true
			}
			if !pct.IsNull(i) {
				sm.Pct, sm.PctOK = pct.Value(i), true
			}
			if !icc.IsNull(i) {
				sm.icc, sm.iccOK = icc.Value(i), true
			}
			if !band.IsNull(i) {
				sm.Band = band.Value(i)
			}
			if !lowest.IsNull(i) {
				sm.lowest = lowest.Value(i)
			}
			d.Summary[Key{Team: team.Value(i), Period: period.Value(i)}] = sm
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	compPos := map[string]int{}
	for i, c := range s.Fidelity.Components {
		compPos[c.Code] = i
	}
	err = warehouse.ScanTable(ctx, genDir, "fidelity_components", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "team", "period", "component", "mean")
		if err != nil {
			return err
		}
		team, _ := cols[0].(*array.String)
		period, _ := cols[1].(*array.String)
		comp, _ := cols[2].(*array.String)
		mean, _ := cols[3].(*array.Float64)
		if team == nil || period == nil || comp == nil || mean == nil {
			return fmt.Errorf("table fidelity_components has unexpected column types")
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			k, ok := compPos[comp.Value(i)]
			if !ok {
				continue // a component the study no longer defines
			}
			key := Key{Team: team.Value(i), Period: period.Value(i)}
			means := d.Comps[key]
			if means == nil {
				means = make([]float64, len(s.Fidelity.Components))
				for j := range means {
					means[j] = math.NaN()
				}
				d.Comps[key] = means
			}
			if !mean.IsNull(i) {
				means[k] = mean.Value(i)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	raters := map[Key]map[string]map[string]bool{}
	err = warehouse.ScanTable(ctx, genDir, "fidelity_ratings", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "team", "period", "rater_id", "rater_role")
		if err != nil {
			return err
		}
		team, _ := cols[0].(*array.String)
		period, _ := cols[1].(*array.String)
		rater, _ := cols[2].(*array.String)
		role, _ := cols[3].(*array.String)
		if team == nil || period == nil || rater == nil || role == nil {
			return fmt.Errorf("table fidelity_ratings has unexpected column types")
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			key := Key{Team: team.Value(i), Period: period.Value(i)}
			byRole := raters[key]
			if byRole == nil {
				byRole = map[string]map[string]bool{}
				raters[key] = byRole
			}
			r := role.Value(i)
			if byRole[r] == nil {
				byRole[r] = map[string]bool{}
			}
			byRole[r][rater.Value(i)] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for key, byRole := range raters {
		d.Roles[key] = map[string]int{}
		for role, ids := range byRole {
			d.Roles[key][role] = len(ids)
		}
	}
	if d.Provenance, err = report.ReadProvenance(ctx, s, genDir); err != nil {
		return nil, err
	}
	return d, nil
}

// The page's view of one team: every value already formatted, so the
// template only places strings (and html/template escapes them).
type fidelityView struct {
	StudyName, Team, TrustCode, TrustName, Arm string
	// Control is a control team's report: contamination monitoring only.
	Control            bool
	InterventionArm    string
	Version, StudyHash string
	// Cutoff is the study's data cut-off, TrustCutoff this team's trust's
	// latest export and FidelityExport its latest fidelity export.
	Cutoff, TrustCutoff, FidelityExport string
	MaxTotal, ScaleMin, ScaleMax        string
	NComponents, MissingAllowed         int
	MinCount, MaxSmall                  string
	Small, Secondary                    string // the disclosure symbols

	Headline    string
	HeadBand    string
	HeadClass   string
	Periods     []fidelityPeriodView
	AnyRated    bool
	Chart       template.HTML
	ChartLegend []fidelityLegendItem
	Latest      string
	Earlier     string
	Components  []fidelityComponentView
	HasMedian   bool
	Change      *fidelityChangeView
	ChangeNote  string
	Compare     []fidelityCompareView
	Others      string // "other intervention teams"
	CompareNote string
	Focus       []fidelityFocusView
	// FocusTies are components not listed in Focus whose mean equals the
	// last listed one's (FocusTieMean): the list's cut falls in a tie.
	FocusTies    []fidelityFocusView
	FocusTieMean string
	// ICCFew says a period's ICC comes from fewer than ICCMinRaters raters.
	ICCFew       bool
	ICCMinRaters int
	Roles        []string
	Raters       []fidelityRaterView
	Bands        []fidelityBandView
}

type fidelityPeriodView struct {
	Period, NRaters, Total, Pct, Band, BandClass, ICC string
	Rated                                             bool
	// ICCFew flags an ICC from fewer than iccMinRaters raters.
	ICCFew bool
	Bar    fidelityBarView
}

type fidelityBarView struct {
	Label  string
	Segs   []fidelityBarSeg
	Ticks  []fidelityBarTick
	Marker template.CSS
}

type fidelityBarSeg struct {
	Name, Class string
	Style       template.CSS
}

type fidelityBarTick struct {
	Label, Class string
	Style        template.CSS
}

type fidelityLegendItem struct {
	Label string
	Style template.CSS
}

type fidelityComponentView struct {
	Code, Name, Earlier, Latest, Change, ChangeClass, Median string
}

type fidelityChangeView struct {
	From, To                      string
	TotalFrom, TotalTo, TotalDiff string
	PctFrom, PctTo, PctDiff       string
	BandFrom, BandTo, BandMove    string
	BandFromClass, BandToClass    string
	Up, Down, Same                int
}

type fidelityCompareView struct {
	Period, Team, Median, Diff string
	Available                  bool
}

type fidelityFocusView struct {
	Code, Name, Practice, Suggestion, Mean string
}

type fidelityRaterView struct {
	Period string
	// Text says the counts in words: "fewer than 5" for a small count,
	// "not shown" for a count withheld to protect one.
	Text   string
	Roles  []string
	Total  string
	Scored string
}

type fidelityBandView struct {
	Name, Class, Range string
}

// Chart colours: the earlier period light, the latest in the page's accent.
var (
	fidelityEarlierColor = color.RGBA{R: 0x9e, G: 0xc5, B: 0xe6, A: 0xff}
	fidelityLatestColor  = color.RGBA{R: 0x1f, G: 0x5f, B: 0xa8, A: 0xff}
	fidelityTrackColor   = color.RGBA{R: 0xe6, G: 0xea, B: 0xef, A: 0xff}
	fidelityRuleColor    = color.RGBA{R: 0x77, G: 0x77, B: 0x77, A: 0xff}
)

func render(t *template.Template, env warehouse.Env, d *ReportData, team string, out io.Writer) error {
	v, err := BuildView(env, d, team)
	if err != nil {
		return err
	}
	if err := t.Execute(out, v); err != nil {
		return fmt.Errorf("fidelity report %s: %w", team, err)
	}
	return nil
}

func BuildView(env warehouse.Env, d *ReportData, teamCode string) (*fidelityView, error) {
	s := env.Study
	f := &s.Fidelity
	team, _ := s.Team(teamCode)
	trust, _ := s.Trust(team.Trust)
	trustName := team.Trust
	if trust != nil {
		trustName = trust.Name
	}
	maxTotal := float64(len(f.Components) * f.Max)
	v := &fidelityView{
		StudyName: s.Name, Team: team.Code, TrustCode: team.Trust, TrustName: trustName, Arm: team.Arm,
		Version: env.Version, StudyHash: shortHash(s.Hash),
		MaxTotal: fmtTrim(maxTotal, 1), ScaleMin: strconv.Itoa(f.Min), ScaleMax: strconv.Itoa(f.Max),
		NComponents: len(f.Components), MissingAllowed: f.MissingAllowed,
		MinCount: strconv.Itoa(s.Disclosure.MinCount), MaxSmall: strconv.Itoa(s.Disclosure.MinCount - 1), Small: s.Disclosure.SmallSymbol(), Secondary: s.Disclosure.SecondarySymbol(),
		Control: team.Arm != s.InterventionArm(), InterventionArm: s.InterventionArm(),
	}
	v.Bands = fidelityBandViews(s, maxTotal)
	v.ICCMinRaters = iccMinRaters
	v.Cutoff, v.TrustCutoff, v.FidelityExport = "unknown", "none", "none"
	if p := d.Provenance; p != nil {
		if p.Cutoff != "" {
			v.Cutoff = p.Cutoff
		}
		v.TrustCutoff = p.TrustCutoff(team.Trust)
		for _, t := range p.Trusts {
			if i := slices.Index(p.Kinds, "fidelity"); t.Trust == team.Trust && i >= 0 {
				v.FidelityExport = t.Dates[i]
			}
		}
	}

	// Periods, and the latest and the one before it that were rated.
	var rated []string
	for _, period := range s.Periods {
		sm := d.Summary[Key{Team: team.Code, Period: period}]
		pv := fidelityPeriodView{Period: period, Total: "not rated", Pct: "—", Band: "not rated", BandClass: "band-none", ICC: "—"}
		if sm.NRaters > 0 && sm.TotalOK && sm.PctOK {
			pv.Rated = true
			rated = append(rated, period)
			pv.Total = fmtTrim(sm.Total, 1) + " of " + v.MaxTotal
			pv.Pct = fmtPct(sm.Pct)
			pv.Band = sm.Band
			pv.BandClass = fidelityBandClass(s, sm.Band)
			pv.Bar = fidelityBar(s, sm.Pct, period)
		}
		if sm.iccOK {
			pv.ICC = fmtSigned2(sm.icc)
			if sm.NRaters < iccMinRaters {
				pv.ICCFew, v.ICCFew = true, true
			}
		}
		v.Periods = append(v.Periods, pv)
	}
	v.AnyRated = len(rated) > 0
	if !v.AnyRated {
		v.Headline = "No fidelity ratings that could be scored have been received for this team yet."
	} else {
		v.Latest = rated[len(rated)-1]
		if len(rated) > 1 {
			v.Earlier = rated[len(rated)-2]
		}
		sm := d.Summary[Key{Team: team.Code, Period: v.Latest}]
		v.Headline = fmt.Sprintf("In %s the team scored %s of %s (%s of the maximum):", v.Latest, fmtTrim(sm.Total, 1), v.MaxTotal, fmtPct(sm.Pct))
		v.HeadBand = sm.Band + " fidelity"
		v.HeadClass = fidelityBandClass(s, sm.Band)
	}

	// Components: the latest period against the earlier one and against the
	// median of the other intervention teams.
	latest := fidelityMeans(d, team.Code, v.Latest, len(f.Components))
	earlier := fidelityMeans(d, team.Code, v.Earlier, len(f.Components))
	// A control team is compared with no one and gets no guidance.
	var others []string // intervention teams other than this one
	v.Others = "other " + s.InterventionArm() + " teams"
	for _, t := range s.Teams {
		if !v.Control && t.Arm == s.InterventionArm() && t.Code != team.Code {
			others = append(others, t.Code)
		}
	}
	if v.AnyRated {
		for k, c := range f.Components {
			cv := fidelityComponentView{Code: c.Code, Name: c.Name, Latest: fmtMean(latest[k]), Earlier: fmtMean(earlier[k]), Median: "—"}
			if v.Earlier != "" && !math.IsNaN(latest[k]) && !math.IsNaN(earlier[k]) {
				switch diff := latest[k] - earlier[k]; {
				case diff > 1e-9:
					cv.Change, cv.ChangeClass = "▲ "+fmtSigned(diff), "up"
				case diff < -1e-9:
					cv.Change, cv.ChangeClass = "▼ "+fmtSigned(diff), "down"
				default:
					cv.Change, cv.ChangeClass = "= same", "same"
				}
			}
			var vals []float64
			for _, o := range others {
				if m := fidelityMeans(d, o, v.Latest, len(f.Components)); !math.IsNaN(m[k]) {
					vals = append(vals, m[k])
				}
			}
			if len(vals) >= 2 {
				cv.Median = fmtMean(median(vals))
				v.HasMedian = true
			}
			v.Components = append(v.Components, cv)
		}
		chart, legend, err := fidelityComponentChart(s, v.Latest, latest, v.Earlier, earlier)
		if err != nil {
			return nil, err
		}
		v.Chart, v.ChartLegend = chart, legend
	}

	// Change between the last two rated periods.
	switch {
	case v.Control:
	case !v.AnyRated:
		v.ChangeNote = "The team has not been rated yet."
	case v.Earlier == "":
		v.ChangeNote = fmt.Sprintf("Only %s has been rated so far: the change will be shown once a later period is rated.", v.Latest)
	default:
		a, b := d.Summary[Key{Team: team.Code, Period: v.Earlier}], d.Summary[Key{Team: team.Code, Period: v.Latest}]
		ch := &fidelityChangeView{
			From: v.Earlier, To: v.Latest,
			TotalFrom: fmtTrim(a.Total, 1), TotalTo: fmtTrim(b.Total, 1), TotalDiff: fmtSigned(b.Total - a.Total),
			PctFrom: fmtPct(a.Pct), PctTo: fmtPct(b.Pct), PctDiff: fmtSigned(b.Pct-a.Pct) + " points",
			BandFrom: a.Band, BandTo: b.Band,
			BandFromClass: fidelityBandClass(s, a.Band), BandToClass: fidelityBandClass(s, b.Band),
		}
		switch ia, ib := fidelityBandIndex(s, a.Band), fidelityBandIndex(s, b.Band); {
		case ib < ia:
			ch.BandMove = "moved up"
		case ib > ia:
			ch.BandMove = "moved down"
		default:
			ch.BandMove = "stayed the same"
		}
		for _, c := range v.Components {
			switch c.ChangeClass {
			case "up":
				ch.Up++
			case "down":
				ch.Down++
			case "same":
				ch.Same++
			}
		}
		v.Change = ch
	}

	// The team against the median of the other intervention teams.
	for _, period := range s.Periods {
		if v.Control {
			break
		}
		sm := d.Summary[Key{Team: team.Code, Period: period}]
		cv := fidelityCompareView{Period: period, Team: "not rated", Median: "—", Diff: "—"}
		if sm.NRaters > 0 && sm.PctOK {
			cv.Team = fmtPct(sm.Pct)
		}
		var vals []float64
		for _, o := range others {
			if other := d.Summary[Key{Team: o, Period: period}]; other.NRaters > 0 && other.PctOK {
				vals = append(vals, other.Pct)
			}
		}
		if len(vals) >= 2 {
			m := median(vals)
			cv.Available = true
			cv.Median = fmtPct(m)
			if sm.NRaters > 0 && sm.PctOK {
				cv.Diff = fmtSigned(sm.Pct-m) + " points"
			}
		} else {
			cv.Median = "not available"
			v.CompareNote = "Not available: fewer than two " + v.Others + " were rated in that period."
		}
		v.Compare = append(v.Compare, cv)
	}

	// Where to focus: the lowest components of the latest rated period.
	if v.AnyRated && !v.Control {
		listed := map[string]bool{}
		cut := math.NaN() // the mean of the last component listed
		for _, code := range strings.Fields(d.Summary[Key{Team: team.Code, Period: v.Latest}].lowest) {
			for k, c := range f.Components {
				if c.Code == code {
					v.Focus = append(v.Focus, fidelityFocusView{Code: c.Code, Name: c.Name, Practice: c.Practice, Suggestion: c.Suggestion,
						Mean: fmtMean(latest[k]) + " of " + v.ScaleMax})
					listed[c.Code] = true
					cut = latest[k]
				}
			}
		}
		// Components with the same mean as the last listed are tied with
		// it: say so rather than cut them silently.
		for k, c := range f.Components {
			if !listed[c.Code] && !math.IsNaN(cut) && !math.IsNaN(latest[k]) && math.Abs(latest[k]-cut) < 1e-9 {
				v.FocusTies = append(v.FocusTies, fidelityFocusView{Code: c.Code, Name: c.Name, Mean: fmtMean(latest[k])})
				v.FocusTieMean = fmtMean(cut)
			}
		}
	}

	// Raters per period, by role, with disclosure control over the roles,
	// their total and the raters scored (printed twice: the periods table
	// and this one), whose difference from the total, the raters who could
	// not be scored, is not printed but is tied in.
	v.Roles = slices.Clone(f.RaterRoles)
	for _, period := range s.Periods {
		for role := range d.Roles[Key{Team: team.Code, Period: period}] {
			if !slices.Contains(v.Roles, role) {
				v.Roles = append(v.Roles, role)
			}
		}
	}
	sort.Strings(v.Roles[len(f.RaterRoles):])
	for pi, period := range s.Periods {
		key := Key{Team: team.Code, Period: period}
		disc := report.NewDisclosure(s.Disclosure)
		roles := make([]int, len(v.Roles))
		var total int64
		for i, role := range v.Roles {
			n := int64(d.Roles[key][role])
			roles[i] = disc.Count("role|"+role, n, 0)
			total += n
		}
		all := disc.Count("raters", total, 1)
		disc.Sum(all, roles...)
		scored := int64(d.Summary[key].NRaters)
		sc := disc.Count("scored", scored, 1)
		if scored <= total {
			disc.Sum(all, sc, disc.Implied("not scored", total-scored))
		}
		if err := disc.Protect(); err != nil {
			return nil, fmt.Errorf("raters of %s: %w", period, err)
		}
		rv := fidelityRaterView{Period: period, Total: disc.Show(all), Scored: disc.Show(sc)}
		words := func(shown string) string {
			switch shown {
			case v.Small:
				return "fewer than " + v.MinCount
			case v.Secondary:
				return "a number not shown"
			case "0":
				return "none"
			}
			return shown
		}
		var parts, present []string
		allSmall := rv.Total == v.Small && rv.Scored == v.Small
		for i, c := range roles {
			shown := disc.Show(c)
			rv.Roles = append(rv.Roles, shown)
			if shown != "0" {
				parts = append(parts, v.Roles[i]+": "+words(shown))
				present = append(present, v.Roles[i])
				allSmall = allSmall && shown == v.Small
			}
		}
		switch {
		case total == 0:
			rv.Text = "no ratings received."
		case allSmall:
			// Every count is small: one phrase says it.
			rv.Text = "fewer than " + v.MinCount + " raters (" + strings.Join(present, " and ") + "), each role and in all; fewer than " + v.MinCount + " scored."
		default:
			rv.Text = words(rv.Total) + " raters in all"
			if len(parts) > 0 {
				rv.Text += " (" + strings.Join(parts, "; ") + ")"
			}
			rv.Text += "; scored: " + words(rv.Scored) + "."
		}
		v.Raters = append(v.Raters, rv)
		v.Periods[pi].NRaters = disc.Show(sc)
	}
	return v, nil
}

// iccMinRaters is the fewest raters whose ICC the report shows without a
// caveat: with fewer, ICC(2,1)'s interval is too wide to read as more
// than a rough guide.
const iccMinRaters = 5

// SetICC sets the ICC of a team × period (for tests building
// ReportData by hand).
func SetICC(d *ReportData, k Key, icc float64) {
	sm := d.Summary[k]
	sm.icc, sm.iccOK = icc, true
	d.Summary[k] = sm
}

// fidelityMeans is a team × period's component means (NaN: not rated).
func fidelityMeans(d *ReportData, team, period string, n int) []float64 {
	if m, ok := d.Comps[Key{Team: team, Period: period}]; ok && period != "" {
		return m
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = math.NaN()
	}
	return out
}

// fidelityBandIndex is a band's position, 0 for the highest.
func fidelityBandIndex(s *schemas.Study, band string) int {
	for i, b := range s.Fidelity.Bands {
		if b.Name == band {
			return i
		}
	}
	return len(s.Fidelity.Bands)
}

// fidelityBandClass is the CSS class of a band: band-high, band-moderate and
// band-low by name, else by position from the lowest (band-0 …).
func fidelityBandClass(s *schemas.Study, band string) string {
	switch band {
	case "high", "moderate", "low":
		return "band-" + band
	}
	i := fidelityBandIndex(s, band)
	if i >= len(s.Fidelity.Bands) {
		return "band-none"
	}
	return "band-" + strconv.Itoa(min(len(s.Fidelity.Bands)-1-i, 5))
}

// fidelityBandViews describes the bands from the highest down.
func fidelityBandViews(s *schemas.Study, maxTotal float64) []fidelityBandView {
	bands := s.Fidelity.Bands
	out := make([]fidelityBandView, len(bands))
	for i, b := range bands {
		lo := fmtTrim(b.MinPct, 1) + "%"
		loT := fmtTrim(b.MinPct/100*maxTotal, 1)
		var r string
		switch {
		case i == 0:
			r = fmt.Sprintf("%s or more (a total of %s or more)", lo, loT)
		case b.MinPct <= 0 || i == len(bands)-1:
			up := bands[i-1].MinPct
			r = fmt.Sprintf("under %s%% (a total under %s)", fmtTrim(up, 1), fmtTrim(up/100*maxTotal, 1))
		default:
			up := bands[i-1].MinPct
			r = fmt.Sprintf("%s to under %s%% (a total from %s to under %s)", lo, fmtTrim(up, 1), loT, fmtTrim(up/100*maxTotal, 1))
		}
		out[i] = fidelityBandView{Name: b.Name, Class: fidelityBandClass(s, b.Name), Range: r}
	}
	return out
}

// fidelityBar is a 0–100% scale shaded by band, thresholds marked, with a
// marker at pct.
func fidelityBar(s *schemas.Study, pct float64, period string) fidelityBarView {
	bands := s.Fidelity.Bands
	bar := fidelityBarView{Label: fmt.Sprintf("%s: %s of the maximum, in the %s band", period, fmtPct(pct), s.Band(pct))}
	upper := 100.0
	var segs []fidelityBarSeg
	for i, b := range bands { // highest first
		lo := math.Max(0, math.Min(b.MinPct, upper))
		if i == len(bands)-1 {
			lo = 0 // the lowest band starts at 0 whatever its threshold says
		}
		if upper > lo {
			segs = append(segs, fidelityBarSeg{Name: b.Name, Class: fidelityBandClass(s, b.Name), Style: cssWidth(upper - lo)})
		}
		upper = lo
	}
	slices.Reverse(segs) // lowest on the left
	bar.Segs = segs
	bar.Ticks = append(bar.Ticks, fidelityBarTick{Label: "0%", Class: "first", Style: cssLeft(0)})
	for i := len(bands) - 1; i >= 0; i-- {
		if b := bands[i]; b.MinPct > 0 && b.MinPct < 100 {
			bar.Ticks = append(bar.Ticks, fidelityBarTick{Label: fmtTrim(b.MinPct, 1) + "%", Style: cssLeft(b.MinPct)})
		}
	}
	bar.Ticks = append(bar.Ticks, fidelityBarTick{Label: "100%", Class: "last", Style: cssLeft(100)})
	bar.Marker = template.CSS("left:calc(" + fmtTrim(math.Min(math.Max(pct, 0), 100), 2) + "% - 1.5px)")
	return bar
}

func cssWidth(pct float64) template.CSS {
	return template.CSS("width:" + fmtTrim(pct, 3) + "%")
}

func cssLeft(pct float64) template.CSS {
	return template.CSS("left:" + fmtTrim(pct, 3) + "%")
}

// Ticks are the rating axis's ticks: every rating when there are at
// most 11, else at most 11 at a step of 1, 2 or 5 times a power of ten. The
// study definition bounds the scale (schemas: 0 to 100); this bounds the
// loop whatever it holds.
func Ticks(lo, hi int) []plot.Tick {
	if hi < lo {
		return nil
	}
	const most = 11
	span := float64(hi) - float64(lo)
	step := 1.0
	for k := 0; span/step > most-1; k++ {
		step = []float64{1, 2, 5}[k%3] * math.Pow(10, float64(k/3))
	}
	ticks := make([]plot.Tick, 0, most)
	for k := 0; k < most && float64(k)*step <= span; k++ {
		x := float64(lo) + float64(k)*step
		ticks = append(ticks, plot.Tick{Value: x, Label: strconv.FormatFloat(x, 'f', -1, 64)})
	}
	return ticks
}

// fidelityComponentChart draws the components' mean ratings against the
// scale's maximum as an SVG: each component's name above its bars (the
// latest rated period, and the one before it when there is one) over a
// track as long as the maximum, the band thresholds applied to one
// component dashed, and the latest mean at the right. The drawing is 420
// units wide with 13-unit text, so its text stays at 11 CSS px or more
// down to a 360 px wide figure. Names come from the study definition and
// are escaped.
func fidelityComponentChart(s *schemas.Study, latestLabel string, latest []float64, earlierLabel string, earlier []float64) (template.HTML, []fidelityLegendItem, error) {
	f := &s.Fidelity
	n := len(f.Components)
	if f.Max <= f.Min {
		return "", nil, fmt.Errorf("chart: rating scale %d..%d is empty", f.Min, f.Max)
	}
	const (
		width  = 420.0
		left   = 2.0
		right  = 36.0 // room for the latest mean
		rowH   = 34.0
		top    = 2.0
		axisH  = 40.0
		barH   = 7.0
		single = 12.0
	)
	plotW := width - left - right
	x := func(v float64) float64 { return left + (v-float64(f.Min))/float64(f.Max-f.Min)*plotW }
	height := top + float64(n)*rowH + axisH
	hex := func(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }
	label := fmt.Sprintf("Mean rating of each of the %d components in %s", n, latestLabel)
	if earlierLabel != "" {
		label += " and " + earlierLabel
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="%s" viewBox="0 0 %s %s" width="%s" height="%s" font-family="Liberation Sans, Arial, Helvetica, sans-serif" font-size="13">`,
		template.HTMLEscapeString(label), fmtTrim(width, 1), fmtTrim(height, 1), fmtTrim(width, 1), fmtTrim(height, 1))
	bar := func(y, h, v float64, c color.RGBA) {
		if math.IsNaN(v) {
			return
		}
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>`, fmtTrim(left, 2), fmtTrim(y, 2), fmtTrim(math.Max(0, x(v)-left), 2), fmtTrim(h, 2), hex(c))
	}
	for k, c := range f.Components {
		y0 := top + float64(k)*rowH
		fmt.Fprintf(&b, `<text x="%s" y="%s" fill="#1b1b1b">%s</text>`, fmtTrim(left, 2), fmtTrim(y0+12, 2), template.HTMLEscapeString(c.Name))
		by := y0 + 16
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>`, fmtTrim(left, 2), fmtTrim(by-1, 2), fmtTrim(plotW, 2), fmtTrim(2*barH+2, 2), hex(fidelityTrackColor))
		if earlierLabel != "" {
			bar(by, barH, earlier[k], fidelityEarlierColor)
			bar(by+barH, barH, latest[k], fidelityLatestColor)
		} else {
			bar(by+1, single, latest[k], fidelityLatestColor)
		}
		val := "–"
		if !math.IsNaN(latest[k]) {
			val = strconv.FormatFloat(latest[k], 'f', 1, 64)
		}
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="end" fill="#1b1b1b">%s</text>`, fmtTrim(width-1, 2), fmtTrim(by+barH+4, 2), val)
	}
	bottom := top + float64(n)*rowH
	for _, band := range f.Bands {
		if band.MinPct <= 0 || band.MinPct >= 100 {
			continue
		}
		xv := x(float64(f.Min) + band.MinPct/100*float64(f.Max-f.Min))
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1" stroke-dasharray="3 3"/>`, fmtTrim(xv, 2), fmtTrim(top+14, 2), fmtTrim(xv, 2), fmtTrim(bottom, 2), hex(fidelityRuleColor))
	}
	fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#1b1b1b" stroke-width="1"/>`, fmtTrim(left, 2), fmtTrim(bottom+2, 2), fmtTrim(left+plotW, 2), fmtTrim(bottom+2, 2))
	for _, tk := range Ticks(f.Min, f.Max) {
		xv := x(tk.Value)
		anchor := "middle"
		switch {
		case tk.Value == float64(f.Min):
			anchor = "start"
		case tk.Value == float64(f.Max):
			anchor = "end"
		}
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#1b1b1b" stroke-width="1"/><text x="%s" y="%s" text-anchor="%s" fill="#1b1b1b">%s</text>`,
			fmtTrim(xv, 2), fmtTrim(bottom+2, 2), fmtTrim(xv, 2), fmtTrim(bottom+6, 2), fmtTrim(xv, 2), fmtTrim(bottom+19, 2), anchor, tk.Label)
	}
	fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle" fill="#555">mean rating (%d absent … %d fully present)</text>`, fmtTrim(left+plotW/2, 2), fmtTrim(bottom+36, 2), f.Min, f.Max)
	b.WriteString(`</svg>`)

	var legend []fidelityLegendItem
	swatch := func(c color.RGBA) template.CSS { return template.CSS("background:" + hex(c)) }
	if earlierLabel != "" {
		legend = append(legend, fidelityLegendItem{Label: earlierLabel, Style: swatch(fidelityEarlierColor)})
	}
	legend = append(legend, fidelityLegendItem{Label: latestLabel + " (value at the right)", Style: swatch(fidelityLatestColor)})
	legend = append(legend, fidelityLegendItem{Label: fmt.Sprintf("maximum (%d)", f.Max), Style: swatch(fidelityTrackColor)})
	return template.HTML(b.String()), legend, nil
}

// median of a non-empty slice (the mean of the middle two for an even count).
func median(x []float64) float64 {
	s := slices.Clone(x)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// fmtTrim formats x with at most prec decimals, dropping trailing zeros.
func fmtTrim(x float64, prec int) string {
	s := strconv.FormatFloat(x, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

func fmtPct(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) + "%" }

func fmtMean(x float64) string {
	if math.IsNaN(x) {
		return "not rated"
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

// fmtSigned formats a difference with one decimal and its sign.
func fmtSigned(x float64) string {
	s := strconv.FormatFloat(x, 'f', 1, 64)
	switch {
	case s == "0.0" || s == "-0.0":
		return "±0.0"
	case !strings.HasPrefix(s, "-"):
		return "+" + s
	}
	return "−" + s[1:]
}

// fmtSigned2 formats an ICC with two decimals, never "-0.00".
func fmtSigned2(x float64) string {
	s := strconv.FormatFloat(x, 'f', 2, 64)
	if s == "-0.00" {
		return "0.00"
	}
	return strings.Replace(s, "-", "−", 1)
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// The fidelity report's template, inside the shared page (report.Parse).
//
//go:embed templates/fidelity.tmpl
var templateFS embed.FS

// templateFile is the fidelity report's template file.
const templateFile = "fidelity.tmpl"
