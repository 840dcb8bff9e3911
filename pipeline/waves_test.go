package pipeline

import (
	"context"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

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
	if got, want := compare.FlowStages(s), []string{"recruited", "baseline", "month6", "month12", "withdrawn", "lost"}; !slices.Equal(got, want) {
		t.Errorf("flow stages %v, want %v", got, want)
	}
	var stages []string
	wavesTestScan(t, gen, "flow", []string{"stage"}, func(c []arrow.Array, i int) {
		if st := wavesStr(c[0], i); !slices.Contains(stages, st) {
			stages = append(stages, st)
		}
	})
	if want := []string{"baseline", "lost", "month12", "month6", "recruited", "withdrawn"}; !slices.Equal(stages, want) {
		t.Errorf("flow table stages %v, want %v (sorted)", stages, want)
	}
	var recruited, month6, month12 int64
	for k, c := range flow {
		want := flowWant[k]
		for _, st := range compare.FlowStages(s) {
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
	// row per scale of the instrument.
	wantScores := map[string]int{}
	seen := map[string]bool{}
	wavesTestScan(t, gen, "responses", []string{"study_id", "wave", "instrument"}, func(c []arrow.Array, i int) {
		k := wavesStr(c[0], i) + "\x00" + wavesStr(c[1], i) + "\x00" + wavesStr(c[2], i)
		if seen[k] {
			return
		}
		seen[k] = true
		in, _ := s.Instrument(wavesStr(c[2], i))
		wantScores[wavesStr(c[1], i)] += len(in.Scales)
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
