package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/score"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

func ingestTestEnv(t *testing.T) warehouse.Env {
	t.Helper()
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	// itt_mi and itt_delta with 5 imputations instead of 50: these tests
	// assert on runs, not on the pooled figures (pipeline/compare's tests
	// do), and the crash tests run compare once per write step.
	s.Analysis.Imputations = 5
	return warehouse.Env{Study: s, Version: "test"}
}

// ingestTestRow is a canonical participants row; unset answers are blank.
func ingestTestRow(pid, team, wave, date string, set map[string]string) map[string]string {
	r := map[string]string{"participant_id": pid, "team_code": team, "wave": wave, "interview_date": date, "withdrawn": "0"}
	if wave == "baseline" {
		for k, v := range map[string]string{"age_band": "25-34", "gender": "female", "ethnicity": "white", "living_alone": "1", "diagnosis_group": "psychosis"} {
			r[k] = v
		}
	}
	if date != "" {
		for i := 1; i <= 7; i++ {
			r["swemwbs"+string(rune('0'+i))] = "3"
		}
		r["ucla1"], r["ucla2"], r["ucla3"] = "1", "2", "3"
	}
	for k, v := range set {
		r[k] = v
	}
	return r
}

// ingestTestCSV writes a canonical export with the given rows.
func ingestTestCSV(t *testing.T, dir, name string, env warehouse.Env, kind string, rows []map[string]string) string {
	t.Helper()
	names := ingest.FieldNames(env.Study.ExportFields(kind))
	var b strings.Builder
	b.WriteString(strings.Join(names, ",") + "\n")
	for _, r := range rows {
		cells := make([]string, len(names))
		for i, n := range names {
			cells[i] = r[n]
		}
		b.WriteString(strings.Join(cells, ",") + "\n")
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func ingestTestRun(t *testing.T, env warehouse.Env, wh string, paths ...string) (*warehouse.Summary, error) {
	t.Helper()
	return RunStages(context.Background(), env, wh, "ingest", RunOptions{Create: true}, ingest.Ingest(paths))
}

// testColumn reads one column of a table in the committed generation, in
// file order: each value and whether it is valid.
func testColumn[V any](t *testing.T, wh, table, col string, value func(arrow.Array, int) V) ([]V, []bool) {
	t.Helper()
	w, err := warehouse.OpenWarehouse(wh, false)
	if err != nil {
		t.Fatal(err)
	}
	gen, _ := w.CurrentDir()
	var vals []V
	var valid []bool
	err = warehouse.ScanTable(context.Background(), gen, table, func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, col)
		if err != nil {
			return err
		}
		for i := 0; i < cols[0].Len(); i++ {
			vals = append(vals, value(cols[0], i))
			valid = append(valid, cols[0].IsValid(i))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return vals, valid
}

// ingestTestStrings reads one string column of a table, in file order.
func ingestTestStrings(t *testing.T, wh, table, col string) []string {
	t.Helper()
	v, _ := testColumn(t, wh, table, col, func(a arrow.Array, i int) string { return a.(*array.String).Value(i) })
	return v
}

// ingestTestInts reads one int32 column of a table, in file order.
func ingestTestInts(t *testing.T, wh, table, col string) []int32 {
	t.Helper()
	v, _ := testColumn(t, wh, table, col, func(a arrow.Array, i int) int32 { return a.(*array.Int32).Value(i) })
	return v
}

func TestIngestRejectCodes(t *testing.T) {
	env := ingestTestEnv(t)
	env.Study.Ingest.HoldRejected = 1 // most rows are rejected here on purpose: never hold
	dir := t.TempDir()
	rows := []map[string]string{
		ingestTestRow("P00001", "TEWV-01", "baseline", "2018-03-01", nil),                                    // line 2: fine
		ingestTestRow("P00001", "TEWV-01", "followup", "2018-09-01", nil),                                    // line 3: fine
		ingestTestRow("P00002", "TEWV-09", "baseline", "2018-03-01", nil),                                    // 4: unknown_team
		ingestTestRow("P00003", "BDCT-01", "baseline", "2018-03-01", nil),                                    // 5: wrong_trust
		ingestTestRow("P00004", "TEWV-02", "baseline", "2018-03-01", map[string]string{"gender": "f"}),       // 6: bad_code
		ingestTestRow("P00005", "TEWV-02", "baseline", "2018-03-01", map[string]string{"swemwbs1": "6"}),     // 7: out_of_range
		ingestTestRow("P00006", "TEWV-02", "baseline", "2018-03-01", map[string]string{"swemwbs2": "three"}), // 8: not_integer
		ingestTestRow("P00007", "TEWV-02", "baseline", "01/03/2018", nil),                                    // 9: bad_date
		ingestTestRow("P00008", "TEWV-02", "baseline", "2030-01-01", nil),                                    // 10: future_date
		ingestTestRow("P00009", "TEWV-02", "baseline", "2018-03-01", nil),                                    // 11: duplicate_key
		ingestTestRow("P00009", "TEWV-02", "baseline", "2018-03-02", nil),                                    // 12: duplicate_key
		ingestTestRow("P00010", "TEWV-02", "baseline", "2018-03-01", nil),                                    // 13: fine
		ingestTestRow("P00010", "TEWV-02", "followup", "2018-02-01", nil),                                    // 14: followup_before_baseline
		ingestTestRow("P00011", "TEWV-02", "baseline", "2018-03-01", nil),                                    // 15: fine
		ingestTestRow("P00011", "TEWV-01", "followup", "2018-09-01", nil),                                    // 16: team_changed
		ingestTestRow("P0", "TEWV-02", "baseline", "2018-03-01", nil),                                        // 17: bad_id
		ingestTestRow("P00012", "TEWV-02", "", "2018-03-01", nil),                                            // 18: missing_value
		ingestTestRow("P00013", "TEWV-02", "baseline", "", map[string]string{"qpr01": "2"}),                  // 19: date_missing
		ingestTestRow("P00014", "TEWV-02", "baseline", "2018-03-01", map[string]string{"gas1_level": "1"}),   // 20: not_asked
		ingestTestRow("P00015", "TEWV-02", "baseline", "2018-03-01", map[string]string{"gender": "=1+2"}),    // 21: formula
		ingestTestRow("P00016", "TEWV-02", "baseline", "", map[string]string{"swemwbs1": "", "ucla1": ""}),   // 22: recruited, not interviewed: fine
		ingestTestRow("P00017", "TEWV-02", "followup", "2018-09-01", map[string]string{"gas1_level": "+2"}),  // 23: fine, "+2" is 2
	}
	p := ingestTestCSV(t, dir, "TEWV_participants_20190329.csv", env, schemas.KindParticipants, rows)
	// A ragged row and a blank row, appended by hand.
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("P00018,TEWV-02,baseline\n")                                                         // 24: ragged_row
	f.WriteString(strings.Repeat(",", len(env.Study.ExportFields(schemas.KindParticipants))-1) + "\n") // 25: blank_row
	f.Close()

	wh := filepath.Join(dir, "w")
	sum, err := ingestTestRun(t, env, wh, p)
	var pe *warehouse.ProblemsError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *ProblemsError", err)
	}
	const read, accepted = 24, 6 // lines 2, 3, 13, 15, 22, 23
	if sum.RowsAccepted != accepted || sum.RowsRejected != read-accepted {
		t.Errorf("accepted %d rejected %d, want %d and %d", sum.RowsAccepted, sum.RowsRejected, accepted, read-accepted)
	}
	want := map[string][]string{
		"4": {ingest.CodeUnknownTeam}, "5": {ingest.CodeWrongTrust}, "6": {ingest.CodeBadCode}, "7": {ingest.CodeOutOfRange}, "8": {ingest.CodeNotInteger},
		"9": {ingest.CodeBadDate}, "10": {ingest.CodeFutureDate}, "11": {ingest.CodeDuplicateKey}, "12": {ingest.CodeDuplicateKey},
		"14": {ingest.CodeFollowupEarly}, "16": {ingest.CodeTeamChanged}, "17": {ingest.CodeBadID}, "18": {ingest.CodeMissingValue},
		"19": {ingest.CodeDateMissing}, "20": {ingest.CodeNotAsked}, "21": {ingest.CodeFormula}, "24": {ingest.CodeRaggedRow}, "25": {ingest.CodeBlankRow},
	}
	codes := ingestTestStrings(t, wh, "rejects", "code")
	lines := ingestTestInts(t, wh, "rejects", "source_line")
	got := map[string][]string{}
	for i := range codes {
		k := strconv.Itoa(int(lines[i]))
		got[k] = append(got[k], codes[i])
	}
	for line, w := range want {
		if strings.Join(got[line], " ") != strings.Join(w, " ") {
			t.Errorf("line %s: codes %v, want %v", line, got[line], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("rejected lines %v, want %d lines", got, len(want))
	}
	// Messages never repeat a value.
	for _, m := range ingestTestStrings(t, wh, "rejects", "message") {
		for _, v := range []string{"TEWV-09", "=1+2", "three", "01/03/2018", "2030-01-01", "P0,"} {
			if strings.Contains(m, v) {
				t.Errorf("message %q repeats a value", m)
			}
		}
	}
	ids := ingestTestStrings(t, wh, "participants", "study_id")
	wantIDs := []string{"TEWV-P00001", "TEWV-P00010", "TEWV-P00011", "TEWV-P00016", "TEWV-P00017"}
	if strings.Join(ids, " ") != strings.Join(wantIDs, " ") {
		t.Errorf("participants %v, want %v", ids, wantIDs)
	}
	// Responses: P00001 baseline and followup, P00010 baseline, P00011
	// baseline, P00017 followup (P00016 was not interviewed). Each dated
	// interview has every item of the instruments asked at its wave.
	nBase, nFU := 0, 0
	for _, in := range env.Study.Instruments {
		for range in.Items {
			if in.AskedAt("baseline") {
				nBase++
			}
			nFU++
		}
	}
	if got, want := len(ingestTestStrings(t, wh, "responses", "item")), 3*nBase+2*nFU; got != want {
		t.Errorf("responses rows %d, want %d", got, want)
	}
	sids := ingestTestStrings(t, wh, "responses", "study_id")
	if !sort.StringsAreSorted(sids) {
		t.Error("responses not sorted by study_id")
	}
	w, _ := warehouse.OpenWarehouse(wh, false)
	gen, _ := w.CurrentDir()
	// Interviews: every participant at both waves, interviewed where
	// responses are (above).
	ivIDs := ingestTestStrings(t, wh, "interviews", "study_id")
	ivWaves := ingestTestStrings(t, wh, "interviews", "wave")
	var pairs []string
	for i := range ivIDs {
		pairs = append(pairs, ivIDs[i]+"/"+ivWaves[i])
	}
	var wantPairs []string
	for _, id := range wantIDs {
		wantPairs = append(wantPairs, id+"/baseline", id+"/followup")
	}
	if !slices.Equal(pairs, wantPairs) {
		t.Errorf("interviews %v, want %v", pairs, wantPairs)
	}
	if n := checkTablesIndependently(t, gen, env.Study.Tables.Names()); n != 6 {
		t.Errorf("checked %d files independently, want 6 (participants, interviews, responses, rejects, ingest_files, and codes, written with every commit)", n)
	}
}

func TestIngestPrivacyQuarantine(t *testing.T) {
	env := ingestTestEnv(t)
	cases := []struct {
		name   string
		set    map[string]string
		extra  string // an extra column header=value
		reason string
	}{
		{"nhs number in a code column", map[string]string{"ethnicity": "943 476 5919"}, "", "privacy_nhs_number"},
		{"email", map[string]string{"participant_id": "P00001"}, "notes=someone@example.org", "privacy_email"},
		{"postcode", nil, "notes=SW1A 1AA", "privacy_postcode"},
		{"phone", nil, "notes=07700 900123", "privacy_phone"},
		{"date of birth", nil, "born=14/03/1987", "privacy_date_of_birth"},
		{"identifying header", nil, "Surname=x", "privacy_identifying_header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			rows := []map[string]string{ingestTestRow("P00001", "TEWV-01", "baseline", "2018-03-01", c.set)}
			p := ingestTestCSV(t, dir, "TEWV_participants_20190329.csv", env, schemas.KindParticipants, rows)
			if c.extra != "" {
				h, v, _ := strings.Cut(c.extra, "=")
				b, _ := os.ReadFile(p)
				ls := strings.Split(strings.TrimSpace(string(b)), "\n")
				ls[0] += "," + h
				ls[1] += "," + v
				os.WriteFile(p, []byte(strings.Join(ls, "\n")+"\n"), 0o600)
			}
			wh := filepath.Join(dir, "w")
			sum, err := ingestTestRun(t, env, wh, p)
			if sum == nil || sum.FilesQuarantined != 1 || err == nil {
				t.Fatalf("summary %+v err %v: want one quarantined file", sum, err)
			}
			w, _ := warehouse.OpenWarehouse(wh, false)
			gen, _ := w.CurrentDir()
			l, _ := warehouse.ReadLedger(gen)
			f := l.Files[0]
			if f.Status != warehouse.StatusQuarantined || !strings.HasPrefix(f.Reason, c.reason+":") {
				t.Errorf("status %s reason %q, want quarantined %s", f.Status, f.Reason, c.reason)
			}
			if f.RowsRead != f.RowsAccepted+f.RowsRejected || f.RowsAccepted != 0 {
				t.Errorf("rows %d = %d + %d", f.RowsRead, f.RowsAccepted, f.RowsRejected)
			}
			if files, _ := warehouse.TableFiles(gen, "participants"); len(files) != 0 {
				t.Errorf("a quarantined file wrote %v", files)
			}
			if _, err := os.Stat(w.ArchivePath(f.SHA256)); err != nil {
				t.Errorf("raw bytes not archived: %v", err)
			}
			for _, v := range []string{"943 476 5919", "someone@", "SW1A", "07700", "1987"} {
				if strings.Contains(f.Reason, v) {
					t.Errorf("reason %q repeats the value", f.Reason)
				}
			}
		})
	}
	// A ten-digit number that fails the modulus-11 check is not an NHS number.
	dir := t.TempDir()
	p := ingestTestCSV(t, dir, "TEWV_participants_20190329.csv", env, schemas.KindParticipants,
		[]map[string]string{
			ingestTestRow("P00001", "TEWV-01", "baseline", "2018-03-01", map[string]string{"ethnicity": "9434765918"}),
			ingestTestRow("P00002", "TEWV-01", "baseline", "2018-03-01", nil),
		})
	sum, _ := ingestTestRun(t, env, filepath.Join(dir, "w"), p)
	if sum.FilesQuarantined != 0 || sum.RowsRejected != 1 {
		t.Errorf("failing check digit: %+v, want the row rejected as bad_code, not quarantined", sum)
	}
}

func TestIngestSameBytesAndSuperseding(t *testing.T) {
	env := ingestTestEnv(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "w")
	old := ingestTestCSV(t, dir, "TEWV_participants_20190301.csv", env, schemas.KindParticipants, []map[string]string{
		ingestTestRow("P00001", "TEWV-01", "baseline", "2018-03-01", nil),
	})
	if _, err := ingestTestRun(t, env, wh, old); err != nil {
		t.Fatal(err)
	}
	w, _ := warehouse.OpenWarehouse(wh, false)
	gen1, _ := w.CurrentDir()
	before, _ := os.ReadFile(filepath.Join(gen1, "tables", "participants", "trust=TEWV", "data.parquet"))

	// The same bytes again, under another name: skipped, tables unchanged.
	os.MkdirAll(filepath.Join(dir, "again"), 0o750)
	b, _ := os.ReadFile(old)
	again := filepath.Join(dir, "again", "TEWV_participants_20190302.csv")
	os.WriteFile(again, b, 0o600)
	sum, err := ingestTestRun(t, env, wh, again)
	if err != nil || sum.FilesSkipped != 1 || sum.FilesNew != 0 || !sum.NothingNew || len(sum.TablesWritten) != 0 {
		t.Fatalf("re-ingest: %+v %v", sum, err)
	}
	gen2, _ := w.CurrentDir()
	after, _ := os.ReadFile(filepath.Join(gen2, "tables", "participants", "trust=TEWV", "data.parquet"))
	if string(before) != string(after) {
		t.Error("re-ingesting the same bytes changed the table")
	}

	// A newer cumulative export supersedes the old one.
	newer := ingestTestCSV(t, dir, "TEWV_participants_20190401.csv", env, schemas.KindParticipants, []map[string]string{
		ingestTestRow("P00001", "TEWV-01", "baseline", "2018-03-01", nil),
		ingestTestRow("P00002", "TEWV-02", "baseline", "2018-03-05", nil),
	})
	// And an older one arriving late is kept but superseded on arrival.
	late := ingestTestCSV(t, dir, "TEWV_participants_20190201.csv", env, schemas.KindParticipants, []map[string]string{
		ingestTestRow("P00009", "TEWV-01", "baseline", "2018-01-01", nil),
	})
	sum, err = ingestTestRun(t, env, wh, newer, late)
	if err != nil || sum.FilesNew != 2 || sum.FilesSuperseded != 2 {
		t.Fatalf("superseding: %+v %v", sum, err)
	}
	if ids := ingestTestStrings(t, wh, "participants", "study_id"); strings.Join(ids, " ") != "TEWV-P00001 TEWV-P00002" {
		t.Errorf("participants %v", ids)
	}
	gen, _ := w.CurrentDir()
	l, _ := warehouse.ReadLedger(gen)
	status := map[string]string{}
	for _, f := range l.Files {
		status[f.Name] = f.Status
	}
	want := map[string]string{"TEWV_participants_20190301.csv": warehouse.StatusSuperseded, "TEWV_participants_20190401.csv": warehouse.StatusCurrent, "TEWV_participants_20190201.csv": warehouse.StatusSuperseded}
	for n, s := range want {
		if status[n] != s {
			t.Errorf("%s: %s, want %s", n, status[n], s)
		}
	}
	if got := ingestTestStrings(t, wh, "ingest_files", "status"); len(got) != 3 {
		t.Errorf("ingest_files rows %d, want 3", len(got))
	}
	if len(l.Receipts) != 4 {
		t.Errorf("receipts %d, want 4 (one duplicate)", len(l.Receipts))
	}
}

func TestIngestLockHeld(t *testing.T) {
	env := ingestTestEnv(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "w")
	p := ingestTestCSV(t, dir, "TEWV_participants_20190301.csv", env, schemas.KindParticipants, []map[string]string{
		ingestTestRow("P00001", "TEWV-01", "baseline", "2018-03-01", nil),
	})
	w, err := warehouse.OpenWarehouse(wh, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Lock(); err != nil {
		t.Fatal(err)
	}
	_, err = ingestTestRun(t, env, wh, p)
	if !errors.Is(err, warehouse.ErrLocked) {
		t.Fatalf("second ingest while locked: %v, want ErrLocked", err)
	}
	w.Unlock()
	if _, err := ingestTestRun(t, env, wh, p); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
}

func TestIngestFileModes(t *testing.T) {
	env := ingestTestEnv(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "w")
	p := ingestTestCSV(t, dir, "TEWV_participants_20190301.csv", env, schemas.KindParticipants, []map[string]string{
		ingestTestRow("P00001", "TEWV-01", "baseline", "2018-03-01", nil),
	})
	if _, err := ingestTestRun(t, env, wh, p); err != nil {
		t.Fatal(err)
	}
	err := filepath.Walk(wh, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.Mode()&os.ModeSymlink != 0 {
			return err
		}
		mode := info.Mode().Perm()
		switch {
		case info.IsDir() && mode != 0o750:
			t.Errorf("%s: folder mode %o, want 750", path, mode)
		case !info.IsDir() && strings.Contains(path, "archive") && mode != 0o440:
			t.Errorf("%s: archive mode %o, want 440", path, mode)
		case !info.IsDir() && !strings.Contains(path, "archive") && mode != 0o640:
			t.Errorf("%s: file mode %o, want 640", path, mode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestIngestUnsortedExport: an export whose rows are not in participant
// order (read a second time and sorted in memory) gives the very tables
// of the same rows in order, duplicates across the file included.
func TestIngestUnsortedExport(t *testing.T) {
	env := ingestTestEnv(t)
	rows := []map[string]string{
		ingestTestRow("P00001", "TEWV-01", "baseline", "2018-03-01", nil),
		ingestTestRow("P00001", "TEWV-01", "followup", "2018-09-01", nil),
		ingestTestRow("P00002", "TEWV-02", "baseline", "2018-03-02", nil),
		ingestTestRow("P00003", "TEWV-02", "baseline", "2018-03-03", nil),
		ingestTestRow("P00003", "TEWV-02", "baseline", "2018-03-04", nil), // duplicate_key
	}
	shuffled := []map[string]string{rows[3], rows[1], rows[2], rows[0], rows[4]}
	tables := func(rows []map[string]string) map[string]string {
		dir := t.TempDir()
		p := ingestTestCSV(t, dir, "TEWV_participants_20190329.csv", env, schemas.KindParticipants, rows)
		wh := filepath.Join(dir, "w")
		sum, err := ingestTestRun(t, env, wh, p)
		if sum == nil || sum.RowsAccepted != 3 || sum.RowsRejected != 2 {
			t.Fatalf("summary %+v %v", sum, err)
		}
		snap := snapshot(t, wh)
		for k := range snap {
			if strings.Contains(k, "rejects") || strings.Contains(k, "problems") || strings.Contains(k, "responses") {
				delete(snap, k) // they carry source lines, which differ between the two files
			}
		}
		ids := ingestTestStrings(t, wh, "responses", "study_id")
		waves := ingestTestStrings(t, wh, "responses", "wave")
		for i := 1; i < len(ids); i++ {
			if ids[i] < ids[i-1] || (ids[i] == ids[i-1] && waves[i] < waves[i-1]) {
				t.Fatalf("responses not in key order at row %d", i)
			}
		}
		snap["responses rows"] = strconv.Itoa(len(ids))
		return snap
	}
	sameSnapshot(t, "unsorted export", tables(shuffled), tables(rows))
}

// rowSpill gives back what it was given, and bytes that do not decode are
// an error, not a panic.
func TestRowSpillRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := ingest.NewRowSpill(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the spill file has a name in its folder: %v", left)
	}
	ivs := []*ingest.Interview{
		{Line: 2, Pid: "P00001", Team: "TEWV-01", Wave: "baseline", Date: 17600, Demo: []string{"25-34", "female", "", "psychosis"}, Flags: []int32{1}, Withdrawn: false, Items: []int32{1, ingest.NullInt, 5, -3}},
		{Line: 99999, Pid: "P00002", Team: "TEWV-02", Wave: "followup", Date: ingest.NullInt, Demo: []string{"", "x"}, Flags: []int32{ingest.NullInt, 0, 1}, Withdrawn: true, Items: []int32{}},
	}
	var at []ingest.Spilled
	for _, iv := range ivs {
		a, err := s.Put(iv)
		if err != nil {
			t.Fatal(err)
		}
		at = append(at, a)
	}
	if err := s.Done(); err != nil {
		t.Fatal(err)
	}
	for i := len(ivs) - 1; i >= 0; i-- {
		var got ingest.Interview
		if err := s.Get(at[i], &got); err != nil {
			t.Fatal(err)
		}
		want := *ivs[i]
		if got.Line != want.Line || got.Pid != want.Pid || got.Team != want.Team || got.Wave != want.Wave || got.Date != want.Date ||
			!slices.Equal(got.Demo, want.Demo) || !slices.Equal(got.Flags, want.Flags) || got.Withdrawn != want.Withdrawn || !slices.Equal(got.Items, want.Items) {
			t.Errorf("row %d: got %+v, want %+v", i, got, want)
		}
	}
	// A place past what was written, and a record cut short.
	var iv ingest.Interview
	if err := s.Get(ingest.Spilled{Off: at[1].Off + 1000, N: 8}, &iv); err == nil {
		t.Error("a record past the end read back")
	}
	if err := s.Get(ingest.Spilled{Off: at[0].Off, N: 6}, &iv); err == nil {
		t.Error("a record cut short read back")
	}
}

// In a study of three waves, a participant without a baseline row whose
// later interviews name different teams keeps the team of the first one:
// the other row is rejected as team_changed, and every wave's scores carry
// that one team (score takes team and arm from participants).
func TestIngestTeamChangeWithoutBaseline(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "schemas", "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	three := strings.Replace(string(b), "waves: [baseline, followup]", "waves: [baseline, followup, month12]", 1)
	if three == string(b) {
		t.Fatal("study.yaml has no waves line to change")
	}
	if err := os.WriteFile(filepath.Join(dir, "study.yaml"), []byte(three), 0o600); err != nil {
		t.Fatal(err)
	}
	study, err := schemas.Load(filepath.Join(dir, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := warehouse.Env{Study: study, Version: "test"}
	rows := []map[string]string{
		ingestTestRow("P0001", "AWP-01", "followup", "2018-09-01", nil),
		ingestTestRow("P0001", "AWP-02", "month12", "2019-02-01", nil), // line 3: team_changed
		ingestTestRow("P0002", "AWP-02", "baseline", "2018-03-01", nil),
	}
	p := ingestTestCSV(t, dir, "AWP_participants_20190329.csv", env, schemas.KindParticipants, rows)
	wh := filepath.Join(dir, "w")
	sum, err := RunStages(context.Background(), env, wh, "ingest", RunOptions{Create: true}, ingest.Ingest([]string{p}), score.Score)
	var pe *warehouse.ProblemsError
	if !errors.As(err, &pe) || sum.RowsAccepted != 2 || sum.RowsRejected != 1 {
		t.Fatalf("summary %+v, err %v: want 2 accepted, 1 rejected", sum, err)
	}
	codes := ingestTestStrings(t, wh, "rejects", "code")
	lines := ingestTestInts(t, wh, "rejects", "source_line")
	if len(codes) != 1 || codes[0] != ingest.CodeTeamChanged || lines[0] != 3 {
		t.Errorf("rejects %v at lines %v, want team_changed at line 3", codes, lines)
	}
	ids := ingestTestStrings(t, wh, "scores", "study_id")
	waves := ingestTestStrings(t, wh, "scores", "wave")
	teams := ingestTestStrings(t, wh, "scores", "team")
	for i := range ids {
		if ids[i] == "AWP-P0001" && (waves[i] != "followup" || teams[i] != "AWP-01") {
			t.Errorf("scores row %d: %s %s %s", i, ids[i], waves[i], teams[i])
		}
	}
}
