package warehouse

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/schemas"
)

// BenchmarkParquetWriteResponses writes 1,000,000 rows of the responses
// table (-short: 100,000) through CreateTableFile and a RowWriter, one file
// per trust as ingest does, into a temporary warehouse: zstd, dictionary
// strings, statistics, row groups of batchRows. The rows are realistic
// interviews sorted by the table's key: every item of the instruments asked
// at each wave for about 8,200 participants (1,640 per trust; 122 rows each)
// spread over the trusts' teams, int32 answers in range with 5% nulls, the
// export's SHA-256 and the source line. Making the rows is not timed.
//
//	go test -run XXX -bench ParquetWriteResponses -benchtime 3x ./pipeline/
func BenchmarkParquetWriteResponses(b *testing.B) {
	rows := 1_000_000
	if testing.Short() {
		rows = 100_000
	}
	study, err := schemas.Default()
	if err != nil {
		b.Fatal(err)
	}
	env := Env{Study: study, Version: "bench"}
	w, err := OpenWarehouse(b.TempDir(), true)
	if err != nil {
		b.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		b.Fatal(err)
	}
	parts := parquetBenchRows(study, rows)
	schema := ArrowSchema(env, "responses", nil)
	tb := study.Tables.Table("responses")
	var c [10]int
	for i, name := range []string{"study_id", "wave", "instrument", "item", "trust", "team", "arm", "value", "source_sha256", "source_line"} {
		c[i] = ColIndex(tb, name)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := os.RemoveAll(tx.Path("tables", "responses")); err != nil {
			b.Fatal(err)
		}
		for _, p := range parts {
			tf, err := tx.CreateTableFile(schema, "responses", "trust", p.trust, "data")
			if err != nil {
				b.Fatal(err)
			}
			rw := NewRowWriter(schema, tf)
			for i := range p.studyID {
				rw.Str(c[0], p.studyID[i])
				rw.Str(c[1], p.wave[i])
				rw.Str(c[2], p.instrument[i])
				rw.Str(c[3], p.item[i])
				rw.Str(c[4], p.trust)
				rw.Str(c[5], p.team[i])
				rw.Str(c[6], p.arm[i])
				rw.Int32(c[7], p.value[i], p.valid[i])
				rw.Str(c[8], p.sha)
				rw.Int32(c[9], p.line[i], true)
				if err := rw.RowDone(); err != nil {
					rw.Abort()
					b.Fatal(err)
				}
			}
			if err := rw.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	var size int64
	err = filepath.WalkDir(tx.Path("tables", "responses"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			size += info.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(size)/(1<<20), "file_MiB")
}

// parquetBenchPart is one trust's responses rows, column by column.
type parquetBenchPart struct {
	trust, sha                                 string
	studyID, wave, instrument, item, team, arm []string
	value, line                                []int32
	valid                                      []bool
}

// parquetBenchRows makes about n responses rows (whole interviews, so a
// few more) over the study's trusts, each trust's rows in key order.
func parquetBenchRows(study *schemas.Study, n int) []parquetBenchPart {
	type inst struct {
		name     string
		items    []schemas.Item
		asked    []bool
		min, max []int32
	}
	var insts []inst
	perParticipant := 0
	for _, in := range study.Instruments {
		x := inst{name: in.Name, items: slices.Clone(in.Items)}
		slices.SortFunc(x.items, func(a, b schemas.Item) int { return strings.Compare(a.Name, b.Name) })
		for _, it := range x.items {
			x.min = append(x.min, int32(it.Min))
			x.max = append(x.max, int32(it.Max))
		}
		for _, wv := range study.Waves {
			asked := in.AskedAt(wv)
			x.asked = append(x.asked, asked)
			if asked {
				perParticipant += len(x.items)
			}
		}
		insts = append(insts, x)
	}
	slices.SortFunc(insts, func(a, b inst) int { return strings.Compare(a.name, b.name) })
	waves := slices.Clone(study.Waves)
	order := make([]int, len(waves)) // waves in byte order, with their index
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(waves[a], waves[b]) })
	trusts := study.TrustCodes()
	perTrust := (n/perParticipant + len(trusts) - 1) / len(trusts)
	r := rand.New(rand.NewPCG(3, 5))
	var parts []parquetBenchPart
	for ti, trust := range trusts {
		var teams []*schemas.Team
		for _, code := range study.TeamCodes() {
			if tm, _ := study.Team(code); tm.Trust == trust {
				teams = append(teams, tm)
			}
		}
		p := parquetBenchPart{trust: trust, sha: fmt.Sprintf("%064x", 1000+ti)}
		for k := range perTrust {
			id := fmt.Sprintf("%s-P%06d", trust, k) // zero-padded: numeric order is byte order
			tm := teams[k%len(teams)]
			for _, wi := range order {
				line := int32(2 + 2*k + wi)
				for _, in := range insts {
					if !in.asked[wi] {
						continue
					}
					for j, it := range in.items {
						p.studyID = append(p.studyID, id)
						p.wave = append(p.wave, waves[wi])
						p.instrument = append(p.instrument, in.name)
						p.item = append(p.item, it.Name)
						p.team = append(p.team, tm.Code)
						p.arm = append(p.arm, tm.Arm)
						p.value = append(p.value, in.min[j]+r.Int32N(in.max[j]-in.min[j]+1))
						p.valid = append(p.valid, r.IntN(20) != 0)
						p.line = append(p.line, line)
					}
				}
			}
		}
		parts = append(parts, p)
	}
	return parts
}
