package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/connectingpeople/cpi/pipeline/compare"
	"github.com/connectingpeople/cpi/pipeline/synth"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// tableText reads every row of a table of the warehouse at wh as text, the
// columns in drop left out, in file order.
func tableText(t *testing.T, wh, table string, drop ...string) (cols []string, rows []string) {
	t.Helper()
	w, err := warehouse.OpenWarehouse(wh, false)
	if err != nil {
		t.Fatal(err)
	}
	gen, _ := w.CurrentDir()
	err = warehouse.ScanTable(context.Background(), gen, table, func(rec arrow.RecordBatch) error {
		var keep []int
		cols = cols[:0]
		for i, f := range rec.Schema().Fields() {
			if !slices.Contains(drop, f.Name) {
				keep = append(keep, i)
				cols = append(cols, f.Name)
			}
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			var b strings.Builder
			for _, i := range keep {
				a := rec.Column(i)
				if a.IsNull(r) {
					b.WriteString("NULL")
				} else {
					b.WriteString(a.ValueStr(r))
				}
				b.WriteByte('|')
			}
			rows = append(rows, b.String())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", table, err)
	}
	return cols, rows
}

// TestRedcapRoundTrip writes one synthetic study as the trusts' canonical
// exports and as one REDCap records export (plus the same fidelity
// exports), runs the whole pipeline on each, and checks every table is the
// same, row for row, but for responses' source_sha256 (the REDCap parts
// are other bytes than the canonical exports) and ingest_files (names,
// hashes and arrival times). The REDCap export is ingested in one file:
// one part per trust, each current, rows_read = rows_accepted +
// rows_rejected per part, and the parts' rows add up to the REDCap
// export's. For the bundled study and a three-wave study.
func TestRedcapRoundTrip(t *testing.T) {
	for _, file := range []string{"", filepath.Join("..", "testdata", "studies", "three-waves", "study.yaml")} {
		t.Run(fmt.Sprintf("study=%s", filepath.Base(file)), func(t *testing.T) {
			s, err := schemas.Load(file, schemas.KnownAnalyses(compare.Names()...))
			if err != nil {
				t.Fatal(err)
			}
			env := warehouse.Env{Study: s, Version: "test"}
			ctx := context.Background()
			opts := synth.SynthOptions{Seed: 3, Canonical: true}
			canonIn, rcIn := t.TempDir(), t.TempDir()
			if _, err := synth.WriteSynth(ctx, s, opts, canonIn); err != nil {
				t.Fatal(err)
			}
			files, err := synth.WriteRedcapStudy(ctx, s, opts, rcIn)
			if err != nil {
				t.Fatal(err)
			}
			whA, whB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
			if _, err := RunStages(ctx, env, whA, "run", RunOptions{Create: true}, RunAll(canonIn)...); err != nil {
				t.Fatal(err)
			}
			sum, err := RunStages(ctx, env, whB, "run", RunOptions{Create: true}, RunAll(rcIn)...)
			if err != nil {
				t.Fatal(err)
			}
			if sum.FilesQuarantined != 0 || sum.RowsRejected != 0 {
				t.Fatalf("REDCap run: %d quarantined, %d rows rejected", sum.FilesQuarantined, sum.RowsRejected)
			}
			w, _ := warehouse.OpenWarehouse(whB, false)
			gen, _ := w.CurrentDir()
			l, err := warehouse.ReadLedger(gen)
			if err != nil {
				t.Fatal(err)
			}
			parts := map[string]int64{}
			var read int64
			for _, f := range l.Files {
				if f.Kind != schemas.KindParticipants {
					continue
				}
				if f.RowsRead != f.RowsAccepted+f.RowsRejected || f.Status != warehouse.StatusCurrent {
					t.Errorf("part %s: %+v", f.Name, f)
				}
				parts[f.Trust] += f.RowsRead
				read += f.RowsRead
			}
			if len(parts) != len(s.Trusts) || read != files[0].Rows {
				t.Fatalf("parts %v read %d rows, the REDCap export has %d", parts, read, files[0].Rows)
			}
			tables := s.Tables.Names()
			compared := 0
			for _, tb := range tables {
				if tb == "ingest_files" {
					continue
				}
				if _, err := os.Stat(filepath.Join(gen, "tables", tb)); err != nil {
					continue // a table this study does not write
				}
				ca, ra := tableText(t, whA, tb, "source_sha256")
				cb, rb := tableText(t, whB, tb, "source_sha256")
				if !slices.Equal(ca, cb) {
					t.Fatalf("%s: columns %v and %v", tb, ca, cb)
				}
				if len(ra) != len(rb) {
					t.Fatalf("%s: %d rows from the canonical exports, %d from REDCap", tb, len(ra), len(rb))
				}
				for i := range ra {
					if ra[i] != rb[i] {
						t.Fatalf("%s row %d differs:\ncanonical %s\nREDCap    %s", tb, i, ra[i], rb[i])
					}
				}
				compared++
			}
			if compared < 12 {
				t.Fatalf("compared %d tables of %v", compared, tables)
			}
			_, resp := tableText(t, whB, "responses")
			_, parts0 := tableText(t, whB, "participants")
			t.Logf("%d tables equal; %d responses, %d participants; parts %v", compared, len(resp), len(parts0), parts)
		})
	}
}
