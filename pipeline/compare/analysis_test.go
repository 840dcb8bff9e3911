package compare

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/connectingpeople/cpi/schemas"
)

// TestRegistry: the registry's names are unique, each analysis reports at
// least one method, and the default study's analyses are exactly the
// registry's, in its order.
func TestRegistry(t *testing.T) {
	s, err := schemas.Default()
	if err != nil {
		t.Fatal(err)
	}
	names := Names()
	if !slices.Equal(names, s.Analysis.Analyses) {
		t.Errorf("registry %v, default study %v", names, s.Analysis.Analyses)
	}
	seen := map[string]bool{}
	for _, a := range Registry {
		if seen[a.Name()] {
			t.Errorf("analysis %s registered twice", a.Name())
		}
		seen[a.Name()] = true
		if len(a.Methods()) == 0 || a.Term() == "" || len(a.Needs()) == 0 {
			t.Errorf("analysis %s: methods %v, term %q, needs %v", a.Name(), a.Methods(), a.Term(), a.Needs())
		}
	}
	if got := AnalysisMethods()["primary"]; !slices.Equal(got, []string{"cr2", "cr1"}) {
		t.Errorf("primary's methods %v, want [cr2 cr1]", got)
	}
	if err := CheckStudy(s); err != nil {
		t.Errorf("default study: %v", err)
	}
}

// TestCheckStudyUnknownAnalysis: a study naming an analysis the registry
// does not have loads without schemas.KnownAnalyses, and CheckStudy refuses
// it naming the file, the line and the field; with KnownAnalyses, Load
// refuses it the same way.
func TestCheckStudyUnknownAnalysis(t *testing.T) {
	file := filepath.Join("..", "..", "testdata", "bad", "analysis", "unknown-analysis.yaml")
	s, err := schemas.Load(file)
	if err != nil {
		t.Fatalf("load without KnownAnalyses: %v", err)
	}
	want := file + ":137: analysis.analyses[6]: unknown analysis \"multiple_imputation\""
	err = CheckStudy(s)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("CheckStudy: %v, want %q…", err, want)
	}
	_, err = schemas.Load(file, schemas.KnownAnalyses(Names()...))
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load with KnownAnalyses: %v, want %q…", err, want)
	}
}
