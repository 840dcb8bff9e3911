package study

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// Modes of the tables for the paper: they hold published numbers, but
// before anyone has checked them, so they are the user's own.
const (
	tablesDirMode  os.FileMode = 0o700
	tablesFileMode os.FileMode = 0o600
)

// TableFiles are the CSV files WriteStudyTables writes, in page order.
var TableFiles = []string{
	"cutoff.csv", "flow.csv", "table1.csv", "outcomes.csv", "sensitivity.csv",
	"forest.csv", "balance.csv", "fidelity.csv",
}

// WriteReportTables writes each table of the study report of the
// warehouse's committed generation as CSV into outDir (cpi report study
// --tables): the numbers as the page shows them, disclosure control
// applied (a suppressed count is its symbol), for pasting into a
// manuscript. outDir is created 0700 when missing; each file is written
// atomically, 0600.
func WriteReportTables(ctx context.Context, env warehouse.Env, dir, outDir string) error {
	gen, err := committedGen(dir)
	if err != nil {
		return err
	}
	return WriteTablesOf(ctx, env, gen, outDir)
}

// WriteTablesOf writes the study report's tables of the generation at
// genDir into outDir (see WriteReportTables).
func WriteTablesOf(ctx context.Context, env warehouse.Env, genDir, outDir string) error {
	pg, err := Load(ctx, env, genDir)
	if err != nil {
		return fmt.Errorf("study tables: %w", err)
	}
	if err := os.MkdirAll(outDir, tablesDirMode); err != nil {
		return fmt.Errorf("study tables: %w", err)
	}
	tables := pg.csvTables()
	for _, name := range append(slices.Clone(TableFiles), SectionTableFiles...) {
		rows := tables[name]
		err := warehouse.WriteFileAtomic(filepath.Join(outDir, name), tablesFileMode, func(out io.Writer) error {
			cw := csv.NewWriter(out)
			for _, r := range rows {
				for i := range r {
					r[i] = CSVSafe(r[i])
				}
				if err := cw.Write(r); err != nil {
					return err
				}
			}
			cw.Flush()
			return cw.Error()
		})
		if err != nil {
			return fmt.Errorf("study tables %s: %w", name, err)
		}
	}
	return nil
}

// CSVSafe keeps a spreadsheet from reading a cell as a formula: a cell
// starting with = + - @ or a control character gets an apostrophe, unless
// it is a number as shown ("-0.11", "-0.11 (-0.5 to 0.2)").
func CSVSafe(s string) string {
	if s == "" || !strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return s
	}
	first, _, _ := strings.Cut(s, " ")
	if _, err := strconv.ParseFloat(first, 64); err == nil {
		return s
	}
	return "'" + s
}

// csvTables lays the page's tables out as CSV rows, header first, with the
// strings the page prints.
func (pg *studyPage) csvTables() map[string][][]string {
	t := map[string][][]string{}

	cut := [][]string{{"trust"}}
	if p := pg.Provenance; p != nil {
		cut[0] = append(cut[0], p.Kinds...)
		for _, tc := range p.Trusts {
			cut = append(cut, append([]string{tc.Trust}, tc.Dates...))
		}
		c := p.Cutoff
		if c == "" {
			c = "unknown"
		}
		cut = append(cut, []string{"data cut-off", c})
	}
	t["cutoff.csv"] = cut

	flow := [][]string{append(append([]string{"trust", "arm", "recruited", "not interviewed at baseline", "baseline"}, pg.FlowHeads...), "withdrew", "lost")}
	for _, r := range pg.FlowRows {
		flow = append(flow, append([]string{r.Trust, r.Arm}, r.Cells...))
	}
	t["flow.csv"] = flow

	head := []string{"characteristic", "level"}
	for i, a := range pg.Arms {
		n := ""
		if i < len(pg.BaselineN) {
			n = pg.BaselineN[i]
		}
		head = append(head, a+" (n = "+n+")")
	}
	head = append(head, "total (n = "+pg.BaselineTotalN+")")
	t1 := [][]string{head}
	for _, v := range pg.BaselineVars {
		for _, l := range v.Levels {
			t1 = append(t1, append([]string{v.Name, l.Level}, l.Cells...))
		}
	}
	for _, l := range pg.BaselineScores {
		t1 = append(t1, append([]string{"Baseline scores, mean (SD)", l.Level}, l.Cells...))
	}
	t["table1.csv"] = t1

	oh := []string{"outcome", "primary outcome", "wave"}
	for _, a := range pg.Arms {
		oh = append(oh, a+" n", a+" mean (SD)")
	}
	oh = append(oh, "difference (95% CI)", "p", "ICC", "g", "n analysed", "note")
	out := [][]string{oh}
	for _, b := range pg.ArmSummaries {
		for _, r := range b.Rows {
			row := []string{b.Outcome, strconv.FormatBool(b.Primary), r.Wave}
			for _, c := range r.Arms {
				row = append(row, c.N, c.MeanSD)
			}
			out = append(out, append(row, r.Diff, r.P, r.ICC, r.ES, r.NAnalysed, r.Note))
		}
	}
	t["outcomes.csv"] = out

	sens := [][]string{{"outcome", "wave", "analysis", "difference (95% CI)", "p", "n", "note"}}
	for _, r := range pg.Sensitivity {
		note := ""
		if k, err := strconv.Atoi(r.Note); err == nil && k >= 1 && k <= len(pg.SensitivityNotes) {
			note = pg.SensitivityNotes[k-1]
		}
		sens = append(sens, []string{r.Outcome, r.Wave, r.Analysis, r.Estimate, r.P, r.N, note})
	}
	t["sensitivity.csv"] = sens

	forest := [][]string{{"trust", "estimate", "95% CI", "note"}}
	for _, r := range pg.ForestRows {
		forest = append(forest, []string{r.Trust, r.Estimate, r.CI, r.Note})
	}
	t["forest.csv"] = forest

	bal := [][]string{{"covariate", "SMD before weighting", "SMD after weighting", "variance ratio (weighted)"}}
	for _, r := range pg.Balance {
		bal = append(bal, []string{r.Covariate, r.SMDU, r.SMDW, r.VR})
	}
	t["balance.csv"] = bal

	fid := [][]string{append([]string{"team", "trust", "arm"}, pg.Periods...)}
	for _, r := range pg.Fidelity {
		row := []string{r.Team, r.Trust, r.Arm}
		for _, c := range r.Periods {
			cell := c.Band
			if c.Pct != "" {
				cell += " " + c.Pct
			}
			row = append(row, cell)
		}
		fid = append(fid, row)
	}
	t["fidelity.csv"] = fid
	pg.sectionCSV(t)
	return t
}
