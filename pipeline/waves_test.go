package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/compare"
	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/score"
	"github.com/connectingpeople/cpi/pipeline/synth"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

const threeWaveStudy = "../testdata/studies/three-waves/study.yaml"

// wavesTestPerson is what synth generated for one participant.
type wavesTestPerson struct {
	trust, team, arm string
	withdrawn        bool
	interviewed      map[string]bool // wave → a dated row
}

// wavesTestSynth generates the study's participants in memory: what the
// exports hold, by study_id.
func wavesTestSynth(t *testing.T, s *schemas.Study, opts synth.SynthOptions) map[string]*wavesTestPerson {
	t.Helper()
	out := map[string]*wavesTestPerson{}
	err := synth.Synthesize(context.Background(), s, opts, func(trust string, r *synth.SynthInterview) error {
		sid := trust + "-" + r.ParticipantID
		p, ok := out[sid]
		if !ok {
			p = &wavesTestPerson{trust: trust, team: r.Team, arm: r.Arm, interviewed: map[string]bool{}}
			out[sid] = p
		}
		p.withdrawn = p.withdrawn || r.Withdrawn
		if !r.Date.IsZero() {
			p.interviewed[r.Wave] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wavesTestScan calls row for every row of a table with the named columns.
func wavesTestScan(t *testing.T, gen, table string, names []string, row func(cols []arrow.Array, i int)) {
	t.Helper()
	err := warehouse.ScanTable(context.Background(), gen, table, func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, names...)
		if err != nil {
			return err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			row(cols, i)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
}

func wavesStr(a arrow.Array, i int) string { return strings.Clone(a.(*array.String).Value(i)) }
func wavesBool(a arrow.Array, i int) bool {
	b := a.(*array.Boolean)
	return b.IsValid(i) && b.Value(i)
}

// TestThreeWaveStudy runs the three-wave study (baseline, month6, month12)
// from synth's generator through ingest, score and the flow, and checks
// every wave against what synth generated and against the tables' own
// counts recomputed here.
func TestThreeWaveStudy(t *testing.T) {
	s, err := schemas.Load(threeWaveStudy)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"baseline", "month6", "month12"}; !slices.Equal(s.Waves, want) || s.PrimaryWave() != "month12" {
		t.Fatalf("study waves %v primary %s, want %v and month12", s.Waves, s.PrimaryWave(), want)
	}
	env := warehouse.Env{Study: s, Version: "test"}
	opts := synth.SynthOptions{Seed: 1, Canonical: true}
	people := wavesTestSynth(t, s, opts)
	inbox := t.TempDir()
	if _, err := synth.WriteSynth(context.Background(), s, opts, inbox); err != nil {
		t.Fatal(err)
	}
	wh := filepath.Join(t.TempDir(), "w")
	if _, err := RunStages(context.Background(), env, wh, "ingest", RunOptions{Create: true}, ingest.Ingest([]string{inbox}), score.Score, compare.Flow); err != nil {
		t.Fatalf("ingest, score and flow: %v", err)
	}
	w, err := warehouse.OpenWarehouse(wh, false)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := w.CurrentDir()
	if err != nil {
		t.Fatal(err)
	}

	// participants: one row per person synth generated.
	var sids []string
	wavesTestScan(t, gen, "participants", []string{"study_id", "withdrawn", "interviewed_baseline", "interviewed_followup"}, func(c []arrow.Array, i int) {
		sid := wavesStr(c[0], i)
		sids = append(sids, sid)
		p, ok := people[sid]
		if !ok {
			t.Errorf("participants: %s was not generated", sid)
			return
		}
		if wavesBool(c[1], i) != p.withdrawn || wavesBool(c[2], i) != p.interviewed["baseline"] || wavesBool(c[3], i) != p.interviewed["month12"] {
			t.Errorf("participants %s: withdrawn %v baseline %v followup %v, synth %+v", sid, wavesBool(c[1], i), wavesBool(c[2], i), wavesBool(c[3], i), *p)
		}
	})
	sort.Strings(sids)
	if len(sids) != len(people) || len(slices.Compact(slices.Clone(sids))) != len(sids) {
		t.Fatalf("participants: %d rows (%d distinct), synth generated %d", len(sids), len(slices.Compact(slices.Clone(sids))), len(people))
	}

	// interviews: participants × 3, each as synth generated it; the flow
	// recomputed from them, per trust × arm.
	type key = compare.FlowKey
	interviewed := map[key]map[string]int64{} // interviewed rows per wave
	flowWant := map[key]map[string]int64{}
	var cur string
	var curKey key
	var curWd bool
	curIv := map[string]bool{}
	settle := func() {
		if cur == "" {
			return
		}
		f := flowWant[curKey]
		if f == nil {
			f = map[string]int64{}
			flowWant[curKey] = f
		}
		f["recruited"]++
		if curIv["baseline"] {
			f["baseline"]++
			switch {
			case curWd:
				f["withdrawn"]++
			default:
				f["analysed_itt"]++ // interviewed at baseline, not withdrawn
				for _, w := range []string{"month6", "month12"} {
					if curIv[w] {
						f[w]++
					}
				}
				if !curIv["month12"] {
					f["lost"]++
				}
			}
		}
	}
	rows := 0
	var lastWave int
	wavesTestScan(t, gen, "interviews", []string{"study_id", "wave", "interview_date", "interviewed", "withdrawn", "trust", "team", "arm"}, func(c []arrow.Array, i int) {
		rows++
		sid, wave := wavesStr(c[0], i), wavesStr(c[1], i)
		p := people[sid]
		if p == nil {
			t.Errorf("interviews: %s was not generated", sid)
			return
		}
		iv, wd := wavesBool(c[3], i), wavesBool(c[4], i)
		if iv != p.interviewed[wave] || wd != p.withdrawn || c[2].IsValid(i) != iv ||
			wavesStr(c[5], i) != p.trust || wavesStr(c[6], i) != p.team || wavesStr(c[7], i) != p.arm {
			t.Errorf("interviews %s %s: interviewed %v withdrawn %v dated %v, synth %+v", sid, wave, iv, wd, c[2].IsValid(i), *p)
		}
		k := key{Trust: p.trust, Arm: p.arm}
		if interviewed[k] == nil {
			interviewed[k] = map[string]int64{}
		}
		if iv {
			interviewed[k][wave]++
		}
		if sid != cur {
			settle()
			cur, curKey, curWd = sid, k, wd
			clear(curIv)
			lastWave = -1
		}
		if wi := s.WaveIndex(wave); wi != lastWave+1 {
			t.Errorf("interviews %s: wave %s at position %d, want the study's order", sid, wave, lastWave+1)
		}
		lastWave++
		curIv[wave] = iv
	})
	settle()
	if rows != 3*len(people) {
		t.Errorf("interviews: %d rows, want %d participants × 3 waves", rows, len(people))
	}

	// flow: the study's stages, equal to the recomputation, adding up.
	flow, err := compare.ReadFlowTable(context.Background(), s, gen)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := compare.FlowStages(s), []string{"recruited", "baseline", "month6", "month12", "withdrawn", "lost", "analysed", "analysed_itt"}; !slices.Equal(got, want) {
		t.Errorf("flow stages %v, want %v", got, want)
	}
	var stages []string
	wavesTestScan(t, gen, "flow", []string{"stage"}, func(c []arrow.Array, i int) {
		if st := wavesStr(c[0], i); !slices.Contains(stages, st) {
			stages = append(stages, st)
		}
	})
	if want := []string{"analysed", "analysed_itt", "baseline", "lost", "month12", "month6", "recruited", "withdrawn"}; !slices.Equal(stages, want) {
		t.Errorf("flow table stages %v, want %v (sorted)", stages, want)
	}
	var recruited, month6, month12 int64
	for k, c := range flow {
		want := flowWant[k]
		// analysed needs the scores: at most the primary wave's here (its
		// sum is the primary n_obs in TestStudyReportFrontBundled).
		if c.Analysed > c.Followup {
			t.Errorf("flow %v: %d analysed of %d interviewed at month12", k, c.Analysed, c.Followup)
		}
		for _, st := range compare.FlowStages(s) {
			if st == compare.FlowAnalysed {
				continue
			}
			if c.Stage(st) != want[st] {
				t.Errorf("flow %v %s: %d, recomputed from interviews %d", k, st, c.Stage(st), want[st])
			}
		}
		if c.Waves["baseline"] != interviewed[k]["baseline"] || c.Baseline != c.Waves["baseline"] || c.Followup != c.Waves["month12"] {
			t.Errorf("flow %v: baseline %d (interviewed %d), followup %d month12 %d", k, c.Waves["baseline"], interviewed[k]["baseline"], c.Followup, c.Waves["month12"])
		}
		for _, w := range []string{"month6", "month12"} {
			if c.Waves[w] > interviewed[k][w] {
				t.Errorf("flow %v %s: %d, more than the %d interviewed", k, w, c.Waves[w], interviewed[k][w])
			}
		}
		if c.Baseline != c.Followup+c.Withdrawn+c.Lost || c.Waves["month12"] > c.Waves["month6"] || c.Waves["month6"] > c.Baseline {
			t.Errorf("flow %v does not add up: %+v", k, c)
		}
		recruited += c.Recruited
		month6 += c.Waves["month6"]
		month12 += c.Waves["month12"]
	}
	if recruited != int64(len(people)) || len(flow) != 10 {
		t.Errorf("flow: %d recruited in %d groups, want each of %d participants once in 10", recruited, len(flow), len(people))
	}
	if month12 < int64(len(people))/2 {
		t.Errorf("flow: %d of %d followed up at month12: the default export date should hold the last wave", month12, len(people))
	}

	// scores at every wave: per interview and instrument in responses, one
	// row per scale of the instrument (but QALYs at baseline).
	wantScores := map[string]int{}
	seen := map[string]bool{}
	wavesTestScan(t, gen, "responses", []string{"study_id", "wave", "instrument"}, func(c []arrow.Array, i int) {
		k := wavesStr(c[0], i) + "\x00" + wavesStr(c[1], i) + "\x00" + wavesStr(c[2], i)
		if seen[k] {
			return
		}
		seen[k] = true
		in, _ := s.Instrument(wavesStr(c[2], i))
		for _, sc := range in.Scales {
			// An area under the curve (eq5d5l.qaly) exists after the first wave only.
			if sc.Method != "auc" || wavesStr(c[1], i) != s.Waves[0] {
				wantScores[wavesStr(c[1], i)]++
			}
		}
	})
	gotScores := map[string]int{}
	gas := map[string]int{}
	wavesTestScan(t, gen, "scores", []string{"wave", "instrument"}, func(c []arrow.Array, i int) {
		gotScores[wavesStr(c[0], i)]++
		if wavesStr(c[1], i) == "gas" {
			gas[wavesStr(c[0], i)]++
		}
	})
	for _, w := range s.Waves {
		if gotScores[w] == 0 || gotScores[w] != wantScores[w] {
			t.Errorf("scores at %s: %d rows, want %d from responses (and some)", w, gotScores[w], wantScores[w])
		}
	}
	if gas["baseline"] != 0 || gas["month6"] == 0 || gas["month12"] == 0 {
		t.Errorf("gas scores per wave %v: want month6 and month12 only", gas)
	}
	t.Logf("%d participants; flow month6 %d, month12 %d; scores per wave %v", len(people), month6, month12, gotScores)
}

// wavesTestStudyFile writes the default study with edits (old → new, each
// once) into a folder of its own, with the embedded site mappings edited
// likewise (siteEdits by site file), and loads it.
func wavesTestStudyFile(t *testing.T, edits []string, siteEdits map[string][]string) *schemas.Study {
	t.Helper()
	dir := t.TempDir()
	write := func(name, src string, edits []string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for i := 0; i+1 < len(edits); i += 2 {
			if strings.Count(text, edits[i]) != 1 {
				t.Fatalf("%s: %q is not in it once", src, edits[i])
			}
			text = strings.Replace(text, edits[i], edits[i+1], 1)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	write("study.yaml", "../schemas/study.yaml", edits)
	for site, e := range siteEdits {
		write("sites/"+site+".yaml", "../schemas/sites/"+site+".yaml", e)
	}
	s, err := schemas.Load(filepath.Join(dir, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStudyDemographics: a study's own demographics (employment, coded,
// and carer, 0/1, instead of living_alone) are the export's columns, the
// participants table's columns and the code lists, in the study's order,
// and go from synth through ingest into participants as generated.
func TestStudyDemographics(t *testing.T) {
	s := wavesTestStudyFile(t, []string{
		"  living_alone: yes_no\n", "  employment: [employed, unemployed, student]\n  carer: yes_no\n",
		"propensity_covariates: [age_band, gender, living_alone, diagnosis_group]", "propensity_covariates: [age_band, gender, carer, employment]",
	}, map[string][]string{"awp": {"  \"Lives alone\": living_alone\n", "", "  living_alone: {\"Y\": \"1\", \"N\": \"0\"}\n", ""}})
	want := []schemas.Demographic{
		{Name: "age_band", Codes: []string{"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}},
		{Name: "gender", Codes: []string{"female", "male", "non_binary", "other", "not_stated"}},
		{Name: "ethnicity", Codes: []string{"white", "mixed", "asian", "black", "other", "not_stated"}},
		{Name: "employment", Codes: []string{"employed", "unemployed", "student"}},
		{Name: "carer", Binary: true},
		{Name: "diagnosis_group", Codes: []string{"psychosis", "bipolar", "depression", "anxiety", "personality", "other", "not_stated"}},
	}
	if got := s.DemographicFields(); !reflect.DeepEqual(got, want) {
		t.Fatalf("DemographicFields\n got %+v\nwant %+v", got, want)
	}
	var export []string
	for _, f := range s.ExportFields(schemas.KindParticipants)[:11] {
		export = append(export, f.Name)
	}
	if want := []string{"participant_id", "team_code", "wave", "interview_date", "age_band", "gender", "ethnicity", "employment", "carer", "diagnosis_group", "withdrawn"}; !slices.Equal(export, want) {
		t.Errorf("export columns %v, want %v", export, want)
	}
	var cols []string
	pt := s.Tables.Table("participants")
	for _, c := range pt.Columns[:10] {
		cols = append(cols, c.Name+":"+c.Type+":"+c.Codes)
	}
	if want := []string{"study_id:string:", "trust:string:trusts", "team:string:teams", "arm:string:arms",
		"age_band:string:age_band", "gender:string:gender", "ethnicity:string:ethnicity", "employment:string:employment",
		"carer:int32:yes_no", "diagnosis_group:string:diagnosis_group"}; !slices.Equal(cols, want) {
		t.Errorf("participants columns %v, want %v", cols, want)
	}
	if pt.Columns[10].Name != "withdrawn" || pt.ColumnIndex("living_alone") >= 0 {
		t.Errorf("participants: %s after the demographics, living_alone at %d", pt.Columns[10].Name, pt.ColumnIndex("living_alone"))
	}
	if def, _ := schemas.Default(); def.Tables.Table("participants").ColumnIndex("living_alone") != 7 || def.Tables.Table("participants").ColumnIndex("employment") >= 0 {
		t.Error("a study's demographics leaked into the default study's participants table")
	}
	codes, err := s.CodeList("employment")
	if err != nil || len(codes) != 3 || codes[2] != (schemas.Code{Value: "student", Label: "student"}) {
		t.Errorf("employment code list %v, %v", codes, err)
	}

	// synth → ingest: participants hold each person's baseline values.
	type demo struct {
		employment string
		carer      synth.SynthValue
	}
	wantRows := map[string]demo{}
	levels := map[string]int{}
	opts := synth.SynthOptions{Seed: 3}
	err = synth.Synthesize(context.Background(), s, opts, func(trust string, r *synth.SynthInterview) error {
		if r.Wave == s.BaselineWave() {
			d := demo{employment: r.Demo[3], carer: r.Flags[0]}
			wantRows[trust+"-"+r.ParticipantID] = d
			levels[d.employment]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if levels["employed"] == 0 || levels["unemployed"] == 0 || levels["student"] == 0 {
		t.Errorf("employment levels drawn %v: want each of the study's codes", levels)
	}
	inbox := t.TempDir()
	if _, err := synth.WriteSynth(context.Background(), s, opts, inbox); err != nil {
		t.Fatal(err)
	}
	env := warehouse.Env{Study: s, Version: "test"}
	wh := filepath.Join(t.TempDir(), "w")
	if _, err := RunStages(context.Background(), env, wh, "ingest", RunOptions{Create: true}, ingest.Ingest([]string{inbox})); err != nil {
		t.Fatal(err)
	}
	w, err := warehouse.OpenWarehouse(wh, false)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := w.CurrentDir()
	if err != nil {
		t.Fatal(err)
	}
	n, carers := 0, 0
	wavesTestScan(t, gen, "participants", []string{"study_id", "employment", "carer"}, func(c []arrow.Array, i int) {
		n++
		sid := wavesStr(c[0], i)
		got := demo{carer: synth.SynthValue{Valid: c[2].IsValid(i)}}
		if c[1].IsValid(i) {
			got.employment = wavesStr(c[1], i)
		}
		if got.carer.Valid {
			got.carer.Value = c[2].(*array.Int32).Value(i)
			carers += int(got.carer.Value)
		}
		if w, ok := wantRows[sid]; !ok || got != w {
			t.Errorf("participants %s: %+v, synth %+v", sid, got, w)
		}
	})
	if n != len(wantRows) || carers == 0 || carers == n {
		t.Errorf("participants: %d rows (%d carers), synth generated %d", n, carers, len(wantRows))
	}
}

// TestSynthThreeWaves: synth follows the three-wave study: every wave is
// generated in order, attrition is monotone (no interview after a wave
// missed, nothing after a withdrawal), interviews are spaced 182 ± 21 days
// (± 1 off a weekend) apart, and GAS is answered only at month6 and month12.
func TestSynthThreeWaves(t *testing.T) {
	s, err := schemas.Load(threeWaveStudy)
	if err != nil {
		t.Fatal(err)
	}
	gas, _ := s.Instrument("gas")
	type person struct {
		waves []string
		dates []time.Time
		ended bool // withdrawn or not interviewed
	}
	people := map[string]*person{}
	var order []string
	gasAt := map[string]int{}
	err = synth.Synthesize(context.Background(), s, synth.SynthOptions{Seed: 11, Participants: 600}, func(trust string, r *synth.SynthInterview) error {
		sid := trust + "-" + r.ParticipantID
		p := people[sid]
		if p == nil {
			p = &person{}
			people[sid] = p
			order = append(order, sid)
		}
		if p.ended {
			t.Errorf("%s: a %s row after the participant withdrew or was not interviewed", sid, r.Wave)
		}
		if want := s.Waves[len(p.waves)]; r.Wave != want {
			t.Errorf("%s: wave %s, want %s (no wave skipped)", sid, r.Wave, want)
		}
		p.waves = append(p.waves, r.Wave)
		if r.Date.IsZero() || r.Withdrawn {
			p.ended = true
		}
		if !r.Date.IsZero() {
			if n := len(p.dates); n > 0 {
				days := int(r.Date.Sub(p.dates[n-1]).Hours() / 24)
				if days < 182-21-1 || days > 182+21+1 {
					t.Errorf("%s: %s %d days after the wave before", sid, r.Wave, days)
				}
			}
			p.dates = append(p.dates, r.Date)
		}
		for i, name := range r.ItemNames {
			if r.Items[i].Valid && slices.ContainsFunc(gas.Items, func(it schemas.Item) bool { return it.Name == name }) {
				gasAt[r.Wave]++
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	reached := map[int]int{}
	for _, sid := range order {
		reached[len(people[sid].dates)]++
	}
	// Monotone attrition with losses at each wave: some stop after each.
	if reached[1] == 0 || reached[2] == 0 || reached[3] == 0 || reached[3] < len(order)/2 {
		t.Errorf("participants by interviews attended %v of %d: want losses at every wave and most at month12", reached, len(order))
	}
	if gasAt["baseline"] != 0 || gasAt["month6"] == 0 || gasAt["month12"] == 0 {
		t.Errorf("GAS answered at %v: want month6 and month12 only", gasAt)
	}
}

// TestFlowNeedsInterviews: a warehouse whose participants have no
// interviews (built before the table existed) makes the flow fail with
// what to do, rather than count those trusts as empty.
func TestFlowNeedsInterviews(t *testing.T) {
	env := ingestTestEnv(t)
	wh := filepath.Join(t.TempDir(), "w")
	if _, err := RunStages(context.Background(), env, wh, "ingest", RunOptions{Create: true}, ingest.Ingest([]string{"../testdata/synth"})); err != nil {
		t.Fatal(err)
	}
	w, err := warehouse.OpenWarehouse(wh, false)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := compare.Flow(context.Background(), env, tx); err != nil {
		t.Fatalf("flow with interviews: %v", err)
	}
	if err := os.Remove(filepath.Join(tx.Dir, "tables", "interviews", "trust=EPUT", "data.parquet")); err != nil {
		t.Fatal(err)
	}
	err = compare.Flow(context.Background(), env, tx)
	if err == nil || !strings.Contains(err.Error(), "participants of trust=EPUT have no interviews table") || !strings.Contains(err.Error(), "cpi rebuild") {
		t.Errorf("flow without EPUT's interviews: %v", err)
	}
}
