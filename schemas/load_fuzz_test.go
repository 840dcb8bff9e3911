package schemas

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzLoadStudy feeds Load mutated study files: it must not panic, and a
// definition it accepts holds only codes that are plain file names and
// ranges within the bounds of limits.go.
func FuzzLoadStudy(f *testing.F) {
	b, err := embedded.ReadFile("study.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	bad, _ := filepath.Glob("../testdata/bad/study/*.yaml")
	for _, p := range bad {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		file := filepath.Join(dir, "study.yaml")
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		tm := time.AfterFunc(30*time.Second, func() { panic("Load took over 30 s") })
		s, err := Load(file)
		tm.Stop()
		if err != nil {
			if !strings.HasPrefix(err.Error(), file) && !strings.HasPrefix(err.Error(), "embedded:") && !strings.HasPrefix(err.Error(), "read ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, code := range append(s.TeamCodes(), s.TrustCodes()...) {
			if !validCode(code) {
				t.Fatalf("accepted code %q", code)
			}
		}
		if f := s.Fidelity; f.Min < 0 || f.Max > maxFidelityMax || f.Max <= f.Min {
			t.Fatalf("accepted fidelity range %d..%d", f.Min, f.Max)
		}
		if d := s.Analysis.Bootstrap.Draws; d < minDraws || d > maxDraws {
			t.Fatalf("accepted %d draws", d)
		}
	})
}
