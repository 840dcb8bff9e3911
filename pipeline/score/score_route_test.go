package score

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
		if err := score(context.Background(), env, tx, arrowRead); err != nil {
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
		err = score(context.Background(), env, tx, arrowRead)
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
			err := score(context.Background(), env, tx, arrowRead)
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
