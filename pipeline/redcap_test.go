package pipeline

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/connectingpeople/cpi/pipeline/compare"
	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/redcap"
	"github.com/connectingpeople/cpi/pipeline/synth"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// tableText reads every row of a table of the warehouse at wh as text, the
// columns in drop left out, in file order.
func tableText(t *testing.T, wh, table string, drop ...string) (cols []string, rows []string) {
	t.Helper()
	w, err := warehouse.OpenWarehouse(wh, false)
	if err != nil {
		t.Fatal(err)
	}
	gen, _ := w.CurrentDir()
	err = warehouse.ScanTable(context.Background(), gen, table, func(rec arrow.RecordBatch) error {
		var keep []int
		cols = cols[:0]
		for i, f := range rec.Schema().Fields() {
			if !slices.Contains(drop, f.Name) {
				keep = append(keep, i)
				cols = append(cols, f.Name)
			}
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			var b strings.Builder
			for _, i := range keep {
				a := rec.Column(i)
				if a.IsNull(r) {
					b.WriteString("NULL")
				} else {
					b.WriteString(a.ValueStr(r))
				}
				b.WriteByte('|')
			}
			rows = append(rows, b.String())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", table, err)
	}
	return cols, rows
}

// TestRedcapRoundTrip writes one synthetic study as the trusts' canonical
// exports and as one REDCap records export (plus the same fidelity
// exports), runs the whole pipeline on each, and checks every table is the
// same, row for row, but for source_sha256 (the REDCap parts are other
// bytes than the canonical exports), source_line (a row from REDCap
// carries its line in the REDCap export, checked against that export read
// again) and ingest_files (names, hashes and arrival times). The REDCap export is ingested in one file:
// one part per trust, each current, rows_read = rows_accepted +
// rows_rejected per part, and the parts' rows add up to the REDCap
// export's. For the bundled study and a three-wave study.
func TestRedcapRoundTrip(t *testing.T) {
	for _, file := range []string{"", filepath.Join("..", "testdata", "studies", "three-waves", "study.yaml")} {
		t.Run(fmt.Sprintf("study=%s", filepath.Base(file)), func(t *testing.T) {
			s, err := schemas.Load(file, schemas.KnownAnalyses(compare.Names()...))
			if err != nil {
				t.Fatal(err)
			}
			env := warehouse.Env{Study: s, Version: "test"}
			ctx := context.Background()
			opts := synth.SynthOptions{Seed: 3, Canonical: true}
			canonIn, rcIn := t.TempDir(), t.TempDir()
			if _, err := synth.WriteSynth(ctx, s, opts, canonIn); err != nil {
				t.Fatal(err)
			}
			files, err := synth.WriteRedcapStudy(ctx, s, opts, rcIn)
			if err != nil {
				t.Fatal(err)
			}
			whA, whB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
			if _, err := RunStages(ctx, env, whA, "run", RunOptions{Create: true}, RunAll(canonIn)...); err != nil {
				t.Fatal(err)
			}
			sum, err := RunStages(ctx, env, whB, "run", RunOptions{Create: true}, RunAll(rcIn)...)
			if err != nil {
				t.Fatal(err)
			}
			if sum.FilesQuarantined != 0 || sum.RowsRejected != 0 {
				t.Fatalf("REDCap run: %d quarantined, %d rows rejected", sum.FilesQuarantined, sum.RowsRejected)
			}
			w, _ := warehouse.OpenWarehouse(whB, false)
			gen, _ := w.CurrentDir()
			l, err := warehouse.ReadLedger(gen)
			if err != nil {
				t.Fatal(err)
			}
			parts := map[string]int64{}
			var read int64
			for _, f := range l.Files {
				if f.Kind != schemas.KindParticipants {
					continue
				}
				if f.RowsRead != f.RowsAccepted+f.RowsRejected || f.Status != warehouse.StatusCurrent {
					t.Errorf("part %s: %+v", f.Name, f)
				}
				parts[f.Trust] += f.RowsRead
				read += f.RowsRead
			}
			if len(parts) != len(s.Trusts) || read != files[0].Rows {
				t.Fatalf("parts %v read %d rows, the REDCap export has %d", parts, read, files[0].Rows)
			}
			tables := s.Tables.Names()
			compared := 0
			for _, tb := range tables {
				if tb == "ingest_files" {
					continue
				}
				if _, err := os.Stat(filepath.Join(gen, "tables", tb)); err != nil {
					continue // a table this study does not write
				}
				ca, ra := tableText(t, whA, tb, "source_sha256", "source_line")
				cb, rb := tableText(t, whB, tb, "source_sha256", "source_line")
				if !slices.Equal(ca, cb) {
					t.Fatalf("%s: columns %v and %v", tb, ca, cb)
				}
				if len(ra) != len(rb) {
					t.Fatalf("%s: %d rows from the canonical exports, %d from REDCap", tb, len(ra), len(rb))
				}
				for i := range ra {
					if ra[i] != rb[i] {
						t.Fatalf("%s row %d differs:\ncanonical %s\nREDCap    %s", tb, i, ra[i], rb[i])
					}
				}
				compared++
			}
			if compared < 12 {
				t.Fatalf("compared %d tables of %v", compared, tables)
			}
			// source_line of a row from REDCap is its line in the REDCap
			// export, found here by reading that export again.
			rcLines := redcapExportLines(t, s, rcIn)
			rc, resp := tableText(t, whB, "responses")
			iID, iWave, iLine := slices.Index(rc, "study_id"), slices.Index(rc, "wave"), slices.Index(rc, "source_line")
			for _, r := range resp {
				c := strings.Split(r, "|")
				want, ok := rcLines[c[iID]+"|"+c[iWave]]
				if !ok || c[iLine] != fmt.Sprint(want) {
					t.Fatalf("responses row %s: source_line %s, the REDCap export's line is %d", r, c[iLine], want)
				}
			}
			_, parts0 := tableText(t, whB, "participants")
			t.Logf("%d tables equal; %d responses, %d participants; parts %v", compared, len(resp), len(parts0), parts)
		})
	}
}

// redcapExportLines reads the REDCap export in dir and returns the line
// of each record's row at each wave, by study_id|wave.
func redcapExportLines(t *testing.T, s *schemas.Study, dir string) map[string]int {
	t.Helper()
	p, err := redcap.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	trustOf, waveOf := map[string]string{}, map[string]string{}
	for _, d := range p.DAGs {
		trustOf[d.Unique] = d.Trust
	}
	for _, e := range p.Events {
		waveOf[e.Unique] = e.Wave
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range entries {
		if _, ok := redcap.ParseFileName(s, e.Name()); !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		cr := csv.NewReader(bytes.NewReader(b))
		head, err := cr.Read()
		if err != nil {
			t.Fatal(err)
		}
		iEv, iDAG := slices.Index(head, redcap.EventColumn), slices.Index(head, redcap.DAGColumn)
		for {
			rec, err := cr.Read()
			if err != nil {
				break
			}
			line, _ := cr.FieldPos(0)
			out[trustOf[rec[iDAG]]+"-"+rec[0]+"|"+waveOf[rec[iEv]]] = line
		}
	}
	if len(out) == 0 {
		t.Fatalf("no REDCap export in %s", dir)
	}
	return out
}

// redcapTestExport builds a small REDCap records export of the study's
// project: one row per (record, team, wave) given, every field valid (the
// canonical test row's values), with edits applied to each row's cells
// by column name, and extra columns appended.
func redcapTestExport(t *testing.T, s *schemas.Study, rows [][3]string, edit func(i int, row map[string]string), extra ...string) []byte {
	t.Helper()
	p, err := redcap.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	cols := append(p.ExportColumns(), extra...)
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(cols)
	for i, r := range rows {
		date := "2018-03-01"
		if r[2] != s.BaselineWave() {
			date = "2018-09-03"
		}
		c := ingestTestRow(r[0], r[1], r[2], date, nil)
		c[redcap.RecordID], c[redcap.DAGColumn], c[redcap.EventColumn] = r[0], redcap.DAGName(r[1]), redcap.EventName(r[2])
		if edit != nil {
			edit(i, c)
		}
		cells := make([]string, len(cols))
		for j, n := range cols {
			cells[j] = c[n]
		}
		_ = w.Write(cells)
	}
	w.Flush()
	return b.Bytes()
}

// redcapBadCorpus adds the malformed REDCap exports to the corpus of
// testdata/bad: each is set aside whole with its own code.
func redcapBadCorpus(t *testing.T, env warehouse.Env, add func(string, []byte, badCase)) {
	s := env.Study
	day := time.Date(2019, 2, 10, 0, 0, 0, 0, time.UTC)
	name := func() string {
		day = day.AddDate(0, 0, 1)
		return redcap.FileName(s, day)
	}
	one := [][3]string{{"P00001", "TEWV-01", "baseline"}}
	set := func(k, v string) func(int, map[string]string) {
		return func(_ int, r map[string]string) { r[k] = v }
	}
	good := redcapTestExport(t, s, one, nil)
	header, rest, _ := bytes.Cut(good, []byte("\n"))
	labels := bytes.Replace(bytes.Replace(bytes.Replace(header, []byte("record_id"), []byte("Record ID"), 1),
		[]byte("redcap_event_name"), []byte("Event Name"), 1), []byte("redcap_data_access_group"), []byte("Data Access Group"), 1)
	add(name(), append(append(labels, '\n'), rest...), badCase{Quarantine: redcap.CodeLabelExport, Why: "a REDCap label export: labels in the header"})
	add(name(), redcapTestExport(t, s, one, func(_ int, r map[string]string) { r[redcap.DAGColumn], r[redcap.EventColumn] = "TEWV-01", "baseline" }),
		badCase{Quarantine: redcap.CodeLabelExport, Why: "a REDCap export with raw headers but labels for data access groups and events"})
	add(name(), redcapTestExport(t, s, one, set("gender", "Female")), badCase{Quarantine: redcap.CodeLabelExport, Why: "a REDCap export with choice labels instead of raw codes"})
	add(name(), []byte("record_id,redcap_event_name,redcap_data_access_group,visit_weight,visit_height\n1,screening_arm_1,site_a,70,170\n"),
		badCase{Quarantine: redcap.CodeOtherProject, Why: "an export of another REDCap project"})
	add(name(), redcapTestExport(t, s, one, set(redcap.DAGColumn, "leeds_01")), badCase{Quarantine: redcap.CodeUnknownDAG, Why: "a REDCap data access group that is no team"})
	add(name(), redcapTestExport(t, s, one, set(redcap.DAGColumn, "")), badCase{Quarantine: redcap.CodeUnknownDAG, Why: "a REDCap record in no data access group"})
	add(name(), redcapTestExport(t, s, one, set("hobbies___2", "1"), "hobbies___2"), badCase{Quarantine: redcap.CodeUnknownCheckbox, Why: "a REDCap checkbox column of a field the project does not have"})
	add(redcap.StudyCode(s)+"_redcap_20190230.csv", good, badCase{Quarantine: warehouse.QuarantineBadDate, Why: "a REDCap export whose name's date is no calendar date"})
	add(redcap.FileName(s, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)), good, badCase{Quarantine: warehouse.QuarantineFutureDate, Why: "a REDCap export dated in the future: set aside whole, not split"})
}

// TestRedcapIngestParts ingests small REDCap exports and checks what
// happens per trust part: an unknown event rejects its row in its trust's
// part (every row accounted for); a checkbox column of a coded field
// gives the field the code ticked, two ticked reject the row; a later
// export's parts supersede the trusts' earlier parts, while a trust with
// no rows in it keeps its current export; the same export sent again is a
// duplicate of each part; a label export is quarantined with a message
// saying how to export raw data.
func TestRedcapIngestParts(t *testing.T) {
	env := ingestTestEnv(t)
	env.Study.Ingest.HoldRejected = 1
	env.Study.Ingest.HoldLoss = 1
	s := env.Study
	ctx := context.Background()
	inbox := t.TempDir()
	wh := filepath.Join(t.TempDir(), "w")
	day1 := time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC)
	rows := [][3]string{
		{"P00001", "TEWV-01", "baseline"}, {"P00001", "TEWV-01", "followup"},
		{"P00002", "TEWV-02", "baseline"}, {"P00002", "TEWV-02", "month9"},
		{"P00003", "AWP-01", "baseline"}, {"P00004", "AWP-02", "baseline"}, {"P00005", "AWP-02", "baseline"},
	}
	// gender as a checkbox: P00004 ticks male only, P00005 female and male.
	gender := []string{"gender___female", "gender___male"}
	b := redcapTestExport(t, s, rows, func(i int, r map[string]string) {
		if i == 3 {
			r[redcap.EventColumn] = "month9_arm_1"
		}
		if r[redcap.RecordID] == "P00004" || r[redcap.RecordID] == "P00005" {
			r["gender"] = ""
			r["gender___male"] = "1"
			r["gender___female"] = "0"
			if r[redcap.RecordID] == "P00005" {
				r["gender___female"] = "1"
			}
		}
	}, gender...)
	if err := os.WriteFile(filepath.Join(inbox, redcap.FileName(s, day1)), b, 0o640); err != nil {
		t.Fatal(err)
	}
	sum, err := RunStages(ctx, env, wh, "ingest", RunOptions{Create: true}, ingest.Ingest([]string{inbox}))
	if sum == nil {
		t.Fatal(err)
	}
	l := redcapLedger(t, wh)
	got := map[string]string{}
	for _, f := range l.Files {
		got[f.Trust] = fmt.Sprintf("%s %s %d=%d+%d", f.Name, f.Status, f.RowsRead, f.RowsAccepted, f.RowsRejected)
	}
	want := map[string]string{
		"TEWV": "TEWV_participants_20190301.csv current 4=3+1",
		"AWP":  "AWP_participants_20190301.csv current 3=2+1",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ledger %v, want %v", got, want)
	}
	// The unknown event's row (wave month9) and the two-ticked row.
	codes := ingestTestStrings(t, wh, "rejects", "code")
	cols := ingestTestStrings(t, wh, "rejects", "column")
	if fmt.Sprint(codes, cols) != "[bad_code bad_code] [gender wave]" && fmt.Sprint(codes, cols) != "[bad_code bad_code] [wave gender]" {
		t.Fatalf("rejects %v in columns %v: want bad_code for the unknown event's wave and the two-ticked gender", codes, cols)
	}
	sids := ingestTestStrings(t, wh, "participants", "study_id")
	genders := ingestTestStrings(t, wh, "participants", "gender")
	gi := map[string]string{}
	for i, sid := range sids {
		gi[sid] = genders[i]
	}
	if gi["AWP-P00004"] != "male" || gi["TEWV-P00001"] != "female" {
		t.Fatalf("genders %v", gi)
	}
	if _, ok := gi["AWP-P00005"]; ok {
		t.Fatalf("the two-ticked participant was loaded: %v", gi)
	}

	// A later export without AWP's rows: TEWV's part supersedes TEWV's
	// first part; AWP's first part stays current.
	day2 := day1.AddDate(0, 0, 7)
	b2 := redcapTestExport(t, s, rows[:2], nil)
	if err := os.WriteFile(filepath.Join(inbox, redcap.FileName(s, day2)), b2, 0o640); err != nil {
		t.Fatal(err)
	}
	// And a label export.
	label := bytes.Replace(b2, []byte("record_id"), []byte("Record ID"), 1)
	if err := os.WriteFile(filepath.Join(inbox, redcap.FileName(s, day2.AddDate(0, 0, 1))), label, 0o640); err != nil {
		t.Fatal(err)
	}
	sum, _ = RunStages(ctx, env, wh, "ingest", RunOptions{}, ingest.Ingest([]string{inbox}))
	if sum == nil {
		t.Fatal("no summary")
	}
	l = redcapLedger(t, wh)
	status := map[string]string{}
	for _, f := range l.Files {
		status[f.Name] = f.Status
		if f.Status == warehouse.StatusQuarantined && !strings.Contains(f.Reason, "raw data") {
			t.Errorf("%s: %s does not say how to export raw data", f.Name, f.Reason)
		}
	}
	wantStatus := map[string]string{
		"TEWV_participants_20190301.csv":          warehouse.StatusSuperseded,
		"AWP_participants_20190301.csv":           warehouse.StatusCurrent,
		"TEWV_participants_20190308.csv":          warehouse.StatusCurrent,
		redcap.FileName(s, day2.AddDate(0, 0, 1)): warehouse.StatusQuarantined,
	}
	if fmt.Sprint(status) != fmt.Sprint(wantStatus) {
		t.Fatalf("statuses %v, want %v", status, wantStatus)
	}
	if q := l.Files[len(l.Files)-1]; !strings.HasPrefix(q.Reason, redcap.CodeLabelExport) {
		t.Fatalf("label export: %s", q.Reason)
	}
	if sum.FilesSkipped != 2 { // the first export read again: its two parts are duplicates
		t.Fatalf("skipped %d, want 2", sum.FilesSkipped)
	}

	// The archive alone rebuilds the same: the parts were archived, and
	// the warehouse passes its checks.
	_, before := tableText(t, wh, "participants")
	_, rejBefore := tableText(t, wh, "rejects")
	var report bytes.Buffer
	if err := Check(ctx, env, wh, &report); err != nil {
		t.Fatalf("check: %v\n%s", err, report.String())
	}
	if _, err := RebuildWarehouse(ctx, env, wh, RunOptions{}); err != nil {
		var pe *warehouse.ProblemsError
		if !errors.As(err, &pe) {
			t.Fatalf("rebuild: %v", err)
		}
	}
	rebuilt := map[string]string{}
	for _, f := range redcapLedger(t, wh).Files {
		rebuilt[f.Name] = f.Status
	}
	_, after := tableText(t, wh, "participants")
	_, rejAfter := tableText(t, wh, "rejects")
	if fmt.Sprint(rebuilt) != fmt.Sprint(wantStatus) || !slices.Equal(before, after) || !slices.Equal(rejBefore, rejAfter) {
		t.Fatalf("rebuild: statuses %v, participants %d then %d rows, rejects %d then %d", rebuilt, len(before), len(after), len(rejBefore), len(rejAfter))
	}
}

func redcapLedger(t *testing.T, wh string) *warehouse.Ledger {
	t.Helper()
	w, err := warehouse.OpenWarehouse(wh, false)
	if err != nil {
		t.Fatal(err)
	}
	gen, _ := w.CurrentDir()
	l, err := warehouse.ReadLedger(gen)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
