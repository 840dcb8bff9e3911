package schemas

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// ValidParticipantID accepts 3 to 32 of A-Z, a-z, 0-9, _ and -, nothing else.
func TestValidParticipantID(t *testing.T) {
	for id, want := range map[string]bool{
		"abc": true, "A_b-9": true, strings.Repeat("x", 32): true,
		"ab": false, strings.Repeat("x", 33): false, "": false,
		"ab c": false, "abc!": false, "abé": false, "a.bc": false, "abc\n": false,
	} {
		if got := ValidParticipantID(id); got != want {
			t.Errorf("%q: %v, want %v", id, got, want)
		}
	}
}

// The default study's demographics come from study.yaml in its order, with
// living_alone a 0/1 column after ethnicity; the participants table and
// the export follow them.
func TestDefaultDemographics(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range s.DemographicFields() {
		kind := "codes"
		if d.Binary {
			kind = "yes_no"
		}
		if d.Binary == (d.Codes != nil) || (!d.Binary && len(d.Codes) == 0) {
			t.Errorf("%s: binary %v with %d codes", d.Name, d.Binary, len(d.Codes))
		}
		got = append(got, d.Name+":"+kind)
	}
	want := []string{"age_band:codes", "gender:codes", "ethnicity:codes", "living_alone:yes_no", "diagnosis_group:codes"}
	if !slices.Equal(got, want) {
		t.Errorf("DemographicFields %v, want %v", got, want)
	}
	if c := s.Demographics["diagnosis_group"]; len(c) != 7 || c[0] != "psychosis" || s.Demographics["living_alone"] != nil {
		t.Errorf("code lists %v", s.Demographics)
	}
	embedded, err := EmbeddedTables()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Tables.Table("participants"), embedded.Table("participants")) {
		t.Error("the default study's participants table differs from tables.yaml")
	}
	fields := s.ExportFields(KindParticipants)
	for i, name := range []string{"age_band", "gender", "ethnicity", "living_alone", "diagnosis_group", "withdrawn"} {
		if fields[4+i].Name != name {
			t.Errorf("export column %d is %s, want %s", 4+i, fields[4+i].Name, name)
		}
	}
	if fields[7].Type != FieldInt || fields[7].Max != 1 {
		t.Errorf("living_alone %+v, want 0 to 1", fields[7])
	}
}

// A study file without living_alone (written before it was in the
// demographics mapping) has no living_alone column anywhere.
func TestStudyWithoutLivingAlone(t *testing.T) {
	_, err := loadWith(t, []string{"  living_alone: yes_no\n", "", "propensity_covariates: [age_band, gender, living_alone, diagnosis_group]", "propensity_covariates: [age_band, gender, diagnosis_group]"}, map[string]string{})
	// The embedded AWP mapping names living_alone: that study must bring
	// its own site mapping, and says so.
	if err == nil || !strings.Contains(err.Error(), `"living_alone" is not a canonical column`) {
		t.Fatalf("with the embedded AWP mapping: %v", err)
	}
	awp, err := embedded.ReadFile("sites/awp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	site := strings.Replace(strings.Replace(string(awp), "  \"Lives alone\": living_alone\n", "", 1), "  living_alone: {\"Y\": \"1\", \"N\": \"0\"}\n", "", 1)
	dir, err := loadWith(t, []string{"  living_alone: yes_no\n", "", "propensity_covariates: [age_band, gender, living_alone, diagnosis_group]", "propensity_covariates: [age_band, gender, diagnosis_group]"}, map[string]string{"sites/awp.yaml": site})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir + "/study.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.DemographicFields()) != 4 || len(s.BinaryDemographics()) != 0 || s.isExportField("living_alone") || s.Tables.Table("participants").ColumnIndex("living_alone") >= 0 {
		t.Errorf("a study without living_alone: demographics %v, export column %v", s.DemographicFields(), s.isExportField("living_alone"))
	}
	if _, err := loadWith(t, []string{"  living_alone: yes_no\n", ""}, map[string]string{"sites/awp.yaml": site}); err == nil || !strings.Contains(err.Error(), `unknown covariate "living_alone"`) {
		t.Errorf("living_alone as a covariate of a study without it: %v", err)
	}
}
