package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// runCommand runs one command of the sequence tests on warehouse wh:
// "ingest:<path>", "run:<inbox>", a derived stage's name (the stage command,
// which refuses stale inputs), or "report study"/"report fidelity" (the
// read-only report commands: a check of their inputs).
func runCommand(t *testing.T, env warehouse.Env, wh, cmd string) error {
	t.Helper()
	ctx := context.Background()
	var err error
	switch {
	case strings.HasPrefix(cmd, "ingest:"):
		_, err = RunStages(ctx, env, wh, "ingest", RunOptions{Create: true}, ingest.Ingest([]string{strings.TrimPrefix(cmd, "ingest:")}))
	case strings.HasPrefix(cmd, "run:"):
		_, err = RunStages(ctx, env, wh, "run", RunOptions{Create: true}, RunAll(strings.TrimPrefix(cmd, "run:"))...)
	case strings.HasPrefix(cmd, "report "):
		err = ReadyFor(ctx, env, wh, cmd)
	default:
		d, ok := LookupStage(cmd)
		if !ok {
			t.Fatalf("no command %q", cmd)
		}
		_, err = RunStages(ctx, env, wh, cmd, RunOptions{}, Checked(d))
	}
	var pe *warehouse.ProblemsError
	if errors.As(err, &pe) {
		return nil
	}
	return err
}

// tablesOnly keeps the tables of a snapshot.
func tablesOnly(s map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range s {
		if strings.HasPrefix(k, "tables"+string(filepath.Separator)) {
			out[k] = v
		}
	}
	return out
}

// derivedOrders lists every order of the stage commands score, fidelity
// and compare that respects their inputs, over every subset closed under
// them (compare needs score and fidelity).
func derivedOrders() [][]string {
	return [][]string{
		{}, {"score"}, {"fidelity"}, {"score", "fidelity"}, {"fidelity", "score"},
		{"score", "fidelity", "compare"}, {"fidelity", "score", "compare"},
	}
}

// TestAnyOrderOfCommandsMatchesOneRun: whatever mix of stage commands a
// warehouse saw before `cpi run`, it ends holding the tables and reports of
// a single `cpi run`, byte for byte; and a full sequence of stage commands
// alone gives the same tables.
func TestAnyOrderOfCommandsMatchesOneRun(t *testing.T) {
	env := ingestTestEnv(t)
	inbox := filepath.Join("..", "testdata", "synth")
	ref := filepath.Join(t.TempDir(), "ref")
	if err := runCommand(t, env, ref, "run:"+inbox); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, ref)
	for _, order := range derivedOrders() {
		name := "ingest," + strings.Join(order, ",")
		t.Run(name+",run", func(t *testing.T) {
			wh := filepath.Join(t.TempDir(), "w")
			seq := append(append([]string{"ingest:" + inbox}, order...), "run:"+inbox)
			for _, c := range seq {
				if err := runCommand(t, env, wh, c); err != nil {
					t.Fatalf("%s: %v", c, err)
				}
			}
			sameSnapshot(t, name+",run", snapshot(t, wh), want)
		})
		if len(order) == 3 {
			t.Run(name, func(t *testing.T) {
				wh := filepath.Join(t.TempDir(), "w")
				for _, c := range append([]string{"ingest:" + inbox}, order...) {
					if err := runCommand(t, env, wh, c); err != nil {
						t.Fatalf("%s: %v", c, err)
					}
				}
				if err := runCommand(t, env, wh, "report study"); err != nil {
					t.Errorf("report study after compare: %v", err)
				}
				sameSnapshot(t, name, tablesOnly(snapshot(t, wh)), tablesOnly(want))
			})
		}
	}
}

// TestStageRefusesMissingOrStaleInputs: compare before score, a report
// before compare, and compare after a new ingest refuse with ErrStale,
// writing nothing.
func TestStageRefusesMissingOrStaleInputs(t *testing.T) {
	env := ingestTestEnv(t)
	inbox := filepath.Join("..", "testdata", "synth")
	wh := filepath.Join(t.TempDir(), "w")
	must := func(c string) {
		t.Helper()
		if err := runCommand(t, env, wh, c); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
	}
	refuse := func(c, mention string) {
		t.Helper()
		before := snapshot(t, wh)
		err := runCommand(t, env, wh, c)
		if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), mention) {
			t.Errorf("%s: got %v, want ErrStale naming %q", c, err, mention)
		}
		sameSnapshot(t, c+" refused", snapshot(t, wh), before)
	}
	must("ingest:" + inbox)
	refuse("compare", "scores")
	refuse("report study", "scores")
	must("score")
	refuse("compare", "fidelity")
	must("fidelity")
	must("compare")
	if err := runCommand(t, env, wh, "report study"); err != nil {
		t.Fatal(err)
	}
	// A newer TEWV export without its last participant: scores are stale.
	newer := filepath.Join(t.TempDir(), "TEWV_participants_20190330.csv")
	writeWithoutLastParticipant(t, filepath.Join(inbox, "TEWV_participants_20190329.csv"), newer)
	must("ingest:" + newer)
	refuse("compare", "scores")
	refuse("report study", "scores")
	must("score")
	must("compare")
}

// TestIngestThenRunRebuildsDerived: `cpi ingest FILE` and then `cpi run`
// (nothing new in the inbox) rebuilds scores and everything after them,
// ending with the tables of one run over all the files.
func TestIngestThenRunRebuildsDerived(t *testing.T) {
	env := ingestTestEnv(t)
	inbox := filepath.Join("..", "testdata", "synth")
	extra := t.TempDir()
	newer := filepath.Join(extra, "TEWV_participants_20190330.csv")
	writeWithoutLastParticipant(t, filepath.Join(inbox, "TEWV_participants_20190329.csv"), newer)

	wh := filepath.Join(t.TempDir(), "w")
	if err := runCommand(t, env, wh, "run:"+inbox); err != nil {
		t.Fatal(err)
	}
	if err := runCommand(t, env, wh, "ingest:"+newer); err != nil {
		t.Fatal(err)
	}
	sum, err := RunStages(context.Background(), env, wh, "run", RunOptions{}, RunAll(inbox)...)
	if err != nil {
		t.Fatal(err)
	}
	var stages []string
	for _, r := range sum.Rebuilt {
		stages = append(stages, r.Stage)
	}
	if strings.Join(stages, ",") != "score,compare,report fidelity,report study" || !strings.Contains(strings.Join(sum.Rebuilt[0].Because, ","), "participants changed") {
		t.Errorf("rebuilt %+v: want score, compare, the fidelity reports (their data cut-off: ingest_files changed) and the study report, because participants changed", sum.Rebuilt)
	}
	if sum.NothingNew {
		t.Error("summary says nothing new although tables were rebuilt")
	}
	// The same files seen by one run.
	both := t.TempDir()
	for _, dir := range []string{inbox, extra} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(both, e.Name()), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	one := filepath.Join(t.TempDir(), "one")
	if err := runCommand(t, env, one, "run:"+both); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, "run, ingest FILE, run", tablesOnly(snapshot(t, wh)), tablesOnly(snapshot(t, one)))

	// A quiet night after that rebuilds nothing.
	sum, err = RunStages(context.Background(), env, wh, "run", RunOptions{}, RunAll(inbox)...)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Rebuilt) != 0 || !sum.NothingNew || len(sum.TablesWritten) != 0 {
		t.Errorf("quiet night: rebuilt %+v, tables %v", sum.Rebuilt, sum.TablesWritten)
	}
}

// TestDamagedWarehouseStopsRun: a deleted partition, a changed table file
// and a missing ledger stop the next run (exit 1) naming what is damaged.
func TestDamagedWarehouseStopsRun(t *testing.T) {
	env := ingestTestEnv(t)
	inbox := filepath.Join("..", "testdata", "synth")
	for _, c := range []struct {
		name, mention string
		damage        func(gen string)
	}{
		{"deleted partition", "scores: tables/scores/trust=AWP", func(gen string) {
			os.RemoveAll(filepath.Join(gen, "tables", "scores", "trust=AWP"))
		}},
		{"changed file", "participants: tables/participants/trust=TEWV", func(gen string) {
			files, _ := filepath.Glob(filepath.Join(gen, "tables", "participants", "trust=TEWV", "*.parquet"))
			b, _ := os.ReadFile(files[0])
			b[len(b)/2] ^= 1
			os.Remove(files[0])
			os.WriteFile(files[0], b, 0o640)
		}},
		{"missing ledger", "ledger", func(gen string) {
			os.Remove(warehouse.LedgerPath(gen))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wh := filepath.Join(t.TempDir(), "w")
			if err := runCommand(t, env, wh, "run:"+inbox); err != nil {
				t.Fatal(err)
			}
			w, _ := warehouse.OpenWarehouse(wh, false)
			gen, _ := w.CurrentDir()
			c.damage(gen)
			err := runCommand(t, env, wh, "run:"+inbox)
			if err == nil || !strings.Contains(err.Error(), c.mention) || !strings.Contains(err.Error(), "damaged") {
				t.Fatalf("got %v, want an error naming %q", err, c.mention)
			}
			if now, _ := w.CurrentDir(); now != gen {
				t.Errorf("a damaged warehouse was committed over: %s, then %s", gen, now)
			}
		})
	}
}

// writeWithoutLastParticipant copies a canonical participants export
// without the rows of its last participant.
func writeWithoutLastParticipant(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\n")
	last := strings.SplitN(lines[len(lines)-1], ",", 2)[0]
	keep := lines[:0:0]
	for _, l := range lines {
		if strings.SplitN(l, ",", 2)[0] != last {
			keep = append(keep, l)
		}
	}
	if len(keep) == len(lines) {
		t.Fatal("no participant dropped")
	}
	if err := os.WriteFile(dst, []byte(strings.Join(keep, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStatusShowsStaleOutputs: cpi status says which outputs are current,
// which stale and why, and which were never built.
func TestStatusShowsStaleOutputs(t *testing.T) {
	env := ingestTestEnv(t)
	inbox := filepath.Join("..", "testdata", "synth")
	wh := filepath.Join(t.TempDir(), "w")
	if err := runCommand(t, env, wh, "ingest:"+inbox); err != nil {
		t.Fatal(err)
	}
	if err := runCommand(t, env, wh, "score"); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(t.TempDir(), "TEWV_participants_20190330.csv")
	writeWithoutLastParticipant(t, filepath.Join(inbox, "TEWV_participants_20190329.csv"), newer)
	if err := runCommand(t, env, wh, "ingest:"+newer); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := Status(context.Background(), env, wh, &b); err != nil {
		t.Fatal(err)
	}
	out := strings.Join(strings.Fields(b.String()), " ")
	for _, want := range []string{
		"participants current run 3",
		"fidelity_ratings current run 1",
		"scores STALE (responses changed, participants changed) run 2",
		"effects never built",
		"reports/study-report.html never built",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

// TestFileOrderDoesNotMatter: two warehouses that receive the same exports
// in opposite orders, on different nights, hold the same tables.
func TestFileOrderDoesNotMatter(t *testing.T) {
	env := ingestTestEnv(t)
	inbox := filepath.Join("..", "testdata", "synth")
	newer := filepath.Join(t.TempDir(), "TEWV_participants_20190330.csv")
	writeWithoutLastParticipant(t, filepath.Join(inbox, "TEWV_participants_20190329.csv"), newer)
	a := filepath.Join(t.TempDir(), "a")
	for _, c := range []string{"run:" + inbox, "run:" + filepath.Dir(newer)} {
		if err := runCommand(t, env, a, c); err != nil {
			t.Fatal(err)
		}
	}
	b := filepath.Join(t.TempDir(), "b")
	for _, c := range []string{"ingest:" + newer, "run:" + inbox} {
		if err := runCommand(t, env, b, c); err != nil {
			t.Fatal(err)
		}
	}
	sameSnapshot(t, "newer export first", snapshot(t, b), snapshot(t, a))
}
