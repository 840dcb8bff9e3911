package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/pipeline/compare"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// cancelAfter is a log handler that cancels when the stage has logged
// its n-th fitted outcome: a cancellation that arrives mid-way, while the
// summaries beside the analyses may still run.
type cancelAfter struct {
	left   atomic.Int64
	cancel context.CancelFunc
}

func (h *cancelAfter) Enabled(context.Context, slog.Level) bool { return true }
func (h *cancelAfter) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *cancelAfter) WithGroup(string) slog.Handler            { return h }
func (h *cancelAfter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "compare" && h.left.Add(-1) == 0 {
		h.cancel()
	}
	return nil
}

// compareSideTestTx writes the reference participants, scores,
// interviews and fidelity into a new transaction.
func compareSideTestTx(t *testing.T, env warehouse.Env) *warehouse.Tx {
	t.Helper()
	ps, high := compareTestAncova(t)
	tx := testTx(t)
	compareTestWrite(t, env, tx, ps)
	compareTestWriteFidelity(t, env, tx, compareTestBands(high))
	return tx
}

// waitGoroutines fails when more goroutines run than before, after a
// moment for those ending to end.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	for range 200 {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d goroutines after the stage, %d before", runtime.NumGoroutine(), before)
}

// TestCompareSummariesFail: the summaries made beside the analyses
// (service_use from service_sums, the flow's pass over interviews) stop
// the stage with their own error, not a cancellation, when their table
// cannot be read; and no goroutine outlives the stage.
func TestCompareSummariesFail(t *testing.T) {
	env := compareTestEnv(t)
	before := runtime.NumGoroutine()
	for _, c := range []struct{ table, want string }{
		{"service_sums", "compare: service use: read table service_sums"},
		{"interviews", "compare: flow: "},
	} {
		tx := compareSideTestTx(t, env)
		dir := filepath.Join(tx.Dir, "tables", c.table, "trust=TEWV")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "zz.parquet"), []byte("not a parquet file"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := compare.Compare(context.Background(), env, tx)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || errors.Is(err, context.Canceled) {
			t.Errorf("unreadable %s: error %v, want %q...", c.table, err, c.want)
		}
	}
	waitGoroutines(t, before)
}

// TestCompareCancelledMidway: a context cancelled while the stage fits
// its outcomes (after the 1st, 4th or 9th of 10) ends it with
// context.Canceled, every goroutine joined; one never cancelled finishes.
func TestCompareCancelledMidway(t *testing.T) {
	env := compareTestEnv(t)
	before := runtime.NumGoroutine()
	for _, n := range []int64{1, 4, 9, 11} {
		tx := compareSideTestTx(t, env)
		ctx, cancel := context.WithCancel(context.Background())
		h := &cancelAfter{cancel: cancel}
		h.left.Store(n)
		e := env
		e.Log = slog.New(h)
		err := compare.Compare(ctx, e, tx)
		cancel()
		if n > int64(len(env.Study.Analysis.Outcomes)) {
			if err != nil {
				t.Errorf("never cancelled: %v", err)
			}
			continue
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled after outcome %d: error %v, want context.Canceled", n, err)
		}
	}
	waitGoroutines(t, before)
}

// testTx opens a new warehouse in a temporary folder and begins a
// transaction on it.
func testTx(t *testing.T) *warehouse.Tx {
	t.Helper()
	w, err := warehouse.OpenWarehouse(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}
