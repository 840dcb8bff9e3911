package report

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestReportImportsNoStage reads the import set of every non-test file of
// the package with go/parser: of the module's packages, each file imports
// only warehouse, schemas and its own chart drawing (so no stage: compare, fidelity, score,
// ingest, synth; nor stats, nor the root). What a report shows is in a
// table first; the report never fits a model.
func TestReportImportsNoStage(t *testing.T) {
	const mod = "github.com/connectingpeople/cpi/"
	allowed := []string{"pipeline/report/chart", "pipeline/warehouse", "schemas"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var checked int
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range parsed.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			rel, ours := strings.CutPrefix(path, mod)
			if !ours {
				continue
			}
			if !slices.Contains(allowed, rel) {
				t.Errorf("%s imports %s: the report reads %s only", f, path, strings.Join(allowed, " and "))
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked %d files: is the test running in the package's folder?", checked)
	}
}
