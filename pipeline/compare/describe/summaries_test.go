package describe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/schemas"
)

// TestStudyIDs: ids appended out of order come back sorted, the
// permutation says where each came from, Find gives every id's row and
// −1 for one absent (before the first, between two, after the last); ids
// already in order need no permutation; a cursor finds what Find finds.
func TestStudyIDs(t *testing.T) {
	in := []string{"T9-000002", "T9-000010", "T1-000001", "T1-000003", "T10-00001", ""}
	for k := range 100 { // several blocks, ids sharing prefixes of every length
		in = append(in, fmt.Sprintf("T%d-%0*d", 9-k%3, 1+k%7, 37*k%101), fmt.Sprintf("X%s", strings.Repeat("y", k)))
	}
	var ids StudyIDs
	for _, id := range in {
		ids.Append(id)
	}
	perm := ids.Sort()
	want := slices.Clone(in)
	slices.Sort(want)
	if ids.Len() != len(want) || perm == nil {
		t.Fatalf("%d ids, permutation %v", ids.Len(), perm)
	}
	for k, w := range want {
		if ids.At(k) != w || in[perm[k]] != w {
			t.Errorf("row %d: %q (from %d: %q), want %q", k, ids.At(k), perm[k], in[perm[k]], w)
		}
		if got := ids.Find(w); got != k {
			t.Errorf("Find(%q) = %d, want %d", w, got, k)
		}
	}
	for _, absent := range []string{" ", "T1-000002", "T10", "T9-000011", "U", "T9-", "Xyz", "Z"} {
		if got := ids.Find(absent); got != -1 {
			t.Errorf("Find(%q) = %d, want -1", absent, got)
		}
	}
	// A cursor gives Find's answers for ids in order, out of order, absent
	// and repeated.
	cur := ids.Cursor()
	probes := append(slices.Clone(want), " ", "T1-000002", "T10", "T9-000011", "U", "T9-", "Xyz", "Z")
	probes = append(probes, want[len(want)-1], want[0], want[3], want[3], want[40], want[2])
	for k := range want {
		probes = append(probes, want[(k*37)%len(want)])
	}
	for _, id := range probes {
		if got, w := cur.Find(id), ids.Find(id); got != w {
			t.Errorf("cursor: Find(%q) = %d, want %d", id, got, w)
		}
	}
	var sorted StudyIDs
	for _, id := range want {
		sorted.Append(id)
	}
	if p := sorted.Sort(); p != nil {
		t.Errorf("ids in order: permutation %v, want none", p)
	}
	for k, w := range want {
		if sorted.Find(w) != k {
			t.Errorf("in order: Find(%q) = %d, want %d", w, sorted.Find(w), k)
		}
	}
}

// pendingTestColumns are the summaries' inputs over the warehouse of
// serviceUseTestWrite with its interviews: no outcome values.
func pendingTestColumns(t *testing.T, s *schemas.Study, dir string) *Columns {
	t.Helper()
	c := serviceUseTestColumns(t, s, dir)
	c.Values = func(o, w int) (Values, bool) { return nil, false }
	return c
}

// TestPendingSummaries: the summaries made on their own goroutine equal
// those made one by one (service_use's rows, the flow's counts,
// descriptives); a failure (an unreadable
// service_sums file, an unreadable interviews file) is returned by Wait
// and handed to fail, before the columns are handed over or never; a cancelled context
// ends them with its error; Stop without the columns (the reading
// failed) returns, and no goroutine outlives them.
func TestPendingSummaries(t *testing.T) {
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	dir := serviceUseTestWrite(t, s, 300)
	c := pendingTestColumns(t, s, dir)
	wantSU, err := ServiceUse(context.Background(), s, dir)
	if err != nil {
		t.Fatal(err)
	}
	wantFlow, err := CountFlow(context.Background(), s, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(wantSU) == 0 || len(wantFlow) == 0 {
		t.Fatalf("%d service_use rows, %d flow groups", len(wantSU), len(wantFlow))
	}
	before := runtime.NumGoroutine()

	failed := make(chan error, 1)
	fail := func(err error) { failed <- err }
	p := Start(context.Background(), s, dir, fail)
	p.Columns(c)
	sum, err := p.Wait()
	p.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sum.ServiceUse) != fmt.Sprint(wantSU) {
		t.Errorf("service_use:\n%v\nmade one by one:\n%v", sum.ServiceUse, wantSU)
	}
	if !reflect.DeepEqual(sum.Flow, wantFlow) {
		t.Errorf("flow: %v, made one by one %v", sum.Flow, wantFlow)
	}
	if want := Descriptives(s, c); !reflect.DeepEqual(sum.Descriptives, want) {
		t.Errorf("descriptives: %v, want %v", sum.Descriptives, want)
	}
	select {
	case err := <-failed:
		t.Errorf("fail called with %v", err)
	default:
	}

	// An unreadable service_sums file: its error, from Wait and to fail.
	bad := filepath.Join(dir, "tables", "service_sums", "trust=T1", "data.parquet")
	good, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("not a parquet file"), 0o600); err != nil {
		t.Fatal(err)
	}
	p = Start(context.Background(), s, dir, fail)
	p.Columns(c)
	_, err = p.Wait()
	p.Stop()
	if err == nil || !strings.Contains(err.Error(), "service use: read table service_sums") {
		t.Errorf("unreadable service_sums: error %v", err)
	}
	select {
	case f := <-failed:
		if f != err {
			t.Errorf("fail called with %v, Wait gave %v", f, err)
		}
	default:
		t.Error("fail not called")
	}
	if err := os.WriteFile(bad, good, 0o600); err != nil {
		t.Fatal(err)
	}

	// Unreadable interviews fail before the columns are handed over.
	iv := filepath.Join(dir, "tables", "interviews", "trust=T2", "data.parquet")
	if err := os.WriteFile(iv, []byte("PAR1"), 0o600); err != nil {
		t.Fatal(err)
	}
	p = Start(context.Background(), s, dir, fail)
	_, err = p.Wait()
	if err == nil || !strings.HasPrefix(err.Error(), "flow: ") {
		t.Errorf("unreadable interviews: error %v", err)
	}
	p.Columns(c) // after the end: does not block
	p.Stop()
	<-failed

	// Cancelled: the context's error; Stop before the columns.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p = Start(ctx, s, dir, func(error) {})
	if _, err := p.Wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: error %v, want context.Canceled", err)
	}
	p = Start(context.Background(), s, dir, func(error) {})
	p.Stop() // the reading failed: no columns
	for range 100 {
		if runtime.NumGoroutine() <= before {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Stop, %d before", n, before)
	}
}
