package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/dlclark/regexp2"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ecmaRegexp is an ECMAScript regular expression for the schema validator.
type ecmaRegexp struct{ re *regexp2.Regexp }

func (r ecmaRegexp) MatchString(s string) bool {
	ok, err := r.re.MatchString(s)
	return err == nil && ok
}

func (r ecmaRegexp) String() string { return r.re.String() }

// runBundled runs every stage on the committed synthetic study into a new
// warehouse and returns its folder and committed generation.
func runBundled(t *testing.T, env warehouse.Env) (string, string) {
	t.Helper()
	wh := filepath.Join(t.TempDir(), "w")
	_, err := RunStages(context.Background(), env, wh, "run", RunOptions{Create: true}, RunAll(filepath.Join("..", "testdata", "synth"))...)
	if err != nil {
		t.Fatalf("run of the bundled study: %v", err)
	}
	w, _ := warehouse.OpenWarehouse(wh, false)
	gen, _ := w.CurrentDir()
	return wh, gen
}

// frictionlessSchema compiles the Data Package profile in
// testdata/frictionless with the resource and table schema profiles it
// refers to.
func frictionlessSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	// The profiles' path pattern uses look-ahead, as ECMAScript allows
	// and Go's regexp does not.
	c.UseRegexpEngine(func(s string) (jsonschema.Regexp, error) {
		re, err := regexp2.Compile(s, regexp2.ECMAScript)
		if err != nil {
			return nil, err
		}
		return ecmaRegexp{re}, nil
	})
	for _, f := range []string{"table-schema.json", "tabular-data-resource.json", "data-package.json"} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "frictionless", f))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		id := doc.(map[string]any)["$id"].(string)
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile("https://datapackage.org/profiles/2.0/datapackage.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tableSchemaType is the Table Schema type of an Arrow type as a Parquet
// file gives it.
func tableSchemaType(dt arrow.DataType) string {
	if d, ok := dt.(*arrow.DictionaryType); ok {
		dt = d.ValueType
	}
	switch dt.ID() {
	case arrow.STRING, arrow.LARGE_STRING:
		return "string"
	case arrow.INT32, arrow.INT64:
		return "integer"
	case arrow.FLOAT64:
		return "number"
	case arrow.BOOL:
		return "boolean"
	case arrow.DATE32:
		return "date"
	case arrow.TIMESTAMP:
		return "datetime"
	}
	return "unknown " + dt.String()
}

// TestDatapackageOfBundledRun: `cpi run` on the bundled study writes
// tables/datapackage.json, valid against the Frictionless profiles, whose
// fields are the Parquet files' columns with their types, whose coded
// fields carry every value the tables hold with a label, and whose bytes
// the same inputs reproduce.
func TestDatapackageOfBundledRun(t *testing.T) {
	env := ingestTestEnv(t)
	wh, gen := runBundled(t, env)
	path := filepath.Join(wh, "tables", "datapackage.json")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no data package: %v", err)
	}
	if info.Mode().Perm() != 0o640 {
		t.Errorf("datapackage.json mode %v, want 0640", info.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := frictionlessSchema(t).Validate(doc); err != nil {
		t.Fatalf("datapackage.json is not a valid data package: %v", err)
	}
	var dp DataPackage
	if err := json.Unmarshal(b, &dp); err != nil {
		t.Fatal(err)
	}
	if dp.DataCutoff != "2019-03-29" || dp.Program != "test" || dp.StudyHash != env.Study.Hash || dp.Title != "Connecting People implementation study" {
		t.Errorf("package metadata: cut-off %q, program %q, study hash %q, title %q", dp.DataCutoff, dp.Program, dp.StudyHash, dp.Title)
	}
	if got, want := len(dp.Resources), len(env.Study.Tables.Names()); got != want {
		t.Fatalf("%d resources, want one per table (%d)", got, want)
	}

	// Columns a code list must cover wherever they appear.
	mustCode := []string{"trust", "team", "arm", "wave", "period", "instrument", "item", "scale", "component",
		"age_band", "gender", "ethnicity", "diagnosis_group", "living_alone", "rater_role", "band", "stage", "status", "kind",
		"analysis", "outcome", "method", "term", "effect_size_type"}
	codesRows := 0
	for _, r := range dp.Resources {
		files, _ := warehouse.TableFiles(gen, r.Name)
		if len(files) == 0 {
			t.Errorf("%s: no files written by a full run", r.Name)
			continue
		}
		var rels []string
		for _, f := range files {
			rel, _ := filepath.Rel(filepath.Join(gen, "tables"), f)
			rels = append(rels, filepath.ToSlash(rel))
		}
		if !slices.Equal(r.Path, rels) {
			t.Errorf("%s: path %v, files %v", r.Name, r.Path, rels)
		}
		tb := env.Study.Tables.Table(r.Name)
		if !slices.Equal(r.Schema.PrimaryKey, tb.Key) {
			t.Errorf("%s: primary key %v, want %v", r.Name, r.Schema.PrimaryKey, tb.Key)
		}
		if tb.Partition != "" && (len(r.PartitionBy) != 1 || r.PartitionBy[0] != tb.Partition || r.PathPattern != r.Name+"/"+tb.Partition+"=*/*.parquet") {
			t.Errorf("%s: partitioning %v %q", r.Name, r.PartitionBy, r.PathPattern)
		}
		// Fields equal every file's Parquet columns and types, in order.
		var rows int64
		for _, f := range files {
			pf, err := file.OpenParquetFile(f, false)
			if err != nil {
				t.Fatal(err)
			}
			fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := fr.Schema()
			if err != nil {
				t.Fatal(err)
			}
			rows += pf.NumRows()
			pf.Close()
			var got, want []string
			for _, fd := range sc.Fields() {
				got = append(got, fd.Name+":"+tableSchemaType(fd.Type))
			}
			for _, fd := range r.Schema.Fields {
				want = append(want, fd.Name+":"+fd.Type)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: file %s has columns %v, the package says %v", r.Name, filepath.Base(filepath.Dir(f)), got, want)
			}
		}
		if rows == 0 && r.Name != "rejects" {
			t.Errorf("%s: no rows", r.Name)
		}
		// Every coded field has its code list, and the list covers every
		// value the table holds.
		for _, fd := range r.Schema.Fields {
			if r.Name == "codes" {
				continue
			}
			// balance.analysis is analysis:outcome, two codes in one.
			composite := r.Name == "balance" && fd.Name == "analysis"
			if slices.Contains(mustCode, fd.Name) && !composite && len(fd.Categories) == 0 {
				t.Errorf("%s.%s: coded field without categories", r.Name, fd.Name)
			}
			if len(fd.Categories) == 0 {
				continue
			}
			codesRows += len(fd.Categories)
			known := map[string]bool{}
			for _, c := range fd.Categories {
				if c.Label == "" {
					t.Errorf("%s.%s: code %v has no label", r.Name, fd.Name, c.Value)
				}
				known[fmt.Sprint(c.Value)] = true
			}
			for v := range distinctValues(t, gen, r.Name, fd.Name) {
				if !known[v] {
					t.Errorf("%s.%s: value %q is in the table but not in the code list", r.Name, fd.Name, v)
				}
			}
		}
	}
	field := func(table, name string) *Field {
		for _, r := range dp.Resources {
			for _, f := range r.Schema.Fields {
				if r.Name == table && f.Name == name {
					return f
				}
			}
		}
		t.Fatalf("no field %s.%s", table, name)
		return nil
	}
	if f := field("participants", "trust"); f.Categories[0].Value != "TEWV" || f.Categories[0].Label != "Tees, Esk and Wear Valleys NHS FT" || len(f.Categories) != 5 {
		t.Errorf("participants.trust categories %v", f.Categories)
	}
	if f := field("participants", "living_alone"); f.Type != "integer" || len(f.Categories) != 2 || f.Categories[1].Value != float64(1) || f.Categories[1].Label != "yes" {
		t.Errorf("participants.living_alone: %s %v", f.Type, f.Categories)
	}
	if f := field("reliability", "trust"); f.Categories[len(f.Categories)-1].Value != "ALL" {
		t.Errorf("reliability.trust lacks ALL: %v", f.Categories)
	}
	if f := field("fidelity", "pct"); f.Unit != "percent of max" || f.Type != "number" || f.Constraints.Required {
		t.Errorf("fidelity.pct: %+v", f)
	}
	if f := field("ingest_files", "received_at"); f.Type != "datetime" || !f.Constraints.Required {
		t.Errorf("ingest_files.received_at: %+v", f)
	}

	// The codes table holds the same code lists.
	var codes int
	err = warehouse.ScanTable(context.Background(), gen, "codes", func(rec arrow.RecordBatch) error {
		cols, err := warehouse.Columns(rec, "table", "field", "code", "label")
		if err != nil {
			return err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			codes++
			tbl, fld := cols[0].(*array.String).Value(i), cols[1].(*array.String).Value(i)
			code, label := cols[2].(*array.String).Value(i), cols[3].(*array.String).Value(i)
			found := false
			for _, c := range field(tbl, fld).Categories {
				found = found || (fmt.Sprint(c.Value) == code && c.Label == label)
			}
			if !found {
				t.Errorf("codes row %s.%s %s %q is not in the package", tbl, fld, code, label)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if codes != codesRows {
		t.Errorf("codes table has %d rows, the package %d categories", codes, codesRows)
	}

	// cpi check knows the file; cpi tables --json prints the same bytes.
	var out bytes.Buffer
	if err := Check(context.Background(), env, wh, &out); err != nil {
		t.Errorf("check: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := Codebook(env, wh, &out, CodebookOptions{JSON: true}); err != nil || !bytes.Equal(out.Bytes(), b) {
		t.Errorf("tables --json differs from datapackage.json (%v)", err)
	}

	// The same inputs give the same bytes.
	wh2, _ := runBundled(t, env)
	b2, _ := os.ReadFile(filepath.Join(wh2, "tables", "datapackage.json"))
	if !bytes.Equal(b, b2) {
		t.Error("two runs over the same inputs wrote different data packages")
	}
}

// distinctValues is the set of a column's non-null values, as text.
func distinctValues(t *testing.T, gen, table, col string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := warehouse.ScanTable(context.Background(), gen, table, func(rec arrow.RecordBatch) error {
		cs, err := warehouse.Columns(rec, col)
		if err != nil {
			return err
		}
		a := cs[0]
		if d, ok := a.(*array.Dictionary); ok {
			for i := 0; i < d.Len(); i++ {
				if d.IsValid(i) {
					out[d.Dictionary().ValueStr(d.GetValueIndex(i))] = true
				}
			}
			return nil
		}
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				out[a.ValueStr(i)] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDatapackageProfileRejects: the profiles in testdata/frictionless are
// not vacuous: they refuse what the specification forbids.
func TestDatapackageProfileRejects(t *testing.T) {
	s := frictionlessSchema(t)
	good := `{"name":"p","resources":[{"name":"t","type":"table","path":["t/data.parquet"],"schema":{"fields":[{"name":"a","type":"integer","categories":[{"value":1,"label":"yes"}]}],"primaryKey":["a"],"missingValues":[""]}}]}`
	for name, doc := range map[string]string{
		"no resources":             `{"name":"p","resources":[]}`,
		"absolute path":            `{"name":"p","resources":[{"name":"t","type":"table","path":["/etc/passwd"],"schema":{"fields":[{"name":"a","type":"string"}]}}]}`,
		"parent path":              `{"name":"p","resources":[{"name":"t","type":"table","path":["../x.parquet"],"schema":{"fields":[{"name":"a","type":"string"}]}}]}`,
		"path and data":            `{"name":"p","resources":[{"name":"t","type":"table","path":["t.parquet"],"data":[],"schema":{"fields":[{"name":"a","type":"string"}]}}]}`,
		"parquet type name":        `{"name":"p","resources":[{"name":"t","type":"table","path":["t.parquet"],"schema":{"fields":[{"name":"a","type":"int32"}]}}]}`,
		"string code of integer":   `{"name":"p","resources":[{"name":"t","type":"table","path":["t.parquet"],"schema":{"fields":[{"name":"a","type":"integer","categories":[{"value":"1","label":"yes"}]}]}}]}`,
		"field without name":       `{"name":"p","resources":[{"name":"t","type":"table","path":["t.parquet"],"schema":{"fields":[{"type":"string"}]}}]}`,
		"not a table":              `{"name":"p","resources":[{"name":"t","type":"file","path":["t.parquet"],"schema":{"fields":[{"name":"a","type":"string"}]}}]}`,
		"schema without fields":    `{"name":"p","resources":[{"name":"t","type":"table","path":["t.parquet"],"schema":{"primaryKey":["a"]}}]}`,
		"missing value not string": `{"name":"p","resources":[{"name":"t","type":"table","path":["t.parquet"],"schema":{"fields":[{"name":"a","type":"string"}],"missingValues":[0]}}]}`,
	} {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(doc)))
		if err != nil {
			t.Fatal(err)
		}
		if s.Validate(v) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	v, _ := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(good)))
	if err := s.Validate(v); err != nil {
		t.Errorf("a valid package refused: %v", err)
	}
}

// TestDuckDBReadmeSnippet runs README's DuckDB line exactly as written
// (from the folder holding the warehouse w) for scores, and the same call
// for every table: DuckDB sees the columns and types the data package gives,
// the rows it counts, and as many nulls per column as cpi's own reader.
func TestDuckDBReadmeSnippet(t *testing.T) {
	script, _ := filepath.Abs(filepath.Join("..", "scripts", "duckdb", "query.mjs"))
	if _, err := os.Stat(filepath.Join("..", "scripts", "duckdb", "node_modules", "@duckdb", "node-api")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("DuckDB's Node package is not installed (.ci/run installs it)")
		}
		t.Skip("DuckDB's Node package is not installed: cd scripts/duckdb && npm install")
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const open, close = `duckdb.sql("`, `")`
	i := bytes.Index(readme, []byte(open))
	if i < 0 {
		t.Fatal("README has no duckdb.sql line")
	}
	rest := readme[i+len(open):]
	sql := string(rest[:bytes.Index(rest, []byte(close))])
	if want := "from read_parquet('w/tables/scores/**/*.parquet', hive_partitioning = false)"; sql != want {
		t.Fatalf("README's DuckDB line is %q; this test expects %q", sql, want)
	}
	env := ingestTestEnv(t)
	wh, gen := runBundled(t, env)
	dp, err := BuildDataPackage(env, gen, nil)
	if err != nil {
		t.Fatal(err)
	}
	duckType := map[string]string{"string": "VARCHAR", "int32": "INTEGER", "int64": "BIGINT", "double": "DOUBLE",
		"bool": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP WITH TIME ZONE"}
	for _, r := range dp.Resources {
		q := strings.ReplaceAll(sql, "/scores/", "/"+r.Name+"/")
		cmd := exec.Command("node", script, q)
		cmd.Dir = filepath.Dir(wh)
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("%s: duckdb: %v %s", r.Name, err, stderr)
		}
		var got struct {
			Columns map[string]string `json:"columns"`
			Rows    int64             `json:"rows"`
			Nulls   map[string]int64  `json:"nulls"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if got.Rows != r.Rows {
			t.Errorf("%s: DuckDB counts %d rows, the package %d", r.Name, got.Rows, r.Rows)
		}
		if len(got.Columns) != len(r.Schema.Fields) {
			t.Errorf("%s: DuckDB sees %d columns, the package %d", r.Name, len(got.Columns), len(r.Schema.Fields))
		}
		nulls := nullCounts(t, gen, r.Name)
		for _, f := range r.Schema.Fields {
			if got.Columns[f.Name] != duckType[f.ParquetType] {
				t.Errorf("%s.%s: DuckDB type %q, want %q", r.Name, f.Name, got.Columns[f.Name], duckType[f.ParquetType])
			}
			if got.Nulls[f.Name] != nulls[f.Name] {
				t.Errorf("%s.%s: DuckDB counts %d nulls, cpi's reader %d", r.Name, f.Name, got.Nulls[f.Name], nulls[f.Name])
			}
			if f.Constraints.Required && got.Nulls[f.Name] != 0 {
				t.Errorf("%s.%s: required, but %d nulls", r.Name, f.Name, got.Nulls[f.Name])
			}
		}
		if r.Name == "scores" && (got.Nulls["value"] == 0 || got.Nulls["chg"] == 0) {
			t.Errorf("scores: no null values or changes (%d, %d): the synthetic study has missing scores and baselines", got.Nulls["value"], got.Nulls["chg"])
		}
	}
}

// nullCounts counts each column's nulls with cpi's own reader.
func nullCounts(t *testing.T, gen, table string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := warehouse.ScanTable(context.Background(), gen, table, func(rec arrow.RecordBatch) error {
		for i, f := range rec.Schema().Fields() {
			out[f.Name] += int64(rec.Column(i).NullN())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDatapackageValidAgainstPublishedProfile validates the bundled run's
// datapackage.json against Frictionless's own published Tabular Data
// Package profile (v1, as the frictionless libraries ship it: see
// testdata/frictionless/published/README.md), unchanged.
func TestDatapackageValidAgainstPublishedProfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "frictionless", "published", "tabular-data-package.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.UseRegexpEngine(func(s string) (jsonschema.Regexp, error) {
		re, err := regexp2.Compile(s, regexp2.ECMAScript)
		if err != nil {
			return nil, err
		}
		return ecmaRegexp{re}, nil
	})
	const id = "https://specs.frictionlessdata.io/schemas/tabular-data-package.json"
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	env := ingestTestEnv(t)
	wh := filepath.Join(t.TempDir(), "w")
	if _, err := RunStages(context.Background(), env, wh, "run", RunOptions{Create: true}, RunAll(filepath.Join("..", "testdata", "synth"))...); err != nil {
		t.Fatal(err)
	}
	pkg, err := os.ReadFile(filepath.Join(wh, "tables", "datapackage.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := jsonschema.UnmarshalJSON(bytes.NewReader(pkg))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(got); err != nil {
		t.Errorf("datapackage.json is not valid for the published profile: %v", err)
	}
}
