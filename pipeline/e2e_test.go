package pipeline

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/synth"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// e2eIngestBundled ingests the committed synthetic study into a new
// warehouse and returns its folder and committed generation.
func e2eIngestBundled(t *testing.T, env warehouse.Env) (string, string, *warehouse.Summary) {
	t.Helper()
	wh := filepath.Join(t.TempDir(), "w")
	sum, err := RunStages(context.Background(), env, wh, "ingest", RunOptions{Create: true}, ingest.Ingest([]string{filepath.Join("..", "testdata", "synth")}))
	if err != nil {
		t.Fatalf("ingest of the bundled study: %v", err)
	}
	w, _ := warehouse.OpenWarehouse(wh, false)
	gen, _ := w.CurrentDir()
	return wh, gen, sum
}

// TestIngestBundledStudy ingests every dialect of the bundled synthetic study
// and checks the tables against the generator's own rows.
func TestIngestBundledStudy(t *testing.T) {
	env := ingestTestEnv(t)
	wh, gen, sum := e2eIngestBundled(t, env)
	if sum.FilesNew != 10 || sum.FilesQuarantined != 0 || sum.RowsRejected != 0 {
		t.Errorf("summary %+v: want 10 files, none quarantined, no rows rejected", sum)
	}
	l, err := warehouse.ReadLedger(gen)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range l.Files {
		if f.RowsRead != f.RowsAccepted+f.RowsRejected {
			t.Errorf("%s: rows_read %d != %d + %d", f.Name, f.RowsRead, f.RowsAccepted, f.RowsRejected)
		}
		if f.Status != warehouse.StatusCurrent || f.Trust == "" || f.Kind == "" || f.ExportDate != "2019-03-29" {
			t.Errorf("%s: %+v", f.Name, f)
		}
	}
	rows, dated, items := checkResponsesAgainstGenerator(t, env, wh, synth.SynthOptions{Seed: 1})
	if got := len(ingestTestStrings(t, wh, "participants", "study_id")); got != 159 {
		t.Errorf("participants %d, 159 expected", got)
	}
	var read int64
	for _, f := range l.Files {
		if f.Kind == schemas.KindParticipants {
			read += f.RowsRead
		}
	}
	if read != int64(rows) {
		t.Errorf("participant rows read %d, generator wrote %d", read, rows)
	}
	if n := checkTablesIndependently(t, gen, env.Study.Tables.Names()); n < 15 {
		t.Errorf("checked %d files independently", n)
	}
	t.Logf("bundled study: %d participant rows, %d dated interviews, %d responses", rows, dated, items)
}

// checkResponsesAgainstGenerator compares every row of the responses table
// in warehouse wh with what the generator wrote with opts: the same rows,
// every answer the same. It returns the generator's participant rows,
// dated interviews and items asked.
func checkResponsesAgainstGenerator(t *testing.T, env warehouse.Env, wh string, opts synth.SynthOptions) (rows, dated, items int) {
	t.Helper()
	// What the generator wrote, counted from its own rows.
	participants := map[string]bool{}
	answers := map[string]int32{} // study_id|wave|item → value, answered items only
	err := synth.Synthesize(context.Background(), env.Study, opts, func(trust string, r *synth.SynthInterview) error {
		rows++
		sid := trust + "-" + r.ParticipantID
		participants[sid] = true
		if !r.Interviewed() {
			return nil
		}
		dated++
		for i, name := range r.ItemNames {
			field := name
			in := instrumentOfItem(env.Study, field)
			if in.AskedAt(r.Wave) {
				items++
			}
			if r.Items[i].Valid {
				answers[sid+"|"+r.Wave+"|"+name] = r.Items[i].Value
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(ingestTestStrings(t, wh, "participants", "study_id")); got != len(participants) {
		t.Errorf("participants %d, generator %d", got, len(participants))
	}
	sids := ingestTestStrings(t, wh, "responses", "study_id")
	waves := ingestTestStrings(t, wh, "responses", "wave")
	itemCol := ingestTestStrings(t, wh, "responses", "item")
	vals, valid := testColumn(t, wh, "responses", "value", func(a arrow.Array, i int) int32 { return a.(*array.Int32).Value(i) })
	if len(sids) != items {
		t.Fatalf("responses %d rows, generator %d items asked at dated interviews", len(sids), items)
	}
	matched := 0
	for i := range sids {
		want, answered := answers[sids[i]+"|"+waves[i]+"|"+itemCol[i]]
		if answered != valid[i] || (answered && want != vals[i]) {
			t.Fatalf("responses row %d (%s %s %s): value %d valid %v, generator %d answered %v", i, sids[i], waves[i], itemCol[i], vals[i], valid[i], want, answered)
		}
		if answered {
			matched++
		}
	}
	if matched != len(answers) {
		t.Errorf("%d answers in responses, generator %d", matched, len(answers))
	}
	return rows, dated, items
}

func instrumentOfItem(s *schemas.Study, item string) *schemas.Instrument {
	for _, in := range s.Instruments {
		if _, ok := in.Item(item); ok {
			return in
		}
	}
	return nil
}

// TestDuckDBReadsTables has DuckDB read every table with one call and checks
// each column's type against tables.yaml (DESIGN §7).
func TestDuckDBReadsTables(t *testing.T) {
	script := filepath.Join("..", "scripts", "duckdb", "describe_tables.mjs")
	if _, err := os.Stat(filepath.Join("..", "scripts", "duckdb", "node_modules", "@duckdb", "node-api")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("DuckDB's Node package is not installed (.ci/run installs it)")
		}
		t.Skip("DuckDB's Node package is not installed: cd scripts/duckdb && npm ci")
	}
	env := ingestTestEnv(t)
	wh, gen, _ := e2eIngestBundled(t, env)
	out, err := exec.Command("node", script, wh).Output()
	if err != nil {
		t.Fatalf("duckdb: %v", err)
	}
	var got map[string]struct {
		Columns map[string]string `json:"columns"`
		Rows    int64             `json:"rows"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("duckdb output: %v", err)
	}
	duckType := map[string]string{"string": "VARCHAR", "int32": "INTEGER", "int64": "BIGINT", "double": "DOUBLE",
		"bool": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP WITH TIME ZONE"}
	for _, name := range env.Study.Tables.Names() {
		files, _ := warehouse.TableFiles(gen, name)
		if len(files) == 0 {
			continue
		}
		tb := env.Study.Tables.Table(name)
		g, ok := got[name]
		if !ok {
			t.Errorf("DuckDB did not read %s", name)
			continue
		}
		for _, c := range tb.Columns {
			if g.Columns[c.Name] != duckType[c.Type] {
				t.Errorf("%s.%s: DuckDB type %q, want %q", name, c.Name, g.Columns[c.Name], duckType[c.Type])
			}
		}
		if len(g.Columns) != len(tb.Columns) {
			t.Errorf("%s: DuckDB sees columns %v", name, keys(g.Columns))
		}
	}
	if got["participants"].Rows != 159 {
		t.Errorf("DuckDB counts %d participants, want 159", got["participants"].Rows)
	}
}

func keys(m map[string]string) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return strings.Join(out, " ")
}
