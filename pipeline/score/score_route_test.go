package score

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// Reading responses from their pages (readCodes, Score's route) gives
// byte for byte the scores and reliability tables of reading them through
// pqarrow (readArrow), on responses of several row groups per file with
// blank answers among them.
func TestScoreReadRoutesAgree(t *testing.T) {
	env := scoreTestEnv(t)
	s := env.Study
	rng := rand.New(rand.NewPCG(14, 15))
	var rows []scoreTestRow
	blanks := 0
	for _, trust := range []string{"AWP", "BDCT"} {
		n := 1500 // AWP's file: several row groups of warehouse.BatchRows
		if trust == "BDCT" {
			n = 40
		}
		for p := range n {
			id := fmt.Sprintf("%s-%05d", trust, p)
			for wi, wave := range s.Waves {
				if wi > 0 && rng.IntN(5) == 0 {
					continue // lost to follow-up
				}
				for _, in := range s.Instruments {
					if !in.AskedAt(wave) {
						continue
					}
					for _, it := range in.Items {
						v := int32(it.Min + rng.IntN(it.Max-it.Min+1))
						if rng.IntN(12) == 0 {
							v = scoreTestBlank
							blanks++
						}
						rows = append(rows, scoreTestRow{id: id, wave: wave, inst: in.Name, item: it.Name, value: v})
					}
				}
			}
		}
	}
	dirs := map[bool]string{}
	for _, arrowRead := range []bool{true, false} {
		w, err := warehouse.OpenWarehouse(t.TempDir(), true)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := w.Begin(nil)
		if err != nil {
			t.Fatal(err)
		}
		scoreTestWriteResponses(t, env, tx, rows, false)
		if err := score(context.Background(), env, tx, scoreRoute(arrowRead)); err != nil {
			t.Fatalf("arrowRead %v: %v", arrowRead, err)
		}
		dirs[arrowRead] = tx.Dir
	}

	// The responses really span several row groups, and hold nulls.
	resp, err := warehouse.TableFiles(dirs[false], "responses")
	if err != nil {
		t.Fatal(err)
	}
	groups := 0
	for _, f := range resp {
		pf, err := file.OpenParquetFile(f, false)
		if err != nil {
			t.Fatal(err)
		}
		groups = max(groups, pf.NumRowGroups())
		pf.Close()
	}
	if groups < 3 || blanks == 0 {
		t.Fatalf("%d row groups in the largest file, %d blanks: the test needs several and some", groups, blanks)
	}

	for _, table := range []string{"scores", "reliability"} {
		files, err := warehouse.TableFiles(dirs[false], table)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no %s files", table)
		}
		for _, f := range files {
			rel, err := filepath.Rel(dirs[false], f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(dirs[true], rel))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs between the page reader and pqarrow", rel)
			}
		}
	}
	// And the scores are there: one row set per participant-wave read.
	got := scoreTestReadScores(t, dirs[false])
	ids := map[string]bool{}
	for _, r := range got {
		id, _, _ := bytes.Cut([]byte(r.key), []byte(" "))
		ids[string(id)] = true
	}
	if len(ids) != 1540 {
		t.Errorf("scores of %d participants, want 1540", len(ids))
	}
}

// A responses file in another trust's partition fails the stage on both
// reading routes, from the trust column's statistics, with the same
// message.
func TestScorePartitionOfAnotherTrust(t *testing.T) {
	env := scoreTestEnv(t)
	msgs := map[bool]string{}
	for _, arrowRead := range []bool{true, false} {
		w, err := warehouse.OpenWarehouse(t.TempDir(), true)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := w.Begin(nil)
		if err != nil {
			t.Fatal(err)
		}
		scoreTestWriteResponses(t, env, tx, scoreTestAnswers(t, env.Study, "AWP-a", "baseline", "ucla3", 1, 2, 1), false)
		root := filepath.Join(tx.Dir, "tables", "responses")
		if err := os.Rename(filepath.Join(root, "trust=AWP"), filepath.Join(root, "trust=BDCT")); err != nil {
			t.Fatal(err)
		}
		err = score(context.Background(), env, tx, scoreRoute(arrowRead))
		if err == nil || !strings.Contains(err.Error(), "score trust BDCT: read responses: ") || !strings.Contains(err.Error(), "rows of another trust") {
			t.Fatalf("arrowRead %v: got %v", arrowRead, err)
		}
		msgs[arrowRead] = err.Error()
	}
	if msgs[true] != msgs[false] {
		t.Errorf("pqarrow: %s; pages: %s", msgs[true], msgs[false])
	}
}

// The stage's failures on bad responses read the same on both routes:
// unsorted, a value out of range, an undefined wave, a participant the
// participants table lacks.
func TestScoreErrorsBothRoutes(t *testing.T) {
	env := scoreTestEnv(t)
	ok := scoreTestAnswers(t, env.Study, "AWP-b", "baseline", "ucla3", 1, 2, 1)
	cases := map[string][]scoreTestRow{
		"not sorted by study_id":              append(slices.Clone(ok), scoreTestAnswers(t, env.Study, "AWP-a", "baseline", "ucla3", 1, 2, 1)...),
		"outside its range":                   scoreTestAnswers(t, env.Study, "AWP-a", "baseline", "ucla3", 1, 4, 1),
		"wave the study":                      scoreTestAnswers(t, env.Study, "AWP-a", "month9", "ucla3", 1, 2, 1),
		"missing from the participants table": ok,
	}
	for want, rows := range cases {
		msgs := map[bool]string{}
		for _, arrowRead := range []bool{true, false} {
			w, _ := warehouse.OpenWarehouse(t.TempDir(), true)
			tx, _ := w.Begin(nil)
			scoreTestWriteResponses(t, env, tx, rows, true)
			if want == "missing from the participants table" {
				scoreTestWriteParticipants(t, env, tx, "AWP", scoreTestAnswers(t, env.Study, "AWP-c", "baseline", "ucla3", 1, 2, 1))
			}
			err := score(context.Background(), env, tx, scoreRoute(arrowRead))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("%s (arrowRead %v): got %v", want, arrowRead, err)
			}
			msgs[arrowRead] = err.Error()
		}
		if msgs[true] != msgs[false] {
			t.Errorf("%s: pqarrow: %s; pages: %s", want, msgs[true], msgs[false])
		}
	}
}

// scoreRoute is the reading route of the tests' score runs: through
// pqarrow (readArrow, below: the route Score used before it read pages)
// or from the pages (readCodes, Score's).
func scoreRoute(arrowRead bool) responseReader {
	if arrowRead {
		return (*scoreJob).readArrow
	}
	return (*scoreJob).readCodes
}

// readArrow reads the responses of files through pqarrow (a
// warehouse.ColumnScan), study_id, wave and item as dictionaries.
func (j *scoreJob) readArrow(ctx context.Context, rw *warehouse.RowWriter, files []string) error {
	scan := warehouse.NewColumnScan(ctx, files, scoreResponseColumns, scoreResponseColumns[0:3])
	scan.Check = func(pf *file.Reader) error { return checkPartitionStats(pf, "trust", j.trust) }
	// Nothing of a batch outlives it: the participant's id is
	// cloned (participant), waves and items become codes.
	scan.ReuseMemory()
	defer scan.Close()
	for {
		ok, err := scan.Next()
		if err != nil || !ok {
			return err
		}
		if err := j.batch(rw, scan.Cols); err != nil {
			return err
		}
		j.env.Task.Add(int64(scan.Cols[0].Len()))
	}
}

// batch takes one record batch of responses read by readArrow. The wave
// and item columns are read dictionary-encoded and mapped to codes once
// per distinct value (see scoreCodes); study_id is read as a dictionary.
func (j *scoreJob) batch(rw *warehouse.RowWriter, cols []arrow.Array) error {
	sid, err := scoreStringColumn(cols[0])
	if err != nil {
		return fmt.Errorf("responses column study_id: %w", err)
	}
	val, ok := cols[3].(*array.Int32)
	if !ok {
		return errors.New("responses column value is not an int32")
	}
	p := j.plan
	var wave, item warehouse.ScoreCodes
	if err := wave.Init(cols[1], func(s string) int { return scoreMapIndex(p.waveIdx, s) }); err != nil {
		return fmt.Errorf("responses column wave: %w", err)
	}
	if err := item.Init(cols[2], func(s string) int { return scoreMapIndex(p.itemByName, s) }); err != nil {
		return fmt.Errorf("responses column item: %w", err)
	}
	// study_id read as a dictionary: a row whose index repeats the row
	// before's is the same participant, without comparing strings.
	var sidIdx []int32
	if d, ok := cols[0].(*array.Dictionary); ok && d.NullN() == 0 {
		if ix, ok := d.Indices().(*array.Int32); ok {
			sidIdx = ix.Int32Values()
		}
	}
	for r := 0; r < cols[0].Len(); r++ {
		if sidIdx == nil || r == 0 || sidIdx[r] != sidIdx[r-1] {
			if err := j.participant(rw, sid(r)); err != nil {
				return err
			}
		}
		if err := j.answer(wave.At(r), item.At(r), val.Value(r), val.IsValid(r)); err != nil {
			return err
		}
	}
	return nil
}

// scoreResponseColumns are the responses columns Score reads: the
// instrument follows from the item (item names are unique in a study),
// the trust from the partition (checked against the column's statistics),
// and team and arm from the participants table, so the long table's other
// columns are never decoded.
var scoreResponseColumns = []string{"study_id", "wave", "item", "value"}
