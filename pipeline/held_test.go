package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// tewvExport is the bundled study's TEWV participants export.
var tewvExport = filepath.Join("..", "testdata", "synth", "TEWV_participants_20190329.csv")

// rewriteExport writes src to dst with each data line passed through edit
// (nil: dropped).
func rewriteExport(t *testing.T, src, dst string, edit func(i int, line string) *string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	out := []string{lines[0]}
	for i, l := range lines[1:] {
		if e := edit(i, l); e != nil {
			out = append(out, *e)
		}
	}
	if err := os.WriteFile(dst, []byte(strings.Join(out, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// keepFirstParticipants keeps the rows of the first n participants.
func keepFirstParticipants(n int) func(int, string) *string {
	seen := map[string]bool{}
	return func(_ int, l string) *string {
		id := strings.SplitN(l, ",", 2)[0]
		if !seen[id] && len(seen) == n {
			return nil
		}
		seen[id] = true
		return &l
	}
}

var isoDate = regexp.MustCompile(`(\d{4})-(\d{2})-(\d{2})`)

// ukDates writes every ISO date as dd/mm/yyyy, as an Excel re-save does.
func ukDates(_ int, l string) *string {
	s := isoDate.ReplaceAllString(l, "$3/$2/$1")
	return &s
}

func heldRun(t *testing.T, env warehouse.Env, wh string, stages ...warehouse.Stage) (*warehouse.Summary, error) {
	t.Helper()
	return RunStages(context.Background(), env, wh, "run", RunOptions{Create: true}, stages...)
}

func tewvParticipants(t *testing.T, wh string) int {
	t.Helper()
	n := 0
	for _, id := range ingestTestStrings(t, wh, "participants", "study_id") {
		if strings.HasPrefix(id, "TEWV-") {
			n++
		}
	}
	return n
}

// TestHeldWhenParticipantsLost: a cumulative export that has lost half the
// trust's participants is held: the previous export stays current, every
// night exits 3 naming it, until `cpi accept` takes it (recorded with its
// reason) and the derived tables follow.
func TestHeldWhenParticipantsLost(t *testing.T) {
	env := ingestTestEnv(t)
	inbox := filepath.Join("..", "testdata", "synth")
	wh := filepath.Join(t.TempDir(), "w")
	if _, err := heldRun(t, env, wh, RunAll(inbox)...); err != nil {
		t.Fatal(err)
	}
	before := tewvParticipants(t, wh)
	extra := t.TempDir()
	half := filepath.Join(extra, "TEWV_participants_20190415.csv")
	rewriteExport(t, tewvExport, half, keepFirstParticipants(before/2))
	ref := snapshot(t, wh)

	for night := 1; night <= 2; night++ {
		sum, err := heldRun(t, env, wh, RunAll(extra)...)
		var pe *warehouse.ProblemsError
		if !errors.As(err, &pe) || pe.Held != 1 {
			t.Fatalf("night %d: err %v, want exit 3 with one export held", night, err)
		}
		if sum.FilesHeld != 1 || len(sum.Held) != 1 || sum.Held[0].Name != filepath.Base(half) || !strings.HasPrefix(sum.Held[0].Reason, ingest.HoldLostUnits) {
			t.Errorf("night %d: held %+v", night, sum.Held)
		}
		if got := tewvParticipants(t, wh); got != before {
			t.Errorf("night %d: TEWV has %d participants, want %d (the previous export stays current)", night, got, before)
		}
		// Nothing that analysts read changed, but the problem list.
		now := snapshot(t, wh)
		delete(now, filepath.Join("problems", "TEWV.csv"))
		delete(ref, filepath.Join("problems", "TEWV.csv"))
		sameSnapshot(t, "held export", now, ref)
	}
	if _, err := heldRun(t, env, wh, AcceptAll(filepath.Base(half), "")...); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Errorf("accept without a reason: %v", err)
	}
	sum, err := heldRun(t, env, wh, AcceptAll(filepath.Base(half), "the trust withdrew consent records; confirmed by e-mail")...)
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	var stages []string
	for _, r := range sum.Rebuilt {
		stages = append(stages, r.Stage)
	}
	if sum.FilesHeld != 0 || strings.Join(stages, ",") != "ingest,score,compare,report fidelity,report study" {
		t.Errorf("after accept: held %d, rebuilt %+v", sum.FilesHeld, sum.Rebuilt)
	}
	if got := tewvParticipants(t, wh); got != before/2 {
		t.Errorf("after accept TEWV has %d participants, want %d", got, before/2)
	}
	w, _ := warehouse.OpenWarehouse(wh, false)
	gen, _ := w.CurrentDir()
	l, err := warehouse.ReadLedger(gen)
	if err != nil {
		t.Fatal(err)
	}
	var acc *warehouse.FileEntry
	for _, f := range l.Files {
		if f.Name == filepath.Base(half) {
			acc = f
		}
	}
	if acc == nil || acc.Status != warehouse.StatusCurrent || acc.Accepted == nil || !strings.Contains(acc.Accepted.Reason, "withdrew") {
		t.Errorf("ledger entry %+v", acc)
	}
	// Scores follow the accepted export: no participant without a row.
	ids := map[string]bool{}
	for _, id := range ingestTestStrings(t, wh, "participants", "study_id") {
		ids[id] = true
	}
	for _, id := range ingestTestStrings(t, wh, "scores", "study_id") {
		if !ids[id] {
			t.Fatalf("scores holds %s, who is not in participants", id)
		}
	}
	// Nothing more to accept.
	if _, err := heldRun(t, env, wh, AcceptAll(filepath.Base(half), "again")...); err == nil {
		t.Error("a second accept succeeded")
	}
}

// TestHeldWhenRowsRejected: an Excel re-save with UK dates (most rows
// rejected) is held, and a newer good export supersedes it.
func TestHeldWhenRowsRejected(t *testing.T) {
	env := ingestTestEnv(t)
	inbox := filepath.Join("..", "testdata", "synth")
	wh := filepath.Join(t.TempDir(), "w")
	if _, err := heldRun(t, env, wh, RunAll(inbox)...); err != nil {
		t.Fatal(err)
	}
	before := tewvParticipants(t, wh)
	extra := t.TempDir()
	rewriteExport(t, tewvExport, filepath.Join(extra, "TEWV_participants_20190415.csv"), ukDates)
	sum, err := heldRun(t, env, wh, RunAll(extra)...)
	var pe *warehouse.ProblemsError
	if !errors.As(err, &pe) || sum.FilesHeld != 1 || !strings.HasPrefix(sum.Held[0].Reason, ingest.HoldRejectedRows) {
		t.Fatalf("UK dates: err %v, held %+v", err, sum)
	}
	if got := tewvParticipants(t, wh); got != before {
		t.Errorf("TEWV has %d participants, want %d", got, before)
	}
	// The held export's problems are listed for the trust.
	b, _ := os.ReadFile(filepath.Join(wh, "problems", "TEWV.csv"))
	if !strings.Contains(string(b), "TEWV_participants_20190415.csv") || !strings.Contains(string(b), ingest.CodeBadDate) {
		t.Error("problems/TEWV.csv does not list the held export's problems")
	}
	// A newer good export: current, and the held one superseded.
	later := t.TempDir()
	rewriteExport(t, tewvExport, filepath.Join(later, "TEWV_participants_20190501.csv"), func(_ int, l string) *string {
		l += "\r" // other bytes than the first export's: CRLF line ends
		return &l
	})
	sum, err = heldRun(t, env, wh, RunAll(later)...)
	if err != nil || sum.FilesHeld != 0 {
		t.Fatalf("newer export: err %v, held %d", err, sum.FilesHeld)
	}
	b, _ = os.ReadFile(filepath.Join(wh, "problems", "TEWV.csv"))
	if strings.Contains(string(b), "20190415") {
		t.Error("the superseded held export is still in the problem list")
	}
}

// TestProblemListsDescribeCurrentFiles: a quiet night, or a late older
// export, leaves the trust's problem list and rejects as they were.
func TestProblemListsDescribeCurrentFiles(t *testing.T) {
	env := ingestTestEnv(t)
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox")
	os.Mkdir(inbox, 0o700)
	// Two bad cells in the current export (under 10% of rows).
	rewriteExport(t, tewvExport, filepath.Join(inbox, "TEWV_participants_20190329.csv"), func(i int, l string) *string {
		if i == 3 || i == 7 {
			cells := strings.Split(l, ",")
			cells[5] = "f" // gender: bad_code
			l = strings.Join(cells, ",")
		}
		return &l
	})
	wh := filepath.Join(dir, "w")
	if _, err := heldRun(t, env, wh, RunAll(inbox)...); err == nil {
		t.Fatal("want exit 3 for the rejected rows")
	}
	list := func() string {
		b, err := os.ReadFile(filepath.Join(wh, "problems", "TEWV.csv"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	want := list()
	wantRejects := ingestTestStrings(t, wh, "rejects", "code")
	if strings.Count(want, ingest.CodeBadCode) != 2 || len(wantRejects) != 2 {
		t.Fatalf("problem list %q, rejects %v", want, wantRejects)
	}
	// A quiet night.
	if _, err := heldRun(t, env, wh, RunAll(inbox)...); err != nil {
		t.Fatalf("quiet night: %v", err)
	}
	if got := list(); got != want {
		t.Errorf("quiet night changed the problem list:\n%s\nwant\n%s", got, want)
	}
	// A late older export, clean: superseded on arrival.
	late := filepath.Join(dir, "late")
	os.Mkdir(late, 0o700)
	rewriteExport(t, tewvExport, filepath.Join(late, "TEWV_participants_20190301.csv"), keepFirstParticipants(1000))
	if _, err := heldRun(t, env, wh, RunAll(late)...); err != nil {
		t.Fatalf("late export: %v", err)
	}
	if got := list(); got != want {
		t.Errorf("a late older export changed the problem list:\n%s", got)
	}
	if got := ingestTestStrings(t, wh, "rejects", "code"); strings.Join(got, ",") != strings.Join(wantRejects, ",") {
		t.Errorf("rejects %v, want %v", got, wantRejects)
	}
}

// TestProblemSetOrderAndMemory: the problem set gives problems back in
// the order of a stable sort by line and column, across spilled runs, and
// holds a million problems in a few MB of heap.
func TestProblemSetOrderAndMemory(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var want []ingest.Problem
	s := ingest.NewProblemSet(t.TempDir())
	defer s.Close()
	for i := range 3*ingest.ProblemChunk + 123 {
		p := ingest.Problem{Line: rng.IntN(5000) + 2, Column: []string{"gender", "rg01", "wave"}[rng.IntN(3)], Code: ingest.CodeBadCode, Severity: ingest.SeverityError, Message: strings.Repeat("m", i%7)}
		want = append(want, p)
		if err := s.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	sort.SliceStable(want, func(i, j int) bool {
		if want[i].Line != want[j].Line {
			return want[i].Line < want[j].Line
		}
		return want[i].Column < want[j].Column
	})
	for pass := range 2 {
		i := 0
		err := s.Each(func(p ingest.Problem) error {
			if p != want[i] {
				t.Fatalf("pass %d: problem %d is %+v, want %+v", pass, i, p, want[i])
			}
			i++
			return nil
		})
		if err != nil || i != len(want) {
			t.Fatalf("pass %d: %d problems read, %v", pass, i, err)
		}
	}

	big := ingest.NewProblemSet(t.TempDir())
	defer big.Close()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	for i := range 1_000_000 {
		big.Add(ingest.Problem{Line: 2 + i/50, Column: "rg01", Code: ingest.CodeBadCode, Severity: ingest.SeverityError, Message: "rg01 is not one of the instrument's codes"})
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if grew := int64(ms.HeapAlloc) - int64(base); grew > 16<<20 {
		t.Errorf("a million problems took %d MB of heap", grew>>20)
	}
	n := 0
	big.Each(func(ingest.Problem) error { n++; return nil })
	if n != 1_000_000 {
		t.Errorf("read back %d problems", n)
	}
}

// TestCrashDuringAccept stops `cpi accept` at each of its write steps: the
// warehouse is then as before the accept (the export still held) or as
// after it, and finishing the work gives the bytes of an uninterrupted
// accept.
func TestCrashDuringAccept(t *testing.T) {
	env := ingestTestEnv(t)
	base, held := heldWarehouse(t, env)
	accept := func(wh string, hooks warehouse.CrashHooks) error {
		_, err := RunStages(context.Background(), env, wh, "accept", RunOptions{Hooks: hooks}, AcceptAll(held, "checked with the trust")...)
		return err
	}
	ref := filepath.Join(t.TempDir(), "ref")
	copyTree(t, base, ref)
	count := &crashAt{}
	if err := accept(ref, count); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, ref)
	steps := count.steps
	switchAt := indexOf(steps, "commit:switch")
	if len(steps) < 10 || switchAt < 0 {
		t.Fatalf("write steps %v", steps)
	}
	for n := 1; n <= len(steps); n++ {
		wh := filepath.Join(t.TempDir(), "w")
		copyTree(t, base, wh)
		w, _ := warehouse.OpenWarehouse(wh, false)
		before, _ := w.CurrentDir()
		if err := accept(wh, &crashAt{n: n}); !errors.Is(err, errCrash) {
			t.Fatalf("step %d (%s): accept did not stop: %v", n, steps[n-1], err)
		}
		now, _ := w.CurrentDir()
		if afterSwitch := n > switchAt; (now != before) != afterSwitch {
			t.Fatalf("step %d (%s): current generation %s (before %s)", n, steps[n-1], now, before)
		}
		if now == before {
			if err := accept(wh, nil); err != nil {
				t.Fatalf("step %d (%s): accept after the crash: %v", n, steps[n-1], err)
			}
		}
		sameSnapshot(t, fmt.Sprintf("accept crashed at step %d (%s)", n, steps[n-1]), snapshot(t, wh), want)
	}
}

// heldWarehouse runs the bundled study into a new warehouse, then a newer
// TEWV export with only 10 participants, which is held; it returns the
// warehouse and the held export's name.
func heldWarehouse(t *testing.T, env warehouse.Env) (wh, held string) {
	t.Helper()
	wh = filepath.Join(t.TempDir(), "w")
	if _, err := heldRun(t, env, wh, RunAll(filepath.Join("..", "testdata", "synth"))...); err != nil {
		t.Fatal(err)
	}
	extra := t.TempDir()
	half := filepath.Join(extra, "TEWV_participants_20190415.csv")
	rewriteExport(t, tewvExport, half, keepFirstParticipants(10))
	if sum, _ := heldRun(t, env, wh, RunAll(extra)...); sum == nil || sum.FilesHeld != 1 {
		t.Fatal("the export was not held")
	}
	return wh, filepath.Base(half)
}
