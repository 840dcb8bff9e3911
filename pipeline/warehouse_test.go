package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// checkPathElem lets plain names through and nothing that could leave the
// folder it is joined to.
func TestCheckPathElem(t *testing.T) {
	for s, ok := range map[string]bool{
		"TEWV-01": true, "trust=TEWV": true, "fidelity-AWP-02.html": true, "a..b": true,
		"": false, ".": false, "..": false, "../x": false, "TEWV-01/../../x": false,
		`a\b`: false, "a\x00b": false, "a\nb": false, strings.Repeat("x", 256): false,
	} {
		if err := warehouse.CheckPathElem("code", s); (err == nil) != ok {
			t.Errorf("%q: err = %v, want ok %v", s, err, ok)
		}
	}
}

// The warehouse's path builders refuse a code that would leave their folder,
// whatever the study definition holds: nothing is written.
func TestPathBuildersRefuseEscapes(t *testing.T) {
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	env := warehouse.Env{Study: s, Version: "test"}
	root := t.TempDir()
	w, err := warehouse.OpenWarehouse(filepath.Join(root, "w"), true)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	schema := warehouse.ArrowSchema(env, "participants", nil)
	for _, c := range [][3]string{{"participants", "../../../../x", "data"}, {"participants", "TEWV", "../x"}, {"../x", "TEWV", "data"}} {
		if tf, err := tx.CreateTableFile(schema, c[0], "trust", c[1], c[2]); err == nil {
			tf.Abort()
			t.Errorf("CreateTableFile(%q, trust=%q, %q) accepted", c[0], c[1], c[2])
		}
	}
	if err := ingest.RefreshProblems(context.Background(), env, tx, "../../x"); err == nil {
		t.Error("problem list of trust ../../x written")
	}
	var stray []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, inTx := strings.CutPrefix(p, tx.Dir+string(filepath.Separator))
		if !inTx && filepath.Base(p) != ".lock" || inTx && strings.Contains(rel, "x") {
			stray = append(stray, p)
		}
		return nil
	})
	if len(stray) > 0 {
		t.Errorf("written: %v", stray)
	}
}
