package schemas

import (
	"strings"
	"testing"
)

func TestPrimaryWave(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.PrimaryWave(); got != "followup" {
		t.Fatalf("default primary wave %q, want followup (the last wave)", got)
	}
	if got := s.FollowupWaves(); len(got) != 1 || got[0] != "followup" {
		t.Fatalf("follow-up waves %v", got)
	}
	dir, err := loadWith(t, []string{"waves: [baseline, followup]", "waves: [baseline, month6, followup]", "\nanalysis:\n", "\nanalysis:\n  primary_wave: month6\n"}, map[string]string{})
	if err != nil {
		t.Fatalf("three waves, primary month6: %v", err)
	}
	s3, err := Load(dir + "/study.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := s3.PrimaryWave(); got != "month6" {
		t.Fatalf("primary wave %q, want month6", got)
	}
	if got := s3.FollowupWaves(); len(got) != 2 || got[0] != "month6" || got[1] != "followup" {
		t.Fatalf("follow-up waves %v, want [month6 followup]", got)
	}
	for _, bad := range []string{"baseline", "month9"} {
		_, err := loadWith(t, []string{"\nanalysis:\n", "\nanalysis:\n  primary_wave: " + bad + "\n"}, map[string]string{})
		if err == nil || !strings.Contains(err.Error(), "analysis.primary_wave") {
			t.Fatalf("primary_wave %s: error %v, want one naming analysis.primary_wave", bad, err)
		}
	}
}
