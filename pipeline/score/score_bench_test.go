package score

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// BenchmarkScoreMillion scores a responses table of a million
// participant-waves (half a million participants at baseline and
// follow-up, spread over the five trusts, every instrument of the default
// study, 5% of answers blank: about 61 million rows). Setup writes the
// table into a temporary warehouse and is not timed. CPI_BENCH_PW sets
// another number of participant-waves; -short uses 100,000.
//
//	/usr/bin/time -v go test -run XXX -bench ScoreMillion -benchtime 1x ./pipeline/
func BenchmarkScoreMillion(b *testing.B) {
	pw := 1_000_000
	if testing.Short() {
		pw = 100_000
	}
	if s := os.Getenv("CPI_BENCH_PW"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			b.Fatalf("CPI_BENCH_PW=%q", s)
		}
		pw = n
	}
	study, err := schemas.Default()
	if err != nil {
		b.Fatal(err)
	}
	env := warehouse.Env{Study: study, Version: "bench"}
	w, err := warehouse.OpenWarehouse(b.TempDir(), true)
	if err != nil {
		b.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		b.Fatal(err)
	}
	rows := scoreBenchWriteResponses(b, env, tx, pw/2)
	b.ReportMetric(float64(rows), "response_rows")
	runtime.GC()
	stop := scoreBenchPeakHeap()
	b.ResetTimer()
	for b.Loop() {
		if err := Score(context.Background(), env, tx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(stop())/(1<<20), "peak_heap_MiB")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(pw)*1e6, "ns/million_pw")
}

// scoreBenchPeakHeap samples the live heap (objects, including garbage not
// yet collected) every 5 ms until the returned function is called, which
// gives the peak.
func scoreBenchPeakHeap() func() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// scoreBenchWriteResponses writes participants × (baseline, follow-up)
// interviews as the responses table, round-robin over the trusts, with
// the participants table, and returns the number of responses rows.
func scoreBenchWriteResponses(b *testing.B, env warehouse.Env, tx *warehouse.Tx, participants int) int64 {
	b.Helper()
	s := env.Study
	tb := s.Tables.Table("responses")
	schema := warehouse.ArrowSchema(env, "responses", nil)
	var c [10]int
	for i, n := range []string{"study_id", "wave", "instrument", "item", "trust", "team", "arm", "value", "source_sha256", "source_line"} {
		c[i] = warehouse.ColIndex(tb, n)
	}
	// Instruments and their items in key (byte) order.
	type inst struct {
		name  string
		items []string
		min   []int32
		max   []int32
		asked []bool
	}
	var insts []inst
	for _, in := range s.Instruments {
		x := inst{name: in.Name}
		items := slices.Clone(in.Items)
		slices.SortFunc(items, func(a, b schemas.Item) int { return strings.Compare(a.Name, b.Name) })
		for _, it := range items {
			x.items = append(x.items, it.Name)
			x.min = append(x.min, int32(it.Min))
			x.max = append(x.max, int32(it.Max))
		}
		for _, wv := range s.Waves {
			x.asked = append(x.asked, in.AskedAt(wv))
		}
		insts = append(insts, x)
	}
	slices.SortFunc(insts, func(a, b inst) int { return strings.Compare(a.name, b.name) })
	r := rand.New(rand.NewPCG(1, 2))
	sha := fmt.Sprintf("%064x", 42)
	trusts := s.TrustCodes()
	var total int64
	for ti, trust := range trusts {
		tf, err := tx.CreateTableFile(schema, "responses", "trust", trust, "data")
		if err != nil {
			b.Fatal(err)
		}
		rw := warehouse.NewRowWriter(schema, tf)
		teams := map[string]string{}
		for p := ti; p < participants; p += len(trusts) {
			id := fmt.Sprintf("%s-p%08d", trust, p)
			team := trust + "-01"
			if p%2 == 1 {
				team = trust + "-02"
			}
			teams[id] = team
			tm, _ := s.Team(team)
			for wi, wave := range s.Waves { // baseline < followup in byte order too
				for _, in := range insts {
					if !in.asked[wi] {
						continue
					}
					for k, item := range in.items {
						rw.Str(c[0], id)
						rw.Str(c[1], wave)
						rw.Str(c[2], in.name)
						rw.Str(c[3], item)
						rw.Str(c[4], trust)
						rw.Str(c[5], team)
						rw.Str(c[6], tm.Arm)
						v := in.min[k] + r.Int32N(in.max[k]-in.min[k]+1)
						rw.Int32(c[7], v, r.IntN(20) != 0)
						rw.Str(c[8], sha)
						rw.Int32(c[9], int32(p+2), true)
						if err := rw.RowDone(); err != nil {
							b.Fatal(err)
						}
						total++
					}
				}
			}
		}
		if err := rw.Close(); err != nil {
			b.Fatal(err)
		}
		scoreTestWriteTeams(b, env, tx, trust, teams)
	}
	return total
}
