package redcap_test

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"testing"

	"github.com/connectingpeople/cpi/pipeline/redcap"
	"github.com/connectingpeople/cpi/pipeline/synth"
	"github.com/connectingpeople/cpi/schemas"
)

func readAll(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}

// TestSynthRedcapMatchesCanonical writes one synthetic study both ways and
// checks the REDCap export cell by cell against the canonical exports:
// the same rows (record, event), the DAG of each row the team's, every
// field the canonical cell (demographics at the baseline event only), and
// the fidelity files byte for byte the canonical ones.
func TestSynthRedcapMatchesCanonical(t *testing.T) {
	for _, file := range []string{"", "../../testdata/studies/three-waves/study.yaml"} {
		s, err := schemas.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		opts := synth.SynthOptions{Seed: 7, Canonical: true}
		canon, rc := t.TempDir(), t.TempDir()
		cf, err := synth.WriteSynth(ctx, s, opts, canon)
		if err != nil {
			t.Fatal(err)
		}
		rf, err := synth.WriteRedcapStudy(ctx, s, opts, rc)
		if err != nil {
			t.Fatal(err)
		}
		p, err := redcap.Build(s)
		if err != nil {
			t.Fatal(err)
		}
		demo := map[string]bool{}
		for _, d := range s.DemographicFields() {
			demo[d.Name] = true
		}
		type key struct{ id, wave string }
		want := map[key]map[string]string{}
		var canonRows int64
		for _, f := range cf {
			if f.Kind != schemas.KindParticipants {
				continue
			}
			rows := readAll(t, f.Path)
			for _, r := range rows[1:] {
				m := map[string]string{}
				for i, h := range rows[0] {
					m[h] = r[i]
				}
				k := key{m["participant_id"], m["wave"]}
				if _, dup := want[k]; dup {
					t.Fatalf("participant %s twice at %s across trusts", k.id, k.wave)
				}
				want[k] = m
				canonRows++
			}
		}
		if rf[0].Rows != canonRows {
			t.Fatalf("%s: REDCap export has %d rows, the canonical exports %d", file, rf[0].Rows, canonRows)
		}
		if rf[0].Name != redcap.FileName(s, synth.DefaultExportDate(s)) {
			t.Fatalf("name %s", rf[0].Name)
		}
		teamOf := map[string]string{}
		for _, d := range p.DAGs {
			teamOf[d.Unique] = d.Team
		}
		waveOf := map[string]string{}
		for _, e := range p.Events {
			waveOf[e.Unique] = e.Wave
		}
		rows := readAll(t, rf[0].Path)
		cols := p.ExportColumns()
		if len(rows[0]) != len(cols) {
			t.Fatalf("header %d columns, want %d", len(rows[0]), len(cols))
		}
		seen := 0
		for _, r := range rows[1:] {
			m := map[string]string{}
			for i, h := range rows[0] {
				m[h] = r[i]
			}
			k := key{m[redcap.RecordID], waveOf[m[redcap.EventColumn]]}
			c, ok := want[k]
			if !ok {
				t.Fatalf("REDCap row %v has no canonical row", k)
			}
			seen++
			if teamOf[m[redcap.DAGColumn]] != c["team_code"] {
				t.Fatalf("%v: DAG %s, team %s", k, m[redcap.DAGColumn], c["team_code"])
			}
			for _, f := range s.ExportFields(schemas.KindParticipants) {
				switch f.Name {
				case "participant_id", "team_code", "wave":
					continue
				}
				w := c[f.Name]
				if demo[f.Name] && k.wave != s.BaselineWave() {
					w = ""
				}
				if f.Instrument != "" {
					if in, _ := s.Instrument(f.Instrument); !in.AskedAt(k.wave) && m[f.Name] != "" {
						t.Fatalf("%v: %s filled at a wave its form is not collected at", k, f.Name)
					}
				}
				if m[f.Name] != w {
					t.Fatalf("%v: %s = %q, canonical %q", k, f.Name, m[f.Name], w)
				}
			}
		}
		if seen != len(want) {
			t.Fatalf("%d REDCap rows, %d canonical", seen, len(want))
		}
		for _, f := range rf[1:] {
			a, _ := os.ReadFile(f.Path)
			b, err := os.ReadFile(filepath.Join(canon, f.Name))
			if err != nil || string(a) != string(b) {
				t.Fatalf("fidelity file %s differs from the canonical one (%v)", f.Name, err)
			}
		}
	}
}
