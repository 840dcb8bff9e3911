package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRedcapCommands: `cpi redcap dictionary` writes the four upload files
// (the dictionary with REDCap's 18 columns, record_id first); `cpi synth
// --redcap` writes one REDCap export and five fidelity exports, which `cpi
// run` ingests as ten current exports (five REDCap parts, five fidelity),
// every row accepted; `synth --redcap` again into the same folder is
// refused without --force (the REDCap export counts as an export).
func TestRedcapCommands(t *testing.T) {
	dir := t.TempDir()
	proj := filepath.Join(dir, "project")
	code, out, stderr := cli(t, "redcap", "dictionary", "--out", proj)
	if code != 0 || out != "data_dictionary.csv\nevents.csv\ninstrument_event_mapping.csv\ndata_access_groups.csv\n" {
		t.Fatalf("redcap dictionary: exit %d\n%s\n%s", code, out, stderr)
	}
	f, err := os.Open(filepath.Join(proj, "data_dictionary.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows[0]) != 18 || rows[0][0] != "Variable / Field Name" || rows[0][17] != "Field Annotation" || rows[1][0] != "record_id" {
		t.Fatalf("dictionary: %v %q", err, rows[0])
	}
	if code, _, _ := cli(t, "redcap", "dictionary"); code != 2 {
		t.Fatalf("redcap dictionary without --out: exit %d, want 2", code)
	}
	x, w := filepath.Join(dir, "x"), filepath.Join(dir, "w")
	code, out, stderr = cli(t, "synth", "--redcap", "--out", x)
	if code != 0 || !strings.HasPrefix(out, "ConnectingPeopleImplementationStudy_redcap_20190329.csv\t") || strings.Count(out, "\n") != 6 {
		t.Fatalf("synth --redcap: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, _, _ := cli(t, "synth", "--redcap", "--out", x); code != 2 {
		t.Fatalf("synth --redcap into a folder of exports: exit %d, want 2", code)
	}
	code, out, stderr = cli(t, "run", "--warehouse", w, "--inbox", x)
	if code != 0 || !strings.Contains(out, "files: 10 new") || !strings.Contains(out, "TEWV_participants_20190329.csv") {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, stderr)
	}
}
