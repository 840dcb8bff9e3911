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
// the package and of its reports (study, fidelity) with go/parser: of the
// module's packages, each file imports only warehouse, schemas, the chart
// drawing and, in a report, this package (so no stage: compare, fidelity,
// score, ingest, synth; nor stats, nor the root; nor one report another).
// What a report shows is in a table first; the report never fits a model.
func TestReportImportsNoStage(t *testing.T) {
	const mod = "github.com/connectingpeople/cpi/"
	shared := []string{"pipeline/warehouse", "schemas"}
	reports := []string{"pipeline/report", "pipeline/report/chart", "pipeline/warehouse", "schemas"}
	for _, dir := range []struct {
		glob    string
		allowed []string
	}{{"*.go", shared}, {"study/*.go", reports}, {"fidelity/*.go", reports}} {
		files, err := filepath.Glob(dir.glob)
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
				if !slices.Contains(dir.allowed, rel) {
					t.Errorf("%s imports %s: it may import %s only", f, path, strings.Join(dir.allowed, ", "))
				}
			}
		}
		if checked < 2 {
			t.Fatalf("%s: checked %d files: is the test running in the package's folder?", dir.glob, checked)
		}
	}
}
