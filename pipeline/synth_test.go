package pipeline

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/connectingpeople/cpi/pipeline/synth"
	"github.com/connectingpeople/cpi/schemas"
)

// go test ./pipeline -run TestWriteBundled -synth.update rewrites
// testdata/synth (so does a package-wide -update flag, if one is defined).
var synthUpdate = flag.Bool("synth.update", false, "rewrite the bundled synthetic study in testdata/synth")

const synthBundled = "../testdata/synth"

func synthStudy(t testing.TB) *schemas.Study {
	t.Helper()
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func synthWrite(t testing.TB, opts synth.SynthOptions) (string, []synth.SynthFile) {
	t.Helper()
	dir := t.TempDir()
	files, err := synth.WriteSynth(context.Background(), synthStudy(t), opts, dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, files
}

func synthRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSynthDeterministic(t *testing.T) {
	for _, canonical := range []bool{false, true} {
		opts := synth.SynthOptions{Seed: 1, Canonical: canonical}
		dir1, files1 := synthWrite(t, opts)
		dir2, files2 := synthWrite(t, opts)
		if len(files1) != 10 || len(files2) != 10 {
			t.Fatalf("canonical=%v: %d and %d files, want 10", canonical, len(files1), len(files2))
		}
		for i, f := range files1 {
			if files2[i].Name != f.Name || files2[i].Rows != f.Rows {
				t.Errorf("file %d: %s (%d rows) then %s (%d rows)", i, f.Name, f.Rows, files2[i].Name, files2[i].Rows)
			}
			if !bytes.Equal(synthRead(t, filepath.Join(dir1, f.Name)), synthRead(t, filepath.Join(dir2, f.Name))) {
				t.Errorf("canonical=%v: %s differs between two runs with the same seed", canonical, f.Name)
			}
			info, err := os.Stat(filepath.Join(dir1, f.Name))
			if err != nil {
				t.Fatal(err)
			}
			if perm := info.Mode().Perm(); perm != 0o640 {
				t.Errorf("%s mode %o, want 640", f.Name, perm)
			}
		}
		entries, _ := os.ReadDir(dir1)
		if len(entries) != 10 {
			t.Errorf("output folder holds %d entries, want the 10 files only", len(entries))
		}
	}
	dir3, files3 := synthWrite(t, synth.SynthOptions{Seed: 2})
	dir1, _ := synthWrite(t, synth.SynthOptions{Seed: 1})
	if bytes.Equal(synthRead(t, filepath.Join(dir1, files3[0].Name)), synthRead(t, filepath.Join(dir3, files3[0].Name))) {
		t.Error("seeds 1 and 2 wrote the same participants file")
	}
}

// synthCount is the flow of a synthetic study as the exports show it.
type synthCount struct {
	recruited, baseline, followupRows, followup, withdrawn int
}

func synthCounts(t testing.TB, s *schemas.Study, opts synth.SynthOptions) (synthCount, map[string]int) {
	t.Helper()
	var c synthCount
	teams := map[string]int{}
	err := synth.Synthesize(context.Background(), s, opts, func(trust string, r *synth.SynthInterview) error {
		if r.Wave == s.BaselineWave() {
			c.recruited++
			teams[r.Team]++
			if r.Interviewed() {
				c.baseline++
			}
			return nil
		}
		c.followupRows++
		if r.Interviewed() {
			c.followup++
		}
		if r.Withdrawn {
			c.withdrawn++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, teams
}

func TestSynthDefaultCounts(t *testing.T) {
	s := synthStudy(t)
	c, teams := synthCounts(t, s, synth.SynthOptions{Seed: 1})
	want := synthCount{recruited: 159, baseline: 153, followupRows: 132, followup: 129, withdrawn: 7}
	if c != want {
		t.Errorf("seed 1 flow %+v, want %+v", c, want)
	}
	if d := c.baseline - 151; d < -3 || d > 3 {
		t.Errorf("baseline interviews %d, published 151", c.baseline)
	}
	if d := c.followup - 127; d < -3 || d > 3 {
		t.Errorf("follow-up interviews %d, published 127", c.followup)
	}
	if len(teams) != 10 {
		t.Errorf("%d teams recruited, want 10", len(teams))
	}
	for team, n := range teams {
		if n < 12 || n > 20 {
			t.Errorf("team %s recruited %d, want about 16", team, n)
		}
	}
	// Scaled: the proportions hold for a larger study.
	c, _ = synthCounts(t, s, synth.SynthOptions{Seed: 1, Participants: 20000})
	if c.recruited != 20000 {
		t.Errorf("recruited %d, want 20000", c.recruited)
	}
	if r := float64(c.baseline) / 20000; math.Abs(r-151.0/159) > 0.01 {
		t.Errorf("baseline rate %.3f, want about %.3f", r, 151.0/159)
	}
	if r := float64(c.followup) / float64(c.baseline); math.Abs(r-127.0/151) > 0.02 {
		t.Errorf("follow-up rate %.3f, want about %.3f", r, 127.0/151)
	}
}

// TestSynthRows checks what a row may hold: ids, codes, ranges, dates,
// blanks where the design says, and a few missing answers.
func TestSynthRows(t *testing.T) {
	s := synthStudy(t)
	fields := map[string]schemas.Field{}
	for _, f := range s.ExportFields(schemas.KindParticipants) {
		fields[f.Name] = f
	}
	gas, _ := s.Instrument("gas")
	ids := map[string]string{}
	lookalike := regexp.MustCompile(`\d{10}|@|^[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}$`)
	blankAnswers, baselineDemog, followupDemog, followupRows := 0, 0, 0, 0
	err := synth.Synthesize(context.Background(), s, synth.SynthOptions{Seed: 1, Participants: 2000}, func(trust string, r *synth.SynthInterview) error {
		if !schemas.ValidParticipantID(r.ParticipantID) || lookalike.MatchString(r.ParticipantID) {
			t.Errorf("pseudonym %q", r.ParticipantID)
		}
		key := trust + "/" + r.ParticipantID
		if r.Wave == "baseline" {
			if _, dup := ids[key]; dup {
				t.Errorf("pseudonym %s recruited twice", key)
			}
			ids[key] = r.Team
		} else if ids[key] != r.Team {
			t.Errorf("%s changed team or has no baseline", key)
		}
		tm, ok := s.Team(r.Team)
		if !ok || tm.Trust != trust || tm.Arm != r.Arm {
			t.Errorf("%s: team %s arm %s in trust %s", key, r.Team, r.Arm, trust)
		}
		switch {
		case r.Wave == "baseline" && r.Interviewed():
			if r.Date.Before(synth.SynthBaselineFirst) || r.Date.After(synth.SynthBaselineLast) {
				t.Errorf("%s baseline %s outside the recruitment window", key, r.Date.Format(time.DateOnly))
			}
		case r.Wave == "followup" && r.Interviewed():
			followupRows++
		}
		if wd := r.Date.Weekday(); r.Interviewed() && (wd == time.Saturday || wd == time.Sunday) {
			t.Errorf("%s interviewed on a %s", key, wd)
		}
		demog := slices.ContainsFunc(r.Demo, func(v string) bool { return v != "" }) || slices.ContainsFunc(r.Flags, func(v synth.SynthValue) bool { return v.Valid })
		if r.Wave == "baseline" && demog {
			baselineDemog++
		}
		if r.Wave == "followup" && demog {
			followupDemog++
		}
		for i, code := range s.CodedDemographics() {
			v := r.Demo[i]
			if v != "" && !slices.Contains(fields[code].Codes, v) {
				t.Errorf("%s %s %q not in the code list", key, code, v)
			}
		}
		answered := 0
		for i, name := range r.ItemNames {
			v := r.Items[i]
			if !v.Valid {
				continue
			}
			answered++
			f := fields[name]
			if int(v.Value) < f.Min || int(v.Value) > f.Max {
				t.Errorf("%s %s = %d outside %d..%d", key, name, v.Value, f.Min, f.Max)
			}
			if f.Instrument == "gas" && !gas.AskedAt(r.Wave) {
				t.Errorf("%s %s answered at %s", key, name, r.Wave)
			}
		}
		if !r.Interviewed() && answered > 0 {
			t.Errorf("%s has answers but no interview date", key)
		}
		if r.Interviewed() {
			for _, name := range []string{"rg01", "swemwbs1", "qpr01", "ucla1", "eq5d_mo", "eq5d_vas"} {
				if v, _ := r.Item(name); !v.Valid {
					blankAnswers++
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if blankAnswers == 0 {
		t.Error("no missing answers at all")
	}
	if followupDemog == 0 || followupDemog > followupRows/4 {
		t.Errorf("%d of %d follow-up rows repeat demographics, want a few", followupDemog, followupRows)
	}
	if baselineDemog < len(ids)*9/10 {
		t.Errorf("%d of %d baseline rows have demographics", baselineDemog, len(ids))
	}
}

// TestSynthParticipantIndependent: a participant's values do not depend
// on how many others are generated.
func TestSynthParticipantIndependent(t *testing.T) {
	s := synthStudy(t)
	rows := func(n int) map[string]string {
		out := map[string]string{}
		err := synth.Synthesize(context.Background(), s, synth.SynthOptions{Seed: 5, Participants: n}, func(trust string, r *synth.SynthInterview) error {
			out[trust+"/"+r.ParticipantID+"/"+r.Wave] = fmt.Sprintf("%s %v %v %v %v %v", r.Team, r.Date, r.Demo, r.Flags, r.Withdrawn, r.Items)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	small, large := rows(159), rows(1000)
	same := 0
	for k, v := range small {
		if w, ok := large[k]; ok {
			same++
			if v != w {
				t.Errorf("%s differs with more participants", k)
			}
		}
	}
	if same < len(small)*3/4 {
		t.Errorf("only %d of %d rows found in the larger study", same, len(small))
	}
}

// TestSynthEffect: the model's true effect is what a simple analysis of
// a large synthetic study recovers (change scores cancel team and trust).
func TestSynthEffect(t *testing.T) {
	s := synthStudy(t)
	base := map[string]int32{}
	var sum, n [2]float64
	err := synth.Synthesize(context.Background(), s, synth.SynthOptions{Seed: 3, Participants: 30000}, func(trust string, r *synth.SynthInterview) error {
		if !r.Interviewed() || r.Withdrawn {
			return nil
		}
		total := int32(0)
		for i, name := range r.ItemNames {
			if strings.HasPrefix(name, "rg") {
				if !r.Items[i].Valid {
					return nil
				}
				total += r.Items[i].Value
			}
		}
		key := trust + r.ParticipantID
		if r.Wave == "baseline" {
			base[key] = total
			return nil
		}
		b, ok := base[key]
		if !ok {
			return nil
		}
		arm := 0
		if r.Arm != s.InterventionArm() {
			arm = 1
		}
		sum[arm] += float64(total - b)
		n[arm]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := sum[0]/n[0] - sum[1]/n[1]
	if math.Abs(got-synth.SynthEffect) > 0.25 {
		t.Errorf("difference in mean change %.3f, want about %.1f", got, synth.SynthEffect)
	}
}

func TestSynthFidelity(t *testing.T) {
	s := synthStudy(t)
	type key struct{ team, period string }
	raters := map[key]int{}
	var pct [2]float64
	var nArm [2]float64
	err := synth.SynthesizeFidelity(context.Background(), s, synth.SynthOptions{Seed: 1}, func(trust string, r *synth.SynthRating) error {
		raters[key{r.Team, r.Period}]++
		blank, total := 0, 0
		for _, v := range r.Components {
			if !v.Valid {
				blank++
				continue
			}
			if v.Value < int32(s.Fidelity.Min) || v.Value > int32(s.Fidelity.Max) {
				t.Errorf("%s %s: component %d", r.Team, r.RaterID, v.Value)
			}
			total += int(v.Value)
		}
		if blank > 1 {
			t.Errorf("%s %s %s: %d blank components", r.Team, r.Period, r.RaterID, blank)
		}
		if !regexp.MustCompile(`^R\d\d$`).MatchString(r.RaterID) || !slices.Contains(s.Fidelity.RaterRoles, r.RaterRole) {
			t.Errorf("rater %q role %q", r.RaterID, r.RaterRole)
		}
		first, last := synth.SynthRatingDateBounds(r.Period, slices.Index(s.Periods, r.Period))
		if r.Date.Before(first) || r.Date.After(last) {
			t.Errorf("%s %s rated on %s", r.Team, r.Period, r.Date.Format(time.DateOnly))
		}
		arm := 0
		if r.Arm != s.InterventionArm() {
			arm = 1
		}
		pct[arm] += float64(total) / float64(len(r.Components)-blank) / float64(s.Fidelity.Max) * 100
		nArm[arm]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(raters) != len(s.Teams)*len(s.Periods) {
		t.Errorf("%d team × period ratings, want %d", len(raters), len(s.Teams)*len(s.Periods))
	}
	for k, n := range raters {
		if n < 2 || n > 3 {
			t.Errorf("%v: %d raters", k, n)
		}
	}
	if in, co := pct[0]/nArm[0], pct[1]/nArm[1]; in < 60 || co > 60 || in-co < 15 {
		t.Errorf("mean pct intervention %.0f, control %.0f", in, co)
	}
}

func TestSynthFileNamesIdentified(t *testing.T) {
	s := synthStudy(t)
	for _, canonical := range []bool{false, true} {
		_, files := synthWrite(t, synth.SynthOptions{Seed: 1, Canonical: canonical})
		for _, f := range files {
			site, date, canon, ok := s.IdentifyFile(f.Name)
			if !ok || site.Trust != f.Trust || !date.Equal(synth.SynthDefaultExportDate) {
				t.Errorf("%s: identified as %v on %v (ok %v), want %s on 2019-03-29", f.Name, site, date, ok, f.Trust)
			}
			if canonical && !canon {
				t.Errorf("%s not identified as canonical", f.Name)
			}
		}
	}
}

func synthFile(t *testing.T, dir string, files []synth.SynthFile, trust, kind string) []byte {
	t.Helper()
	for _, f := range files {
		if f.Trust == trust && f.Kind == kind {
			return synthRead(t, filepath.Join(dir, f.Name))
		}
	}
	t.Fatalf("no %s %s file", trust, kind)
	return nil
}

func TestSynthDialects(t *testing.T) {
	dir, files := synthWrite(t, synth.SynthOptions{Seed: 1})

	eput := synthFile(t, dir, files, "EPUT", schemas.KindParticipants)
	if !bytes.HasPrefix(eput, []byte("\xef\xbb\xbfparticipant_id,team_code,")) {
		t.Errorf("EPUT: no BOM before the canonical header: %q", eput[:20])
	}
	if lines := bytes.Count(eput, []byte("\n")); lines < 2 || bytes.Count(eput, []byte("\r\n")) != lines {
		t.Error("EPUT: not every line ends CRLF")
	}

	bdct := synthFile(t, dir, files, "BDCT", schemas.KindParticipants)
	if !bytes.HasPrefix(bdct, []byte("participant_id;team_code;wave;")) || bytes.Contains(bdct, []byte("\r")) {
		t.Errorf("BDCT: want ';' and LF: %q", bdct[:40])
	}
	if !bytes.Contains(bdct, []byte("Not stated \x96 declined")) {
		t.Error(`BDCT: no "Not stated – declined" in Windows-1252 (en dash 0x96)`)
	}
	if !regexp.MustCompile(`;\d\d/\d\d/2018;`).Match(bdct) || !bytes.Contains(bdct, []byte(";Female;")) {
		t.Error("BDCT: no UK date or worded code")
	}

	awp := string(synthFile(t, dir, files, "AWP", schemas.KindParticipants))
	if !strings.HasPrefix(awp, "Participant ID,Team,Timepoint,Date of interview,") {
		t.Errorf("AWP header %q", awp[:60])
	}
	if !strings.Contains(awp, ",6 months,") || !strings.Contains(awp, ",Baseline,") || !regexp.MustCompile(`,\d\d-[A-Z][a-z]{2}-2018,`).MatchString(awp) {
		t.Error("AWP: no 6 months / Baseline wave or 02-Jan-2006 date")
	}
	recs, err := csv.NewReader(strings.NewReader(awp)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	rg := slices.Index(recs[0], "rg01")
	for _, rec := range recs[1:] {
		if v := rec[rg]; v != "Y" && v != "N" && v != "" {
			t.Fatalf("AWP rg01 %q, want Y or N", v)
		}
	}
	if fid := string(synthFile(t, dir, files, "AWP", schemas.KindFidelity)); !strings.Contains(fid, "Month 3") || !strings.Contains(fid, "Researcher") {
		t.Error("AWP fidelity: no Month 3 / Researcher")
	}

	hpft := synthFile(t, dir, files, "HPFT", schemas.KindParticipants)
	if _, err := zip.NewReader(bytes.NewReader(hpft), int64(len(hpft))); err != nil {
		t.Fatalf("HPFT: not a zip: %v", err)
	}
	x, err := excelize.OpenReader(bytes.NewReader(hpft))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if sheets := x.GetSheetList(); len(sheets) != 1 || sheets[0] != "Participants" {
		t.Errorf("HPFT sheets %v", sheets)
	}
	rows, err := x.GetRows("Participants", excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := rows[0][:4]; !slices.Equal(got, []string{"Participant", "Team code", "Wave", "Interview date"}) {
		t.Errorf("HPFT header %v", got)
	}
	if rows[1][2] != "BL" {
		t.Errorf("HPFT wave %q, want BL", rows[1][2])
	}
	serial, err := strconv.Atoi(rows[1][3])
	if err != nil || serial < 43100 || serial > 43500 {
		t.Errorf("HPFT interview date cell %q, want a 2018 serial number", rows[1][3])
	}
	if typ, _ := x.GetCellType("Participants", "D2"); typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber {
		t.Errorf("HPFT date cell type %v", typ)
	}
	if v, _ := x.GetCellValue("Participants", "D2"); !regexp.MustCompile(`^\d\d/\d\d/2018$`).MatchString(v) {
		t.Errorf("HPFT date shows as %q, want dd/mm/yyyy", v)
	}
	if typ, _ := x.GetCellType("Participants", "K2"); typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber {
		t.Errorf("HPFT answer cell type %v, want a number", typ)
	}
	for _, f := range files {
		if f.Trust == "HPFT" && f.Kind == schemas.KindParticipants && len(rows)-1 != int(f.Rows) {
			t.Errorf("HPFT sheet has %d rows, SynthFile says %d", len(rows)-1, f.Rows)
		}
	}
}

// TestSynthCanonical: a canonical run's headers are exactly the canonical
// template, and its cells are exactly the rows Synthesize yields.
func TestSynthCanonical(t *testing.T) {
	s := synthStudy(t)
	opts := synth.SynthOptions{Seed: 1, Participants: 400, Canonical: true}
	dir, files := synthWrite(t, opts)
	read := func(f synth.SynthFile) [][]string {
		b := synthRead(t, filepath.Join(dir, f.Name))
		if bytes.Contains(b, []byte("\r")) || bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
			t.Errorf("%s: want plain UTF-8 with LF", f.Name)
		}
		recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		want := []string{}
		for _, fl := range s.ExportFields(f.Kind) {
			want = append(want, fl.Name)
		}
		if !slices.Equal(recs[0], want) {
			t.Errorf("%s header %v, want the canonical template", f.Name, recs[0])
		}
		if len(recs)-1 != int(f.Rows) {
			t.Errorf("%s: %d rows, SynthFile says %d", f.Name, len(recs)-1, f.Rows)
		}
		return recs[1:]
	}
	got := map[string][][]string{}
	for _, f := range files {
		if f.Name != schemas.CanonicalFileName(f.Trust, f.Kind, synth.SynthDefaultExportDate) {
			t.Errorf("canonical name %s", f.Name)
		}
		got[f.Trust+f.Kind] = read(f)
	}
	text := func(v synth.SynthValue) string {
		if !v.Valid {
			return ""
		}
		return strconv.Itoa(int(v.Value))
	}
	date := func(d time.Time) string {
		if d.IsZero() {
			return ""
		}
		return d.Format(time.DateOnly)
	}
	next := map[string]int{}
	err := synth.Synthesize(context.Background(), s, opts, func(trust string, r *synth.SynthInterview) error {
		k := trust + schemas.KindParticipants
		rec := got[k][next[k]]
		next[k]++
		withdrawn := "0"
		if r.Withdrawn {
			withdrawn = "1"
		}
		want := []string{r.ParticipantID, r.Team, r.Wave, date(r.Date)}
		for _, d := range s.DemographicFields() { // in export order
			if d.Binary {
				want = append(want, text(r.Flags[slices.Index(s.BinaryDemographics(), d.Name)]))
			} else {
				want = append(want, r.Demo[slices.Index(s.CodedDemographics(), d.Name)])
			}
		}
		want = append(want, withdrawn)
		for _, v := range r.Items {
			want = append(want, text(v))
		}
		if !slices.Equal(rec, want) {
			t.Fatalf("%s row %d:\n file %v\n rows %v", trust, next[k], rec, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = synth.SynthesizeFidelity(context.Background(), s, opts, func(trust string, r *synth.SynthRating) error {
		k := trust + schemas.KindFidelity
		rec := got[k][next[k]]
		next[k]++
		want := []string{r.Team, r.Period, r.RaterID, r.RaterRole, date(r.Date)}
		for _, v := range r.Components {
			want = append(want, text(v))
		}
		if !slices.Equal(rec, want) {
			t.Fatalf("%s rating %d:\n file %v\n rows %v", trust, next[k], rec, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, rows := range got {
		if next[k] != len(rows) {
			t.Errorf("%s: file has %d rows, generator %d", k, len(rows), next[k])
		}
	}
}

func TestSynthExportDateCutsOff(t *testing.T) {
	s := synthStudy(t)
	cut := time.Date(2018, time.April, 30, 0, 0, 0, 0, time.UTC)
	c, _ := synthCounts(t, s, synth.SynthOptions{Seed: 1, ExportDate: cut})
	if c.recruited == 0 || c.recruited >= 159 || c.followupRows != 0 {
		t.Errorf("export on 2018-04-30: %+v, want part of the recruits and no follow-up", c)
	}
	_, files := synthWrite(t, synth.SynthOptions{Seed: 1, ExportDate: cut})
	if !strings.Contains(files[0].Name, "20180430") {
		t.Errorf("file %s does not carry the export date", files[0].Name)
	}
}

func TestSynthBadInput(t *testing.T) {
	s := synthStudy(t)
	if _, err := synth.WriteSynth(context.Background(), s, synth.SynthOptions{Participants: -1}, t.TempDir()); err == nil {
		t.Error("negative participants accepted")
	}
	if _, err := synth.WriteSynth(context.Background(), s, synth.SynthOptions{}, ""); err == nil {
		t.Error("empty output folder accepted")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := synth.WriteSynth(context.Background(), s, synth.SynthOptions{}, file); err == nil {
		t.Error("a file as output folder accepted")
	}
	if err := synth.SynthesizeTrust(context.Background(), s, synth.SynthOptions{}, "XYZ", func(*synth.SynthInterview) error { return nil }); err == nil {
		t.Error("unknown trust accepted")
	}
	stop := errors.New("stop")
	if err := synth.Synthesize(context.Background(), s, synth.SynthOptions{}, func(string, *synth.SynthInterview) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("visit error not returned: %v", err)
	}
}

func TestSynthCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	_, err := synth.WriteSynth(ctx, synthStudy(t), synth.SynthOptions{Participants: 100000}, dir)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("canceled run left %d files", len(entries))
	}
}

// TestWriteBundled checks that testdata/synth is what the generator writes
// now with the default options; -synth.update rewrites it.
func TestWriteBundled(t *testing.T) {
	update := *synthUpdate
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		update = true
	}
	s := synthStudy(t)
	if update {
		if err := os.RemoveAll(synthBundled); err != nil {
			t.Fatal(err)
		}
		if _, err := synth.WriteSynth(context.Background(), s, synth.SynthOptions{Seed: 1}, synthBundled); err != nil {
			t.Fatal(err)
		}
	}
	dir, files := synthWrite(t, synth.SynthOptions{Seed: 1})
	entries, err := os.ReadDir(synthBundled)
	if err != nil {
		t.Fatalf("%v (write it with go test ./pipeline -run TestWriteBundled -synth.update)", err)
	}
	var bundled, fresh []string
	for _, e := range entries {
		bundled = append(bundled, e.Name())
	}
	for _, f := range files {
		fresh = append(fresh, f.Name)
	}
	slices.Sort(bundled)
	slices.Sort(fresh)
	if !slices.Equal(bundled, fresh) {
		t.Fatalf("testdata/synth holds %v, the generator writes %v", bundled, fresh)
	}
	for _, name := range fresh {
		if !bytes.Equal(synthRead(t, filepath.Join(synthBundled, name)), synthRead(t, filepath.Join(dir, name))) {
			t.Errorf("testdata/synth/%s is not what the generator writes now (rewrite with -synth.update)", name)
		}
	}
}

// BenchmarkSynthCanonical writes 100,000 participants in the canonical
// format per operation.
func BenchmarkSynthCanonical(b *testing.B) {
	s := synthStudy(b)
	dir := b.TempDir()
	for b.Loop() {
		if _, err := synth.WriteSynth(context.Background(), s, synth.SynthOptions{Seed: 1, Participants: 100000, Canonical: true}, dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSynthDialects writes 20,000 participants in the trusts' own
// dialects (HPFT's XLSX included) per operation.
func BenchmarkSynthDialects(b *testing.B) {
	s := synthStudy(b)
	dir := b.TempDir()
	for b.Loop() {
		if _, err := synth.WriteSynth(context.Background(), s, synth.SynthOptions{Seed: 1, Participants: 20000}, dir); err != nil {
			b.Fatal(err)
		}
	}
}

// synthDemo is a synthetic row's value of the coded demographic name.
func synthDemo(s *schemas.Study, r *synth.SynthInterview, name string) string {
	return r.Demo[slices.Index(s.CodedDemographics(), name)]
}
