package redcap

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/schemas"
)

func loadStudy(t *testing.T, file string) *schemas.Study {
	t.Helper()
	s, err := schemas.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll() // equal-length rows, or an error
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}

// builtIn are the canonical columns REDCap carries in its own columns.
var builtIn = map[string]string{"participant_id": RecordID, "team_code": DAGColumn, "wave": EventColumn}

func TestDictionaryFiles(t *testing.T) {
	s := loadStudy(t, "")
	p, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "project")
	names, err := p.WriteProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 4 {
		t.Fatalf("files %v", names)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("folder mode %v, %v", fi.Mode().Perm(), err)
	}
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v, %v", n, fi.Mode().Perm(), err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	dict := readCSV(t, filepath.Join(dir, DictionaryFile))
	if len(dict[0]) != 18 {
		t.Fatalf("%d columns, want 18", len(dict[0]))
	}
	want := []string{"Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
		"Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
		"Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
		"Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name",
		"Matrix Ranking?", "Field Annotation"}
	if !slices.Equal(dict[0], want) {
		t.Fatalf("header %q", dict[0])
	}
	if dict[1][0] != RecordID || dict[1][1] != FormInterview {
		t.Fatalf("first field %q in form %q, want record_id in interview", dict[1][0], dict[1][1])
	}
	rows := map[string][]string{}
	forms := map[string]bool{}
	for _, r := range dict[1:] {
		if _, dup := rows[r[0]]; dup {
			t.Fatalf("field %s twice", r[0])
		}
		rows[r[0]] = r
		forms[r[1]] = true
		if r[10] != "" {
			t.Fatalf("field %s marked as an identifier", r[0])
		}
	}
	// A row for every canonical column of the participants export: by its
	// own name, or REDCap's built-in column for the three REDCap keeps itself.
	canon := s.ExportFields(schemas.KindParticipants)
	for _, f := range canon {
		name := f.Name
		if b, ok := builtIn[name]; ok {
			if b != RecordID {
				if _, ok := rows[name]; ok {
					t.Fatalf("%s is REDCap's %s, not a field", name, b)
				}
				continue
			}
			name = b
		}
		r, ok := rows[name]
		if !ok {
			t.Fatalf("no dictionary row for canonical column %s", f.Name)
		}
		switch f.Type {
		case schemas.FieldInt:
			if f.Min == 0 && f.Max == 1 && f.Instrument == "" {
				if r[3] != "yesno" {
					t.Fatalf("%s: type %s, want yesno", name, r[3])
				}
				continue
			}
			if r[3] != "text" || r[7] != "integer" || r[8] != strconv.Itoa(f.Min) || r[9] != strconv.Itoa(f.Max) {
				t.Fatalf("%s: %q, want integer %d..%d", name, r, f.Min, f.Max)
			}
			if r[6] == "" {
				t.Fatalf("%s: no field note", name)
			}
		case schemas.FieldCode:
			if r[3] != "radio" && r[3] != "dropdown" {
				t.Fatalf("%s: type %s", name, r[3])
			}
			var codes []string
			for _, c := range strings.Split(r[5], " | ") {
				code, _, ok := strings.Cut(c, ", ")
				if !ok {
					t.Fatalf("%s: choice %q", name, c)
				}
				codes = append(codes, code)
			}
			if !slices.Equal(codes, f.Codes) {
				t.Fatalf("%s: codes %q, want %q", name, codes, f.Codes)
			}
		case schemas.FieldDate:
			if r[7] != "date_ymd" {
				t.Fatalf("%s: validation %s", name, r[7])
			}
		}
	}
	if got, want := len(dict)-1, len(canon)-2; got != want {
		t.Fatalf("%d fields, want %d (the canonical columns but team_code and wave)", got, want)
	}
	if g := rows["gender"][5]; g != "female, Female | male, Male | non_binary, Non binary | other, Other | not_stated, Not stated" {
		t.Fatalf("gender choices %q", g)
	}
	if r := rows["rg01"]; r[1] != "rguk" || r[2] == "" || r[6] == "" {
		t.Fatalf("rg01: %q", r)
	}
	wantForms := append([]string{FormInterview, FormDemographic}, s.InstrumentNames...)
	if len(forms) != len(wantForms) {
		t.Fatalf("forms %v, want %v", forms, wantForms)
	}

	ev := readCSV(t, filepath.Join(dir, EventsFile))
	if len(ev) != 3 || ev[1][2] != "baseline_arm_1" || ev[2][2] != "followup_arm_1" {
		t.Fatalf("events %q", ev)
	}
	dags := readCSV(t, filepath.Join(dir, DAGsFile))
	if len(dags) != 1+len(s.Teams) || dags[1][0] != "TEWV-01" || dags[1][1] != "tewv_01" || dags[10][1] != "hpft_02" {
		t.Fatalf("dags %q", dags)
	}
	mp := readCSV(t, filepath.Join(dir, MappingFile))
	gas := 0
	perEvent := map[string]int{}
	for _, r := range mp[1:] {
		perEvent[r[1]]++
		if r[2] == "gas" {
			gas++
			if r[1] != "followup_arm_1" {
				t.Fatalf("gas mapped to %s", r[1])
			}
		}
		if r[2] == FormDemographic && r[1] != "baseline_arm_1" {
			t.Fatalf("demographics mapped to %s", r[1])
		}
	}
	// baseline: interview, demographics and the six instruments asked
	// there (all but GAS, with csri); followup: interview and the seven
	// instruments.
	if gas != 1 || perEvent["baseline_arm_1"] != 8 || perEvent["followup_arm_1"] != 8 {
		t.Fatalf("mapping %v, gas %d", perEvent, gas)
	}
}

func TestThreeWaveProject(t *testing.T) {
	s := loadStudy(t, "../../testdata/studies/three-waves/study.yaml")
	p, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, e := range p.Events {
		events = append(events, e.Unique)
	}
	if !slices.Equal(events, []string{"baseline_arm_1", "month6_arm_1", "month12_arm_1"}) {
		t.Fatalf("events %v", events)
	}
	var gasAt []string
	for _, r := range p.MappingRows()[1:] {
		if r[2] == "gas" {
			gasAt = append(gasAt, r[1])
		}
	}
	if !slices.Equal(gasAt, []string{"month6_arm_1", "month12_arm_1"}) {
		t.Fatalf("gas at %v", gasAt)
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{"TEWV-01": "tewv_01", "A b.C/9": "a_b_c_9", "x": "x"} {
		if got := DAGName(in); got != want {
			t.Errorf("DAGName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := EventName("month12"); got != "month12_arm_1" {
		t.Errorf("EventName = %q", got)
	}
	s := loadStudy(t, "")
	day := time.Date(2019, 3, 29, 0, 0, 0, 0, time.UTC)
	name := FileName(s, day)
	if name != "ConnectingPeopleImplementationStudy_redcap_20190329.csv" {
		t.Fatalf("file name %q", name)
	}
	if d, ok := ParseFileName(s, name); !ok || !d.Equal(day) {
		t.Fatalf("ParseFileName(%q) = %v, %v", name, d, ok)
	}
	for _, bad := range []string{"Other_redcap_20190329.csv", "ConnectingPeopleImplementationStudy_redcap_2019032.csv", "ConnectingPeopleImplementationStudy_redcap_20191399.csv"} {
		if _, ok := ParseFileName(s, bad); ok {
			t.Errorf("ParseFileName(%q) matched", bad)
		}
	}
}

// TestSplitCheckbox: checkbox columns go to their field, by the code or
// by REDCap's column form of it (18-24 as 18_24); two boxes ticked give no
// code; _complete columns are dropped; each trust's rows form its part.
func TestSplitCheckbox(t *testing.T) {
	s := loadStudy(t, "")
	p, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	w := csv.NewWriter(&b)
	head := append(p.ExportColumns(), "age_band___18_24", "age_band___65+")
	_ = w.Write(head)
	row := func(id, dag, event, young, old string) {
		cells := make([]string, len(head))
		cells[0], cells[1], cells[2] = id, event, dag
		for i, h := range head {
			switch {
			case h == "interview_complete":
				cells[i] = "2"
			case h == "rg01":
				cells[i] = "1"
			}
		}
		cells[len(head)-2], cells[len(head)-1] = young, old
		_ = w.Write(cells)
	}
	row("P1", "tewv_01", "baseline_arm_1", "1", "0")
	row("P2", "awp_02", "baseline_arm_1", "0", "1")
	row("P3", "awp_02", "followup_arm_1", "1", "1")
	w.Flush()
	parts, err := Split(s, p, strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].Trust != "TEWV" || parts[0].Rows != 1 || parts[1].Trust != "AWP" || parts[1].Rows != 2 {
		t.Fatalf("parts %+v", parts)
	}
	canon := s.ExportFields(schemas.KindParticipants)
	col := func(name string) int {
		return slices.IndexFunc(canon, func(f schemas.Field) bool { return f.Name == name })
	}
	got := func(part int) [][]string {
		rows, err := csv.NewReader(strings.NewReader(string(parts[part].CSV))).ReadAll()
		if err != nil || len(rows[0]) != len(canon) {
			t.Fatalf("part %d: %v", part, err)
		}
		return rows[1:]
	}
	tewv, awp := got(0), got(1)
	if tewv[0][col("age_band")] != "18-24" || tewv[0][col("participant_id")] != "P1" || tewv[0][col("team_code")] != "TEWV-01" || tewv[0][col("rg01")] != "1" {
		t.Fatalf("TEWV row %q", tewv[0])
	}
	if awp[0][col("age_band")] != "65+" || awp[1][col("wave")] != "followup" || slices.Contains(s.Demographics["age_band"], awp[1][col("age_band")]) {
		t.Fatalf("AWP rows %q", awp)
	}
}
