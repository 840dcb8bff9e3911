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

	"github.com/connectingpeople/cpi/pipeline/compare"
	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/redcap"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// redcapProblems reads a trust's problem list of the warehouse at wh.
func redcapProblems(t *testing.T, wh, trust string) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(wh, "problems", trust+".csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs[1:]
}

// TestRedcapMissingCodesAndLines ingests a REDCap export whose rows of
// TEWV and AWP alternate (so a row's line in the export is not its line in
// the trust's part) and whose cells hold the project's missing-data codes.
// Those cells become blanks, never values: the answers are null in
// responses, and the trust's problem list counts them per column
// (redcap_missing_code) without printing a code. A rejected row's
// rejects.source_line and problem-list line are its line in the REDCap
// export, and the problem list names the REDCap export. cpi check finds
// the REDCap export covered by its parts' receipts (no "did not commit").
// Then, with the missing-data codes removed from the study definition,
// cpi rebuild reproduces the problem lists byte for byte, the rejects and
// the responses from the archive alone: the split's own records hold the
// counts and the lines.
func TestRedcapMissingCodesAndLines(t *testing.T) {
	env := ingestTestEnv(t)
	env.Study.Ingest.HoldRejected = 1
	env.Study.Ingest.HoldLoss = 1
	s := env.Study
	s.Redcap.MissingCodes = []string{"UNK", "-999", "NASK"}
	ctx := context.Background()
	inbox := t.TempDir()
	wh := filepath.Join(t.TempDir(), "w")
	day := time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC)
	rows := [][3]string{
		{"P00001", "TEWV-01", "baseline"}, // line 2
		{"P00003", "AWP-01", "baseline"},  // line 3
		{"P00002", "TEWV-02", "baseline"}, // line 4
		{"P00004", "AWP-02", "baseline"},  // line 5
		{"P00005", "TEWV-01", "baseline"}, // line 6: rejected
		{"P00006", "AWP-01", "baseline"},  // line 7
	}
	b := redcapTestExport(t, s, rows, func(i int, r map[string]string) {
		switch i {
		case 0:
			r["swemwbs1"], r["ucla1"] = "UNK", "-999"
		case 2:
			r["swemwbs1"], r["gender"] = "-999", "NASK"
		case 3:
			r["ucla2"] = "UNK"
		case 4:
			r["swemwbs2"] = "9" // out of range: the row is rejected
		}
	})
	name := redcap.FileName(s, day)
	if err := os.WriteFile(filepath.Join(inbox, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RunStages(ctx, env, wh, "ingest", RunOptions{Create: true}, ingest.Ingest([]string{inbox})); err != nil {
		var pe *warehouse.ProblemsError
		if !errors.As(err, &pe) {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	for _, f := range redcapLedger(t, wh).Files {
		got[f.Trust] = fmt.Sprintf("%s %s %d=%d+%d w%d", f.Name, f.Status, f.RowsRead, f.RowsAccepted, f.RowsRejected, f.Warnings)
	}
	want := map[string]string{
		// TEWV: swemwbs1 (2 cells), ucla1, gender; AWP: ucla2.
		"TEWV": "TEWV_participants_20190301.csv current 3=2+1 w3",
		"AWP":  "AWP_participants_20190301.csv current 3=3+0 w1",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ledger %v, want %v", got, want)
	}

	// The missing-data codes are blanks: null answers, no value -999.
	rc, resp := tableText(t, wh, "responses")
	iID, iItem, iVal := slices.Index(rc, "study_id"), slices.Index(rc, "item"), slices.Index(rc, "value")
	nulls := map[string]bool{}
	for _, r := range resp {
		c := strings.Split(r, "|")
		if c[iVal] == "-999" {
			t.Fatalf("a missing-data code loaded as a value: %s", r)
		}
		if c[iVal] == "NULL" && (c[iItem] == "swemwbs1" || c[iItem] == "ucla1" || c[iItem] == "ucla2") {
			nulls[c[iID]+" "+c[iItem]] = true
		}
	}
	for _, k := range []string{"TEWV-P00001 swemwbs1", "TEWV-P00001 ucla1", "TEWV-P00002 swemwbs1", "AWP-P00004 ucla2"} {
		if !nulls[k] {
			t.Errorf("%s is not null in responses (nulls %v)", k, nulls)
		}
	}
	if len(nulls) != 4 {
		t.Errorf("nulls %v, want 4", nulls)
	}

	// TEWV's problem list: the counts per column, then the rejected row at
	// its line in the REDCap export (6; it is line 4 of TEWV's part).
	probs := redcapProblems(t, wh, "TEWV")
	var lines []string
	for _, p := range probs {
		if p[0] != name {
			t.Errorf("problem %v names %s, not the REDCap export %s", p, p[0], name)
		}
		lines = append(lines, strings.Join(p[1:5], " "))
		for _, code := range s.Redcap.MissingCodes {
			if strings.Contains(p[5], code) {
				t.Errorf("problem %v prints a missing-data code", p)
			}
		}
	}
	wantLines := []string{
		"0 gender redcap_missing_code warning",
		"0 swemwbs1 redcap_missing_code warning",
		"0 ucla1 redcap_missing_code warning",
		"6 swemwbs2 out_of_range error",
	}
	if !slices.Equal(lines, wantLines) {
		t.Fatalf("TEWV's problems %q, want %q", lines, wantLines)
	}
	if !strings.HasPrefix(probs[1][5], "2 cells") || !strings.HasPrefix(probs[0][5], "1 cells") {
		t.Fatalf("counts: %q, %q", probs[0][5], probs[1][5])
	}
	// cpi validate of the REDCap export says the same of TEWV's part.
	checks, err := ingest.Validate(ctx, env, []string{filepath.Join(inbox, name)})
	if err != nil || len(checks) != 2 || checks[0].Trust != "TEWV" {
		t.Fatalf("validate: %v, %+v", err, checks)
	}
	var vlines []string
	for _, p := range checks[0].Problems {
		if p.File != name {
			t.Errorf("validate: problem %+v names %s", p, p.File)
		}
		vlines = append(vlines, fmt.Sprintf("%d %s %s %s", p.Line, p.Column, p.Code, p.Severity))
	}
	if !slices.Equal(vlines, wantLines) {
		t.Fatalf("validate: TEWV's problems %q, want %q", vlines, wantLines)
	}
	if l := ingestTestInts(t, wh, "rejects", "source_line"); fmt.Sprint(l) != "[6]" {
		t.Fatalf("rejects.source_line %v, want [6] (the REDCap export's line)", l)
	}
	// The responses carry their lines in the REDCap export too.
	iLine := slices.Index(rc, "source_line")
	wantLine := map[string]string{"TEWV-P00001": "2", "AWP-P00003": "3", "TEWV-P00002": "4", "AWP-P00004": "5", "AWP-P00006": "7"}
	for _, r := range resp {
		c := strings.Split(r, "|")
		if c[iLine] != wantLine[c[iID]] {
			t.Fatalf("responses row %s: source_line %s, want %s", r, c[iLine], wantLine[c[iID]])
		}
	}

	// cpi check: the REDCap export's archived copy is covered by its
	// parts' receipts.
	var report bytes.Buffer
	if err := Check(ctx, env, wh, &report); err != nil {
		t.Fatalf("check: %v\n%s", err, report.String())
	}
	if strings.Contains(report.String(), "did not commit") {
		t.Fatalf("check lists the REDCap export as uncommitted:\n%s", report.String())
	}

	// Rebuild, the codes gone from the study definition: the same.
	before := map[string][]byte{}
	for _, trust := range []string{"TEWV", "AWP"} {
		before[trust], _ = os.ReadFile(filepath.Join(wh, "problems", trust+".csv"))
	}
	_, rejBefore := tableText(t, wh, "rejects")
	s.Redcap.MissingCodes = nil
	if _, err := RebuildWarehouse(ctx, env, wh, RunOptions{}); err != nil {
		var pe *warehouse.ProblemsError
		if !errors.As(err, &pe) {
			t.Fatalf("rebuild: %v", err)
		}
	}
	for _, trust := range []string{"TEWV", "AWP"} {
		after, _ := os.ReadFile(filepath.Join(wh, "problems", trust+".csv"))
		if !bytes.Equal(before[trust], after) {
			t.Errorf("rebuild: problems/%s.csv\n%s\nthen\n%s", trust, before[trust], after)
		}
	}
	_, rejAfter := tableText(t, wh, "rejects")
	_, respAfter := tableText(t, wh, "responses")
	if !slices.Equal(rejBefore, rejAfter) || !slices.Equal(resp, respAfter) {
		t.Fatalf("rebuild: rejects %v then %v; responses %d then %d rows", rejBefore, rejAfter, len(resp), len(respAfter))
	}
	report.Reset()
	if err := Check(ctx, env, wh, &report); err != nil || strings.Contains(report.String(), "did not commit") {
		t.Fatalf("check after rebuild: %v\n%s", err, report.String())
	}

	// A damaged split record is damage to the archive.
	w, err := warehouse.OpenWarehouse(wh, false)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ingest.SplitRecords(w)
	if err != nil || len(recs) != 2 {
		t.Fatalf("split records %v, %v; want 2", recs, err)
	}
	for sha, r := range recs {
		if r.Trust == "TEWV" {
			if fmt.Sprint(r.Lines) != "[2 4 6]" || r.SourceName != name {
				t.Fatalf("TEWV's split record %+v", r)
			}
			path := filepath.Join(ingest.SplitsDir(w), sha+".json")
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	report.Reset()
	var ce *CheckError
	if err := Check(ctx, env, wh, &report); !errors.As(err, &ce) || !strings.Contains(err.Error(), "archive/splits/") {
		t.Fatalf("check of a damaged split record: %v", err)
	}
}

// TestRedcapOlderProject: an export of the project as it was before the
// study added service use (csri), lacking every su_* field and the csri
// form's status, is split like any export: each su_* column a
// missing_column warning, csri's scores null, every row accepted. One
// foreign column is carried into the part and warned of as an unknown
// column. An export with most of the project's fields missing is still
// another project's.
func TestRedcapOlderProject(t *testing.T) {
	env := ingestTestEnv(t)
	s := env.Study
	ctx := context.Background()
	inbox := t.TempDir()
	wh := filepath.Join(t.TempDir(), "w")
	day := time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC)
	rows := [][3]string{{"P00001", "TEWV-01", "baseline"}, {"P00002", "TEWV-02", "baseline"}, {"P00003", "TEWV-01", "baseline"}}
	full := redcapTestExport(t, s, rows, nil, "old_notes")
	var su []string
	for _, f := range s.ExportFields(schemas.KindParticipants) {
		if f.Instrument == "csri" {
			su = append(su, f.Name)
		}
	}
	if len(su) != 9 {
		t.Fatalf("csri has %d items, want 9", len(su))
	}
	older := redcapDropColumns(t, full, func(h string) bool { return slices.Contains(su, h) || h == "csri"+redcap.CompleteSuffix })
	if err := os.WriteFile(filepath.Join(inbox, redcap.FileName(s, day)), older, 0o600); err != nil {
		t.Fatal(err)
	}
	score, _ := LookupStage("score")
	if _, err := RunStages(ctx, env, wh, "run", RunOptions{Create: true}, ingest.Ingest([]string{inbox}), Checked(score)); err != nil {
		var pe *warehouse.ProblemsError
		if !errors.As(err, &pe) {
			t.Fatal(err)
		}
	}
	l := redcapLedger(t, wh)
	if len(l.Files) != 1 {
		t.Fatalf("ledger files %d, want TEWV's part", len(l.Files))
	}
	if f := l.Files[0]; f.Status != warehouse.StatusCurrent || f.RowsAccepted != 3 || f.Warnings != 10 {
		t.Fatalf("part %+v: want current, 3 rows accepted, 10 warnings (9 missing columns, 1 unknown)", f)
	}
	missing, unknown := 0, 0
	for _, p := range redcapProblems(t, wh, "TEWV") {
		switch {
		case p[3] == ingest.WarnMissingColumn && slices.Contains(su, p[2]):
			missing++
		case p[3] == ingest.WarnUnknownColumn:
			unknown++
		default:
			t.Errorf("problem %v", p)
		}
	}
	if missing != 9 || unknown != 1 {
		t.Fatalf("%d missing_column, %d unknown_column; want 9 and 1", missing, unknown)
	}
	sc, scores := tableText(t, wh, "scores")
	iInst, iVal := slices.Index(sc, "instrument"), slices.Index(sc, "value")
	csri, other := 0, 0
	for _, r := range scores {
		c := strings.Split(r, "|")
		switch {
		case c[iInst] == "csri" && c[iVal] != "NULL":
			t.Fatalf("a csri score from an export without its items: %s", r)
		case c[iInst] == "csri":
			csri++
		case c[iInst] == "swemwbs" && c[iVal] != "NULL":
			other++
		}
	}
	if csri == 0 || other == 0 {
		t.Fatalf("%d null csri scores, %d swemwbs scores: want both", csri, other)
	}

	// Most of the project's fields missing: another project.
	p, err := redcap.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	keep := map[string]bool{redcap.RecordID: true, redcap.EventColumn: true, redcap.DAGColumn: true, "interview_date": true, "withdrawn": true, "swemwbs1": true}
	few := redcapDropColumns(t, full, func(h string) bool { return !keep[h] })
	_, err = redcap.Split(s, p, bytes.NewReader(few))
	var se *redcap.SplitError
	if !errors.As(err, &se) || se.Code != redcap.CodeOtherProject {
		t.Fatalf("an export with 5 of the project's fields: %v, want %s", err, redcap.CodeOtherProject)
	}
	// So is one with more foreign columns than the project's fields.
	var extra []string
	for i := 0; i < 10; i++ {
		extra = append(extra, fmt.Sprintf("other_%d", i))
	}
	foreign := redcapDropColumns(t, redcapTestExport(t, s, rows, nil, extra...), func(h string) bool {
		return !keep[h] && !strings.HasPrefix(h, "other_") && !strings.HasPrefix(h, "swemwbs")
	})
	_, err = redcap.Split(s, p, bytes.NewReader(foreign))
	if !errors.As(err, &se) || se.Code != redcap.CodeOtherProject {
		t.Fatalf("an export with 10 foreign columns: %v, want %s", err, redcap.CodeOtherProject)
	}
}

// redcapDropColumns removes the columns whose header drop reports.
func redcapDropColumns(t *testing.T, b []byte, drop func(string) bool) []byte {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var keep []int
	for i, h := range recs[0] {
		if !drop(h) {
			keep = append(keep, i)
		}
	}
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	for _, r := range recs {
		row := make([]string, len(keep))
		for k, i := range keep {
			row[k] = r[i]
		}
		_ = w.Write(row)
	}
	w.Flush()
	return out.Bytes()
}

// TestRedcapSiteFormat: a trust whose site mapping says format redcap
// sends its REDCap export under its own name (tewv_redcap_<date>.csv);
// ingest recognises it by the mapping and splits it like a
// <STUDY>_redcap_<date>.csv export, and the trust's fidelity exports come
// under canonical names. A name of the mapping with an impossible date is
// quarantined as bad_export_date.
func TestRedcapSiteFormat(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "schemas", "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "study.yaml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	site := "# TEWV exports from the study's REDCap project.\ntrust: TEWV\nformat: redcap\nfiles:\n  - {pattern: '^tewv_redcap_(?P<date>\\d{8})\\.csv$', date_layout: \"20060102\", template: \"tewv_redcap_{date}.csv\"}\n"
	if err := os.MkdirAll(filepath.Join(dir, "sites"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sites", "tewv.yaml"), []byte(site), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := schemas.Load(filepath.Join(dir, "study.yaml"), schemas.KnownAnalyses(compare.Names()...))
	if err != nil {
		t.Fatal(err)
	}
	s.Ingest.HoldRejected, s.Ingest.HoldLoss = 1, 1
	env := warehouse.Env{Study: s, Version: "test"}
	if d, ok := redcap.ParseFileName(s, "tewv_redcap_20190301.csv"); !ok || d.Format("2006-01-02") != "2019-03-01" {
		t.Fatalf("ParseFileName: %v %v", d, ok)
	}
	ctx := context.Background()
	inbox := t.TempDir()
	wh := filepath.Join(t.TempDir(), "w")
	rows := [][3]string{{"P00001", "TEWV-01", "baseline"}, {"P00002", "TEWV-02", "baseline"}}
	if err := os.WriteFile(filepath.Join(inbox, "tewv_redcap_20190301.csv"), redcapTestExport(t, s, rows, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inbox, "tewv_redcap_20190231.csv"), redcapTestExport(t, s, rows[:1], nil), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RunStages(ctx, env, wh, "ingest", RunOptions{Create: true}, ingest.Ingest([]string{inbox})); err != nil {
		var pe *warehouse.ProblemsError
		if !errors.As(err, &pe) {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	for _, f := range redcapLedger(t, wh).Files {
		got[f.Name] = fmt.Sprintf("%s %s %d=%d+%d", f.Trust, f.Status, f.RowsRead, f.RowsAccepted, f.RowsRejected)
		if f.Status == warehouse.StatusQuarantined && !strings.HasPrefix(f.Reason, warehouse.QuarantineBadDate) {
			t.Errorf("%s: %s", f.Name, f.Reason)
		}
	}
	want := map[string]string{
		"TEWV_participants_20190301.csv": "TEWV current 2=2+0",
		"tewv_redcap_20190231.csv":       "TEWV quarantined 0=0+0",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ledger %v, want %v", got, want)
	}
	var report bytes.Buffer
	if err := Check(ctx, env, wh, &report); err != nil || strings.Contains(report.String(), "did not commit") {
		t.Fatalf("check: %v\n%s", err, report.String())
	}
}
