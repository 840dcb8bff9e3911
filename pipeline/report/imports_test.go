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

// legacyFile is the one file of the package allowed to use a stage or
// stats: what the report cannot yet read from a table (see its comment).
const legacyFile = "legacy_compare.go"

// TestReportImportsNoStage reads the import set of every non-test file of
// the package with go/parser: of the module's packages, each file but
// legacy_compare.go imports only warehouse and schemas (so no stage:
// compare, fidelity, score, ingest, synth; nor stats nor the root), and
// legacy_compare.go only compare and stats besides them.
func TestReportImportsNoStage(t *testing.T) {
	const mod = "github.com/connectingpeople/cpi/"
	allowed := []string{"pipeline/warehouse", "schemas"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var checked int
	legacyImports := map[string]bool{}
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
			if f == legacyFile {
				legacyImports[rel] = true
				continue
			}
			if !slices.Contains(allowed, rel) {
				t.Errorf("%s imports %s: only %s may import a stage or stats; the report reads %s", f, path, legacyFile, strings.Join(allowed, " and "))
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked %d files: is the test running in the package's folder?", checked)
	}
	// The legacy file is what is left to move: it uses compare and stats
	// and nothing else of the stages.
	for rel := range legacyImports {
		if !slices.Contains(append([]string{"pipeline/compare", "stats"}, allowed...), rel) {
			t.Errorf("%s imports %s: it holds only the remaining uses of compare and stats", legacyFile, rel)
		}
	}
}
