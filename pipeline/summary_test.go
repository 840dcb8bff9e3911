package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// summaryNight runs `cpi run` over inbox at the given moment of a fixed
// clock with the given program version, and returns its summary.
func summaryNight(t *testing.T, wh, inbox, version string, at time.Time) *warehouse.Summary {
	t.Helper()
	env := ingestTestEnv(t)
	env.Version = version
	env.Now = func() time.Time { return at }
	sum, err := RunStages(context.Background(), env, wh, "run", RunOptions{Create: true}, RunAll(inbox)...)
	var pe *warehouse.ProblemsError
	if err != nil && !errors.As(err, &pe) {
		t.Fatal(err)
	}
	if (err != nil) != (sum.ExitStatus == 3) {
		t.Fatalf("exit status %d in the summary, error %v", sum.ExitStatus, err)
	}
	return sum
}

// summaryInbox is the committed synthetic study plus an export whose only
// row lacks every answer the study needs (quarantined) and the same bytes
// as one of the study's exports under another name (skipped).
func summaryInbox(t *testing.T) string {
	t.Helper()
	inbox := t.TempDir()
	src := filepath.Join("..", "testdata", "synth")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(inbox, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if e.Name() == "TEWV_fidelity_20190329.csv" {
			os.Mkdir(filepath.Join(inbox, "copy"), 0o750)
			os.WriteFile(filepath.Join(inbox, "copy", "TEWV_fidelity_20190329 (1).csv"), b, 0o600)
		}
	}
	bad := "participant_id,team_code,wave\nP1,TEWV-01,baseline\n"
	if err := os.WriteFile(filepath.Join(inbox, "TEWV_participants_20190401.csv"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	return inbox
}

var summaryClock = time.Date(2030, 1, 15, 2, 0, 0, 0, time.UTC)

// TestSummaryText compares the whole morning summary of two nights with
// what a data manager should read: the first night loads the study, sets a
// file aside and skips a copy; the second, with a new program and nothing
// new for twenty days, rebuilds every derived table and names the silent
// trusts.
func TestSummaryText(t *testing.T) {
	wh := filepath.Join(t.TempDir(), "w")
	inbox := summaryInbox(t)

	first := summaryNight(t, wh, inbox, "1.0", summaryClock)
	var b bytes.Buffer
	warehouse.PrintSummary(&b, first, warehouse.SummaryFull)
	want := `run 1 (cpi run) 2030-01-15 02:00:00 – 02:00:00 UTC, 0.0s: exit 3, finished with problems: 1 row rejected, 1 file quarantined

files: 10 new, 1 quarantined, 1 skipped
  quarantined  TEWV_participants_20190401.csv          TEWV  no_accepted_rows: every row of the export was rejected (see the problems listed); the trust's previous export stays current
  new          awp-cpi-fidelity-20190329.csv           AWP   now current
  new          awp-cpi-participants-20190329.csv       AWP   now current
  new          bdct_cpi_fidelity_29-03-2019.csv        BDCT  now current
  new          bdct_cpi_participants_29-03-2019.csv    BDCT  now current
  new          EPUT-fidelity-2019-03-29.csv            EPUT  now current
  new          EPUT-participants-2019-03-29.csv        EPUT  now current
  new          HPFT fidelity export 20190329.xlsx      HPFT  now current
  new          HPFT participants export 20190329.xlsx  HPFT  now current
  new          TEWV_fidelity_20190329.csv              TEWV  now current
  new          TEWV_participants_20190329.csv          TEWV  now current
  skipped      TEWV_fidelity_20190329 (1).csv          -     the same bytes as TEWV_fidelity_20190329.csv, also in this run

rows by trust:
    trust  files  accepted  rejected  quarantined
      AWP      2        65         0            0
     BDCT      2        67         0            0
     EPUT      2        73         0            0
     HPFT      2        68         0            0
     TEWV      3        68         1            1
    total     11       341         1            1

rebuilt:
  ingest: fidelity_ratings, ingest_files, interviews, participants, rejects, responses — because new export from AWP; new export from BDCT; new export from EPUT; new export from HPFT; new export from TEWV
  score: scores, reliability, service_sums — because not built yet: scores, reliability, service_sums
  fidelity: fidelity, fidelity_components — because not built yet: fidelity, fidelity_components
  compare: effects, balance, trust_effects, descriptives, service_use, missing_data, tipping_point, flow, cost_effectiveness, ce_bootstrap — because not built yet: effects, balance, trust_effects, descriptives, service_use, missing_data, tipping_point, flow, cost_effectiveness, ce_bootstrap
  report fidelity: reports/fidelity-*.html — because not built yet: reports/fidelity-*.html
  report study: reports/study-report.html — because not built yet: reports/study-report.html

WARNING: 80 warnings in the exports (rows kept)

where to look: problems/AWP.csv, problems/BDCT.csv, problems/EPUT.csv, problems/HPFT.csv, problems/TEWV.csv in the warehouse (what and why, by file and line), and the rejects table
`
	if got := b.String(); got != want {
		t.Errorf("first night:\n%s\nwant:\n%s", got, want)
	}

	second := summaryNight(t, wh, inbox, "1.1", summaryClock.Add(20*24*time.Hour))
	b.Reset()
	warehouse.PrintSummary(&b, second, warehouse.SummaryFull)
	want = `run 2 (cpi run) 2030-02-04 02:00:00 – 02:00:00 UTC, 0.0s: exit 0, all accepted

files: 12 skipped
  skipped  awp-cpi-fidelity-20190329.csv           AWP   already received in run 1
  skipped  awp-cpi-participants-20190329.csv       AWP   already received in run 1
  skipped  bdct_cpi_fidelity_29-03-2019.csv        BDCT  already received in run 1
  skipped  bdct_cpi_participants_29-03-2019.csv    BDCT  already received in run 1
  skipped  EPUT-fidelity-2019-03-29.csv            EPUT  already received in run 1
  skipped  EPUT-participants-2019-03-29.csv        EPUT  already received in run 1
  skipped  HPFT fidelity export 20190329.xlsx      HPFT  already received in run 1
  skipped  HPFT participants export 20190329.xlsx  HPFT  already received in run 1
  skipped  TEWV_fidelity_20190329 (1).csv          TEWV  already received in run 1 as TEWV_fidelity_20190329.csv
  skipped  TEWV_fidelity_20190329.csv              TEWV  already received in run 1
  skipped  TEWV_participants_20190329.csv          TEWV  already received in run 1
  skipped  TEWV_participants_20190401.csv          TEWV  already received in run 1

rebuilt:
  score: scores, reliability, service_sums — because program version changed
  fidelity: fidelity, fidelity_components — because program version changed
  compare: effects, balance, trust_effects, descriptives, service_use, missing_data, tipping_point, flow, cost_effectiveness, ce_bootstrap — because program version changed; scores changed; service_sums changed; fidelity changed
  report fidelity: reports/fidelity-*.html — because program version changed; fidelity changed; fidelity_components changed
  report study: reports/study-report.html — because program version changed; scores changed; reliability changed; effects changed; balance changed; trust_effects changed; descriptives changed; missing_data changed; tipping_point changed; service_use changed; cost_effectiveness changed; ce_bootstrap changed; flow changed; fidelity changed

WARNING: no new export for longer than the study allows from: AWP, BDCT, EPUT, HPFT, TEWV
`
	if got := b.String(); got != want {
		t.Errorf("second night:\n%s\nwant:\n%s", got, want)
	}

	// --quiet: only what needs acting on.
	b.Reset()
	warehouse.PrintSummary(&b, second, warehouse.SummaryProblems)
	want = `run 2 (cpi run) 2030-02-04 02:00:00 – 02:00:00 UTC, 0.0s: exit 0, all accepted

WARNING: no new export for longer than the study allows from: AWP, BDCT, EPUT, HPFT, TEWV
`
	if got := b.String(); got != want {
		t.Errorf("second night, problems only:\n%s\nwant:\n%s", got, want)
	}
	b.Reset()
	warehouse.PrintSummary(&b, first, warehouse.SummaryProblems)
	if got := b.String(); !strings.Contains(got, "quarantined  TEWV_participants_20190401.csv") || strings.Contains(got, "now current") || strings.Contains(got, "rebuilt") {
		t.Errorf("first night, problems only:\n%s", got)
	}
}

// TestSummaryNoContradiction: a night with no new file that still
// rebuilds tables (here for a new program version) must not say "nothing
// new"; it said "nothing new: no table rewritten" and then listed the
// tables rewritten, because ingest set NothingNew before the later stages
// ran. And a night that truly does nothing says so, once.
func TestSummaryNoContradiction(t *testing.T) {
	wh := filepath.Join(t.TempDir(), "w")
	inbox := filepath.Join("..", "testdata", "synth")
	summaryNight(t, wh, inbox, "1.0", summaryClock)
	sum := summaryNight(t, wh, inbox, "1.1", summaryClock.Add(time.Hour))
	if sum.NothingNew && len(sum.TablesWritten) > 0 {
		t.Fatalf("nothing new, yet tables rewritten: %v", sum.TablesWritten)
	}
	if sum.NothingNew || len(sum.Rebuilt) != len(DerivedStages()) {
		t.Fatalf("rebuilt %+v, nothing new %v", sum.Rebuilt, sum.NothingNew)
	}
	var b bytes.Buffer
	warehouse.PrintSummary(&b, sum, warehouse.SummaryFull)
	if strings.Contains(b.String(), "nothing new") {
		t.Errorf("summary of a rebuild says nothing new:\n%s", b.String())
	}

	quiet := summaryNight(t, wh, inbox, "1.1", summaryClock.Add(2*time.Hour))
	b.Reset()
	warehouse.PrintSummary(&b, quiet, warehouse.SummaryFull)
	if !quiet.NothingNew || len(quiet.TablesWritten) > 0 || len(quiet.Rebuilt) > 0 || strings.Count(b.String(), "nothing new") != 1 || strings.Contains(b.String(), "rebuilt:") {
		t.Errorf("a night with nothing to do:\n%s", b.String())
	}
}

// TestSummaryJSONAndLedger: the JSON form carries start, end and exit
// status, and the ledger's run entry records the same exit status.
func TestSummaryJSONAndLedger(t *testing.T) {
	wh := filepath.Join(t.TempDir(), "w")
	sum := summaryNight(t, wh, summaryInbox(t), "1.0", summaryClock)
	b, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(b, &got)
	if got["started"] != "2030-01-15T02:00:00Z" || got["finished"] != "2030-01-15T02:00:00Z" || got["exit_status"] != 3.0 {
		t.Errorf("JSON summary: started %v finished %v exit_status %v", got["started"], got["finished"], got["exit_status"])
	}
	files, _ := got["files"].([]any)
	if len(files) != 12 {
		t.Fatalf("JSON files: %v", got["files"])
	}
	q := files[0].(map[string]any)
	if q["name"] != "TEWV_participants_20190401.csv" || q["status"] != "quarantined" || q["trust"] != "TEWV" || !strings.HasPrefix(q["reason"].(string), "no_accepted_rows") {
		t.Errorf("first file %v", q)
	}
	if r, _ := got["rebuilt"].([]any); len(r) != 1+len(DerivedStages()) {
		t.Errorf("JSON rebuilt: %v", got["rebuilt"])
	}
	var runs bytes.Buffer
	if err := warehouse.ListRuns(wh, true, &runs); err != nil {
		t.Fatal(err)
	}
	var entry warehouse.RunEntry
	if err := json.Unmarshal(runs.Bytes(), &entry); err != nil {
		t.Fatal(err)
	}
	if entry.ExitStatus != 3 || entry.Summary.ExitStatus != 3 || !entry.Finished.Equal(sum.Finished) {
		t.Errorf("ledger run entry: exit %d, summary exit %d, finished %v", entry.ExitStatus, entry.Summary.ExitStatus, entry.Finished)
	}
}

// TestSummaryFilesMatchCounts: every file a run meets is named once with
// its status, and the counts agree with the names: a newer export becomes
// current and supersedes the old one, a late older one is superseded on
// arrival, the same bytes again are skipped.
func TestSummaryFilesMatchCounts(t *testing.T) {
	env := ingestTestEnv(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "w")
	row := func(pid string) map[string]string {
		return ingestTestRow(pid, "TEWV-01", "baseline", "2018-03-01", nil)
	}
	old := ingestTestCSV(t, dir, "TEWV_participants_20190301.csv", env, "participants", []map[string]string{row("P00001")})
	if _, err := ingestTestRun(t, env, wh, old); err != nil {
		t.Fatal(err)
	}
	newer := ingestTestCSV(t, dir, "TEWV_participants_20190401.csv", env, "participants", []map[string]string{row("P00001"), row("P00002")})
	// Files arrive in path order: the late export before the newer one.
	late := ingestTestCSV(t, dir, "TEWV_participants_20190201.csv", env, "participants", []map[string]string{row("P00009")})
	sum, err := ingestTestRun(t, env, wh, newer, late, old)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range sum.Files[:len(sum.Files)-1] {
		got[f.Name] = f.Status + ": " + f.Reason
	}
	want := map[string]string{
		"TEWV_participants_20190401.csv": "new: now current, replacing TEWV_participants_20190301.csv",
		"TEWV_participants_20190301.csv": "superseded: superseded: TEWV_participants_20190401.csv is newer",
		"TEWV_participants_20190201.csv": "superseded: superseded_on_arrival: an export of 2019-03-01 (TEWV_participants_20190301.csv) is newer",
	}
	if len(sum.Files) != 4 || sum.Files[3].Status != warehouse.OutcomeSkipped || sum.Files[3].Name != "TEWV_participants_20190301.csv" {
		t.Errorf("files %+v", sum.Files)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
	count := func(status string) int {
		return warehouse.CountFunc(sum.Files, func(f warehouse.FileOutcome) bool { return f.Status == status })
	}
	if count(warehouse.OutcomeSuperseded) != sum.FilesSuperseded || count(warehouse.OutcomeSkipped) != sum.FilesSkipped || sum.FilesSuperseded != 2 {
		t.Errorf("counts %d superseded, %d skipped; lines %d, %d", sum.FilesSuperseded, sum.FilesSkipped, count(warehouse.OutcomeSuperseded), count(warehouse.OutcomeSkipped))
	}
	var b bytes.Buffer
	warehouse.PrintSummary(&b, sum, warehouse.SummaryFull)
	if !strings.Contains(b.String(), "files: 1 new, 2 superseded, 1 skipped\n") {
		t.Errorf("summary:\n%s", b.String())
	}
}
