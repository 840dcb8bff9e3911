package pipeline

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

var killRuns = flag.Int("crash.kills", 12, "SIGKILL runs in TestSIGKILLAtRandomMoments")

// crashAt stops a run at its n-th write step (counting from 1), as a crash
// would: nothing is cleaned up. With n = 0 it only records the steps.
type crashAt struct {
	mu    sync.Mutex
	n     int
	steps []string
}

func (c *crashAt) Step(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, name)
	if len(c.steps) == c.n {
		return fmt.Errorf("at %s: %w", name, errCrash)
	}
	return nil
}

func crashRun(env warehouse.Env, wh string, hooks warehouse.CrashHooks) error {
	_, err := RunStages(context.Background(), env, wh, "run", RunOptions{Create: true, Hooks: hooks}, RunAll(filepath.Join("..", "testdata", "synth"))...)
	var pe *warehouse.ProblemsError
	if errors.As(err, &pe) {
		return nil
	}
	return err
}

// snapshot maps every file of the committed generation's tables and
// reports (but ingest_files, which carries arrival times) to its bytes.
func snapshot(t *testing.T, wh string) map[string]string {
	t.Helper()
	w, err := warehouse.OpenWarehouse(wh, false)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := w.CurrentDir()
	if err != nil || gen == "" {
		t.Fatalf("no committed generation: %v", err)
	}
	out := map[string]string{}
	for _, d := range []string{"tables", "reports", "problems"} {
		root := filepath.Join(gen, d)
		filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(gen, p)
			if strings.HasPrefix(rel, filepath.Join("tables", "ingest_files")) {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			out[rel] = string(b)
			return nil
		})
	}
	return out
}

func sameSnapshot(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	var diff []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			diff = append(diff, "missing "+k)
		} else if g != v {
			diff = append(diff, "differs "+k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diff = append(diff, "extra "+k)
		}
	}
	sort.Strings(diff)
	if len(diff) > 0 {
		t.Errorf("%s: %d files differ from an uninterrupted run: %s", what, len(diff), strings.Join(diff, "; "))
	}
}

// TestDeterministicRuns: two runs over the same inputs into two new
// warehouses give byte-identical tables, reports and problem lists.
func TestDeterministicRuns(t *testing.T) {
	env := ingestTestEnv(t)
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	if err := crashRun(env, a, nil); err != nil {
		t.Fatal(err)
	}
	if err := crashRun(env, b, nil); err != nil {
		t.Fatal(err)
	}
	sa, sb := snapshot(t, a), snapshot(t, b)
	if len(sa) < 40 {
		t.Errorf("only %d files in the snapshot", len(sa))
	}
	sameSnapshot(t, "second warehouse", sb, sa)
}

// TestCrashAtEveryWriteStep stops a run at each of its write steps in
// turn, then runs again normally: the result must be byte-identical to an
// uninterrupted run's, and before the second run the warehouse must be
// as it was before the first (here: no committed generation, or the
// complete one when the crash came after the switch).
func TestCrashAtEveryWriteStep(t *testing.T) {
	env := ingestTestEnv(t)
	ref := filepath.Join(t.TempDir(), "ref")
	count := &crashAt{}
	if err := crashRun(env, ref, count); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, ref)
	steps := count.steps
	if len(steps) < 30 {
		t.Fatalf("only %d write steps: %v", len(steps), steps)
	}
	t.Logf("%d write steps", len(steps))
	for n := 1; n <= len(steps); n++ {
		wh := filepath.Join(t.TempDir(), fmt.Sprintf("w%d", n))
		err := crashRun(env, wh, &crashAt{n: n})
		if !errors.Is(err, errCrash) {
			t.Fatalf("step %d (%s): run did not stop: %v", n, steps[n-1], err)
		}
		w, _ := warehouse.OpenWarehouse(wh, true)
		gen, _ := w.CurrentDir()
		afterSwitch := n > indexOf(steps, "commit:switch")
		if (gen != "") != afterSwitch {
			t.Fatalf("step %d (%s): committed generation %q after the crash", n, steps[n-1], gen)
		}
		if err := crashRun(env, wh, nil); err != nil {
			t.Fatalf("step %d (%s): the run after the crash: %v", n, steps[n-1], err)
		}
		sameSnapshot(t, fmt.Sprintf("crash at step %d (%s)", n, steps[n-1]), snapshot(t, wh), want)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i + 1
		}
	}
	return -1
}

// TestSIGKILLAtRandomMoments kills a real `cpi run` at seeded random
// moments; after each kill every table a reader can see must be complete,
// and a normal run must finish the work byte-identically.
func TestSIGKILLAtRandomMoments(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "cpi")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/cpi").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	inbox, _ := filepath.Abs(filepath.Join("..", "testdata", "synth"))
	run := func(wh string) *exec.Cmd {
		return exec.Command(bin, "run", "--warehouse", wh, "--inbox", inbox, "--quiet")
	}
	ref := filepath.Join(t.TempDir(), "ref")
	start := time.Now()
	if out, err := run(ref).CombinedOutput(); err != nil {
		t.Fatalf("reference run: %v\n%s", err, out)
	}
	full := time.Since(start)
	want := snapshot(t, ref)
	rng := rand.New(rand.NewPCG(20181, 6))
	killed := 0
	for i := 0; i < *killRuns; i++ {
		wh := filepath.Join(t.TempDir(), fmt.Sprintf("k%d", i))
		cmd := run(wh)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(full))))
		if cmd.Process.Signal(syscall.SIGKILL) == nil {
			killed++
		}
		cmd.Wait()
		if _, err := os.Stat(filepath.Join(wh, "current")); err == nil {
			readerSeesWholeTables(t, wh)
		}
		if out, err := run(wh).CombinedOutput(); err != nil {
			t.Fatalf("kill %d: the run after: %v\n%s", i, err, out)
		}
		sameSnapshot(t, fmt.Sprintf("kill %d", i), snapshot(t, wh), want)
	}
	t.Logf("%d runs killed at random moments within %v", killed, full)
}

// readerSeesWholeTables reads every table file a reader can see.
func readerSeesWholeTables(t *testing.T, wh string) {
	t.Helper()
	env := ingestTestEnv(t)
	for _, name := range env.Study.Tables.Names() {
		err := warehouse.ScanTable(context.Background(), wh, name, func(rec arrow.RecordBatch) error { return nil })
		if err != nil {
			t.Errorf("a reader of %s sees a broken table: %v", name, err)
		}
	}
}
