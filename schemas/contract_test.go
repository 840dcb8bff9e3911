package schemas

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite README.md from the study definition")

// TestContractReadme: schemas/README.md is what WriteContract makes of the
// embedded study definition and tables.yaml (go generate ./schemas
// rewrites it), and it has a row for every canonical export column, every
// table column and every study definition key.
func TestContractReadme(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteContract(&buf, s); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("README.md", buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Fatal("schemas/README.md is out of date: run `go generate ./schemas`")
	}
	doc := string(got)
	section := func(title string) string {
		i := strings.Index(doc, title)
		if i < 0 {
			t.Fatalf("no section %q", title)
		}
		rest := doc[i+len(title):]
		if j := strings.Index(rest, "\n## "); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	export := section("## 1. The canonical export format")
	for _, kind := range []string{KindParticipants, KindFidelity} {
		for _, f := range s.ExportFields(kind) {
			if !strings.Contains(export, "\n| "+f.Name+" | ") {
				t.Errorf("export column %s (%s) is undocumented", f.Name, kind)
			}
		}
	}
	for _, want := range []string{"| age_band | string (code) |  | `18-24` `25-34`", "| rg01 | int |  | 0–1, Resource Generator-UK", "`TEWV_participants_20190329.csv`", "`<TRUST>_<participants|fidelity>_<YYYYMMDD>.csv`"} {
		if !strings.Contains(doc, want) {
			t.Errorf("README lacks %q", want)
		}
	}
	warehouse := section("## 5. The warehouse")
	for _, name := range s.Tables.Names() {
		tb := warehouse[strings.Index(warehouse, "### "+name+"\n"):]
		if strings.Index(warehouse, "### "+name+"\n") < 0 {
			t.Fatalf("table %s is undocumented", name)
		}
		if j := strings.Index(tb[4:], "\n### "); j >= 0 {
			tb = tb[:j+4]
		}
		for _, c := range s.Tables.Table(name).Columns {
			if !strings.Contains(tb, "\n| "+c.Name+" | "+c.Type+" | ") {
				t.Errorf("column %s.%s is undocumented", name, c.Name)
			}
		}
	}
	for _, want := range []string{"gen/NNNNNNNN", "W/current", "Two generations are kept", "archive/receipts", "0640", "0750", "0440", "datapackage.json"} {
		if !strings.Contains(warehouse, want) {
			t.Errorf("warehouse layout lacks %q", want)
		}
	}
	study := section("## 4. The study definition")
	for _, key := range []string{"trusts.code", "teams.arm", "waves", "fidelity.components.code", "analysis.bootstrap.seed", "ingest.settle_seconds"} {
		if !strings.Contains(study, "| `"+key+"` |") {
			t.Errorf("study key %s is undocumented", key)
		}
	}
}

// TestContractNeedsWords: a study definition key without a description is
// an error, not a silent gap in the contract.
func TestContractNeedsWords(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	doc := studyDocs["ingest.settle_seconds"]
	delete(studyDocs, "ingest.settle_seconds")
	defer func() { studyDocs["ingest.settle_seconds"] = doc }()
	var buf bytes.Buffer
	if err := WriteContract(&buf, s); err == nil || !strings.Contains(err.Error(), "ingest.settle_seconds") {
		t.Errorf("WriteContract without words for a key: %v", err)
	}
}
