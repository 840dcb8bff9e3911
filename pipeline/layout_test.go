package pipeline

import (
	"bufio"
	"bytes"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// layoutFloors is what each package under pipeline/ may import of this
// module (README "Layout"): the table layer imports only schemas (and its
// Parquet file writer, pqfile, which imports nothing of ours); a stage
// imports the table layer, schemas and stats, never another stage (ingest
// and synth also use the REDCap format package, which imports only
// schemas); the reports read tables only; the root wires them all.
var layoutFloors = map[string][]string{
	"pipeline/warehouse/pqfile": {},
	"pipeline/warehouse":        {"pipeline/warehouse/pqfile", "schemas"},
	"pipeline/warehouse/codes":  {"pipeline/warehouse", "schemas"},
	"pipeline/ingest/privacy":   {},
	"pipeline/redcap":           {"schemas"},
	"pipeline/ingest/readers":   {"pipeline/ingest/privacy", "pipeline/warehouse", "schemas"},
	"pipeline/ingest":           {"pipeline/ingest/privacy", "pipeline/ingest/readers", "pipeline/redcap", "pipeline/warehouse", "schemas", "stats"},
	"pipeline/score":            {"pipeline/warehouse", "pipeline/warehouse/codes", "schemas", "stats"},
	"pipeline/fidelity":         {"pipeline/warehouse", "schemas", "stats"},
	"pipeline/compare/describe": {"pipeline/warehouse", "pipeline/warehouse/codes", "schemas"},
	"pipeline/compare":          {"pipeline/compare/describe", "pipeline/warehouse", "pipeline/warehouse/codes", "schemas", "stats"},
	"pipeline/synth":            {"pipeline/redcap", "pipeline/warehouse", "schemas", "stats"},
	"pipeline/report/chart":     {},
	"pipeline/report":           {"pipeline/warehouse", "schemas"},
	"pipeline/report/study":     {"pipeline/report", "pipeline/report/chart", "pipeline/warehouse", "schemas"},
	"pipeline/report/fidelity":  {"pipeline/report", "pipeline/report/chart", "pipeline/warehouse", "schemas"},
	"pipeline":                  nil, // the root: any of them
}

// layoutMaxLines is the most non-test lines a package of pipeline/ holds.
const layoutMaxLines = 4000

// layoutOver are the packages allowed over layoutMaxLines for now, each
// with its own ceiling so that it cannot grow unnoticed. pipeline/compare
// holds the analysis registry and its fitting machinery, and outgrew the
// limit when the ITT and economic analyses arrived. The participant
// accounting has moved into a room of its own (pipeline/compare/describe:
// descriptives, missing_data, service_use and flow's counting); what is
// left to split is the fitting machinery.
var layoutOver = map[string]int{"pipeline/compare": 5300}

// TestLayout reads every package under pipeline/ with go/parser: each
// imports only the floors below it, and none is over layoutMaxLines lines
// of non-test code. A new package must be given its floor here.
func TestLayout(t *testing.T) {
	const mod = "github.com/connectingpeople/cpi/"
	seen := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Join("pipeline", filepath.Dir(path)))
		allowed, known := layoutFloors[pkg]
		if !known {
			t.Errorf("%s: package %s has no floor in layoutFloors", path, pkg)
			return nil
		}
		seen[pkg] = true
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			rel, ours := strings.CutPrefix(p, mod)
			if !ours || pkg == "pipeline" {
				continue
			}
			if !slices.Contains(allowed, rel) {
				t.Errorf("%s imports %s: %s may import only %v", path, rel, pkg, allowed)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range layoutFloors {
		if !seen[pkg] {
			t.Errorf("layoutFloors names %s, which has no Go files", pkg)
			continue
		}
		dir := strings.TrimPrefix(strings.TrimPrefix(pkg, "pipeline"), "/")
		if dir == "" {
			dir = "."
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		lines := 0
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(bytes.NewReader(b))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				lines++
			}
		}
		limit := layoutMaxLines
		if over, ok := layoutOver[pkg]; ok {
			limit = over
		}
		if lines > limit {
			t.Errorf("%s has %d lines of non-test code, over %d: split it along the data flow", pkg, lines, limit)
		}
	}
}
