package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/pipeline/fidelity"
	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/report"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// reportProvenanceTestFiles is a ledger: only current files count, and a
// later superseded, held or quarantined export does not move the cut-off.
//
//	TEWV participants current 2026-03-01, fidelity current 2026-03-15,
//	     participants superseded 2026-04-01 (ignored)
//	BDCT fidelity quarantined 2026-05-01 (ignored), participants held
//	     2026-05-02 (ignored), participants current 2026-02-10
//	AWP  fidelity current 2026-02-20
//	HPFT, EPUT nothing
//
// So the cut-off is 2026-03-15 (TEWV's fidelity export).
func reportProvenanceTestFiles() []*warehouse.FileEntry {
	at := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	f := func(sha, trust, kind, date, status string) *warehouse.FileEntry {
		return &warehouse.FileEntry{SHA256: sha, Name: sha + ".csv", Trust: trust, Kind: kind, ExportDate: date, ReceivedAt: at, Status: status}
	}
	return []*warehouse.FileEntry{
		f("a1", "TEWV", "participants", "2026-03-01", "current"),
		f("a2", "TEWV", "fidelity", "2026-03-15", "current"),
		f("a3", "TEWV", "participants", "2026-04-01", "superseded"),
		f("b1", "BDCT", "fidelity", "2026-05-01", "quarantined"),
		f("b2", "BDCT", "participants", "2026-05-02", "held"),
		f("b3", "BDCT", "participants", "2026-02-10", "current"),
		f("c1", "AWP", "fidelity", "2026-02-20", "current"),
	}
}

func reportProvenanceTestWarehouse(t *testing.T) (warehouse.Env, string) {
	t.Helper()
	env := fidelityTestEnv(t)
	w, err := warehouse.OpenWarehouse(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	fidelityTestWriteRatings(t, env, tx, reportFidelityTestRatings())
	if err := fidelity.Fidelity(context.Background(), env, tx); err != nil {
		t.Fatal(err)
	}
	tx.Ledger.Files = append(tx.Ledger.Files, reportProvenanceTestFiles()...)
	if err := ingest.WriteIngestFiles(context.Background(), env, tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	gen, err := w.CurrentDir()
	if err != nil {
		t.Fatal(err)
	}
	return env, gen
}

func TestReportProvenance(t *testing.T) {
	env, gen := reportProvenanceTestWarehouse(t)
	p, err := report.ReadProvenance(context.Background(), env.Study, gen)
	if err != nil {
		t.Fatal(err)
	}
	if p.Cutoff != "2026-03-15" {
		t.Errorf("cut-off %q, want 2026-03-15", p.Cutoff)
	}
	want := map[string]string{"TEWV": "2026-03-01 2026-03-15", "BDCT": "2026-02-10 none", "AWP": "none 2026-02-20", "HPFT": "none none", "EPUT": "none none"}
	if len(p.Trusts) != len(env.Study.Trusts) {
		t.Fatalf("%d trusts, want %d", len(p.Trusts), len(env.Study.Trusts))
	}
	for _, tc := range p.Trusts {
		got := strings.Join(tc.Dates, " ")
		if got != want[tc.Trust] {
			t.Errorf("%s: export dates %q, want %q", tc.Trust, got, want[tc.Trust])
		}
	}
	if got := p.TrustCutoff("BDCT"); got != "2026-02-10" {
		t.Errorf("BDCT's latest export %s, want 2026-02-10", got)
	}

	// The fidelity report states its trust's fidelity export and the cut-off.
	page := reportFidelityTestRender(t, env, gen, "TEWV-01")
	head := reportFidelityTestSection(t, page, "summary")
	if !strings.Contains(head, "ratings exported 2026-03-15 by TEWV; study data cut-off 2026-03-15") {
		t.Errorf("fidelity report's header lacks its data: %s", head)
	}
	page = reportFidelityTestRender(t, env, gen, "BDCT-01")
	if head := reportFidelityTestSection(t, page, "summary"); !strings.Contains(head, "ratings exported none by BDCT; study data cut-off 2026-03-15") {
		t.Errorf("BDCT-01's header: %s", head)
	}

	// Without ingest_files the cut-off is unknown, never invented.
	env2, gen2 := reportFidelityTestWarehouse(t)
	if head := reportFidelityTestSection(t, reportFidelityTestRender(t, env2, gen2, "TEWV-01"), "summary"); !strings.Contains(head, "study data cut-off unknown") {
		t.Errorf("no ingest_files: %s", head)
	}
}
