package pipeline

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/connectingpeople/cpi/schemas"
)

// writeExportTables replaces the trust's partitions that come from an
// export of this kind with the export's accepted rows and rejects.
func writeExportTables(ctx context.Context, env Env, tx *Tx, res *exportResult, sha string) error {
	if res.kind == schemas.KindFidelity {
		if err := writeFidelityRatings(ctx, env, tx, res, sha); err != nil {
			return err
		}
	} else {
		if err := writeParticipants(env, tx, res); err != nil {
			return err
		}
		if err := writeResponses(ctx, env, tx, res, sha); err != nil {
			return err
		}
	}
	return writeRejects(env, tx, res, sha)
}

func sortInterviews(ivs []*interview) {
	sort.Slice(ivs, func(i, j int) bool {
		if ivs[i].pid != ivs[j].pid {
			return ivs[i].pid < ivs[j].pid
		}
		return ivs[i].wave < ivs[j].wave
	})
}

// writeParticipants writes one row per participant with an accepted row.
func writeParticipants(env Env, tx *Tx, res *exportResult) error {
	const name = "participants"
	tb := env.Study.Tables.Table(name)
	schema := tableSchema(env, name, nil)
	tf, err := tx.CreateTableFile(schema, name, "trust", res.trust, "data")
	if err != nil {
		return err
	}
	rw := NewRowWriter(schema, tf)
	sortInterviews(res.interviews)
	bw := env.Study.BaselineWave()
	col := func(c string) int { return colIndex(tb, c) }
	for i := 0; i < len(res.interviews); {
		j := i
		for j < len(res.interviews) && res.interviews[j].pid == res.interviews[i].pid {
			j++
		}
		rows := res.interviews[i:j]
		i = j
		var base, fu *interview
		withdrawn := false
		for _, iv := range rows {
			if iv.wave == bw {
				base = iv
			} else if fu == nil || iv.wave > fu.wave {
				fu = iv
			}
			withdrawn = withdrawn || iv.withdrawn
		}
		first := rows[0]
		if base != nil {
			first = base
		}
		team, _ := env.Study.Team(first.team)
		rw.Str(col("study_id"), res.trust+"-"+first.pid)
		rw.Str(col("trust"), res.trust)
		rw.Str(col("team"), team.Code)
		rw.Str(col("arm"), team.Arm)
		for k, c := range [4]string{"age_band", "gender", "ethnicity", "diagnosis_group"} {
			v := ""
			if base != nil {
				v = base.demo[k]
			}
			rw.NullStr(col(c), v)
		}
		if base != nil {
			rw.Int32(col("living_alone"), base.living, base.living != nullInt)
		} else {
			rw.Null(col("living_alone"))
		}
		rw.Bool(col("withdrawn"), withdrawn)
		rw.Date(col("baseline_date"), dateOf(base), base != nil && base.interviewed())
		rw.Date(col("followup_date"), dateOf(fu), fu != nil && fu.interviewed())
		rw.Bool(col("interviewed_baseline"), base != nil && base.interviewed())
		rw.Bool(col("interviewed_followup"), fu != nil && fu.interviewed())
		if err := rw.RowDone(); err != nil {
			rw.Abort()
			return err
		}
	}
	return rw.Close()
}

func dateOf(iv *interview) int32 {
	if iv == nil {
		return 0
	}
	return iv.date
}

// writeResponses writes the long item table: every item of every
// instrument asked at the wave, for each dated interview.
func writeResponses(ctx context.Context, env Env, tx *Tx, res *exportResult, sha string) error {
	const name = "responses"
	tb := env.Study.Tables.Table(name)
	schema := tableSchema(env, name, nil)
	tf, err := tx.CreateTableFile(schema, name, "trust", res.trust, "data")
	if err != nil {
		return err
	}
	rw := NewRowWriter(schema, tf)
	type itemRef struct {
		inst *schemas.Instrument
		item string
		j    int
	}
	var items []itemRef
	j := 0
	for _, f := range res.fields {
		if f.Instrument == "" {
			continue
		}
		in, _ := env.Study.Instrument(f.Instrument)
		items = append(items, itemRef{in, f.Name, j})
		j++
	}
	sort.Slice(items, func(a, b int) bool {
		if items[a].inst.Name != items[b].inst.Name {
			return items[a].inst.Name < items[b].inst.Name
		}
		return items[a].item < items[b].item
	})
	c := [...]int{colIndex(tb, "study_id"), colIndex(tb, "wave"), colIndex(tb, "instrument"), colIndex(tb, "item"),
		colIndex(tb, "trust"), colIndex(tb, "team"), colIndex(tb, "arm"), colIndex(tb, "value"),
		colIndex(tb, "source_sha256"), colIndex(tb, "source_line")}
	for n, iv := range res.interviews { // sorted by writeParticipants
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				rw.Abort()
				return err
			}
		}
		if !iv.interviewed() {
			continue
		}
		team, _ := env.Study.Team(iv.team)
		sid := res.trust + "-" + iv.pid
		for _, it := range items {
			if !it.inst.AskedAt(iv.wave) {
				continue
			}
			rw.Str(c[0], sid)
			rw.Str(c[1], iv.wave)
			rw.Str(c[2], it.inst.Name)
			rw.Str(c[3], it.item)
			rw.Str(c[4], res.trust)
			rw.Str(c[5], team.Code)
			rw.Str(c[6], team.Arm)
			v := iv.items[it.j]
			rw.Int32(c[7], v, v != nullInt)
			rw.Str(c[8], sha)
			rw.Int32(c[9], int32(iv.line), true)
			if err := rw.RowDone(); err != nil {
				rw.Abort()
				return err
			}
		}
	}
	return rw.Close()
}

func writeFidelityRatings(ctx context.Context, env Env, tx *Tx, res *exportResult, sha string) error {
	const name = "fidelity_ratings"
	tb := env.Study.Tables.Table(name)
	schema := tableSchema(env, name, nil)
	tf, err := tx.CreateTableFile(schema, name, "trust", res.trust, "data")
	if err != nil {
		return err
	}
	rw := NewRowWriter(schema, tf)
	rs := res.ratings
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].team != rs[j].team {
			return rs[i].team < rs[j].team
		}
		if rs[i].period != rs[j].period {
			return rs[i].period < rs[j].period
		}
		return rs[i].rater < rs[j].rater
	})
	comps := env.Study.Fidelity.Components
	order := make([]int, len(comps))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return comps[order[a]].Code < comps[order[b]].Code })
	col := func(c string) int { return colIndex(tb, c) }
	for _, r := range rs {
		team, _ := env.Study.Team(r.team)
		for _, k := range order {
			rw.Str(col("team"), r.team)
			rw.Str(col("period"), r.period)
			rw.Str(col("rater_id"), r.rater)
			rw.Str(col("component"), comps[k].Code)
			rw.Str(col("trust"), res.trust)
			rw.Str(col("arm"), team.Arm)
			rw.Str(col("rater_role"), r.role)
			rw.Date(col("rating_date"), r.date, r.date != nullInt)
			rw.Int32(col("value"), r.values[k], r.values[k] != nullInt)
			rw.Str(col("source_sha256"), sha)
			rw.Int32(col("source_line"), int32(r.line), true)
			if err := rw.RowDone(); err != nil {
				rw.Abort()
				return err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		rw.Abort()
		return err
	}
	return rw.Close()
}

// writeRejects replaces the trust's rejects of this kind with the export's.
func writeRejects(env Env, tx *Tx, res *exportResult, sha string) error {
	const name = "rejects"
	tb := env.Study.Tables.Table(name)
	schema := tableSchema(env, name, nil)
	tf, err := tx.CreateTableFile(schema, name, "trust", res.trust, res.kind)
	if err != nil {
		return err
	}
	rw := NewRowWriter(schema, tf)
	col := func(c string) int { return colIndex(tb, c) }
	for _, p := range res.problems {
		if p.Severity != SeverityError {
			continue
		}
		rw.Str(col("source_sha256"), sha)
		rw.Int32(col("source_line"), int32(p.Line), true)
		rw.Str(col("column"), p.Column)
		rw.Str(col("trust"), res.trust)
		rw.Str(col("source_name"), res.name)
		rw.Str(col("kind"), res.kind)
		rw.Str(col("code"), p.Code)
		rw.Str(col("message"), p.Message)
		if err := rw.RowDone(); err != nil {
			rw.Abort()
			return err
		}
	}
	return rw.Close()
}

// writeIngestFiles mirrors the ledger's files, sorted by SHA-256.
func writeIngestFiles(ctx context.Context, env Env, tx *Tx) error {
	const name = "ingest_files"
	tb := env.Study.Tables.Table(name)
	schema := tableSchema(env, name, nil)
	tf, err := tx.CreateTableFile(schema, name, "", "", "data")
	if err != nil {
		return err
	}
	rw := NewRowWriter(schema, tf)
	files := append([]*FileEntry(nil), tx.Ledger.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].SHA256 < files[j].SHA256 })
	col := func(c string) int { return colIndex(tb, c) }
	for _, f := range files {
		rw.Str(col("sha256"), f.SHA256)
		rw.Str(col("name"), f.Name)
		rw.NullStr(col("trust"), f.Trust)
		rw.NullStr(col("kind"), f.Kind)
		if d, err := parseISODate(f.ExportDate); err == nil {
			rw.Date(col("export_date"), d, true)
		} else {
			rw.Null(col("export_date"))
		}
		rw.Timestamp(col("received_at"), f.ReceivedAt)
		rw.Int64(col("run_id"), f.RunID)
		rw.Int64(col("rows_read"), f.RowsRead)
		rw.Int64(col("rows_accepted"), f.RowsAccepted)
		rw.Int64(col("rows_rejected"), f.RowsRejected)
		rw.Str(col("status"), f.Status)
		rw.NullStr(col("reason"), f.Reason)
		if err := rw.RowDone(); err != nil {
			rw.Abort()
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		rw.Abort()
		return err
	}
	return rw.Close()
}

// writeProblemLists writes problems/<TRUST>.csv for each trust that sent a
// file in this run: file, line, column, rule, severity, message — ready to
// send back to the trust's data manager.
func writeProblemLists(tx *Tx, byTrust map[string][]Problem) error {
	trusts := make([]string, 0, len(byTrust))
	for trust := range byTrust {
		trusts = append(trusts, trust)
	}
	sort.Strings(trusts)
	for _, trust := range trusts {
		probs := byTrust[trust]
		if err := tx.step("write problems/" + trust + ".csv"); err != nil {
			return err
		}
		path := tx.Path("problems", trust+".csv")
		err := writeFileAtomic(path, fileMode, func(w io.Writer) error { return WriteProblems(w, probs) })
		if err != nil {
			return fmt.Errorf("problem list %s: %w", trust, err)
		}
	}
	return nil
}

// WriteProblems writes a problem list as CSV. Cells that a spreadsheet
// would read as a formula are prefixed with an apostrophe.
func WriteProblems(w io.Writer, probs []Problem) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"file", "line", "column", "rule", "severity", "message"}); err != nil {
		return err
	}
	for _, p := range probs {
		rec := []string{safeCell(p.File), strconv.Itoa(p.Line), safeCell(p.Column), p.Code, p.Severity, safeCell(p.Message)}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func safeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func parseISODate(s string) (int32, error) {
	if s == "" {
		return 0, fmt.Errorf("no date")
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return 0, err
	}
	return int32(t.Unix() / 86400), nil
}
