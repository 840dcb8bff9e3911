package ingest

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
	"github.com/connectingpeople/cpi/schemas"
)

// tableSink writes an export's accepted rows into the trust's partitions
// of the generation: participants and responses (or fidelity_ratings) as
// they come, rejects at the end. It replaces those partitions only when
// closed; abort leaves them as they were.
type tableSink struct {
	env   warehouse.Env
	tx    *warehouse.Tx
	res   *exportResult
	sha   string
	parts *warehouse.RowWriter // participants
	ivw   *warehouse.RowWriter // interviews
	resp  *responsesWriter     // responses
	fid   *warehouse.RowWriter // fidelity_ratings
	pc    map[string]int       // participants' column positions
	ic    map[string]int       // interviews' column positions
}

func newTableSink(env warehouse.Env, tx *warehouse.Tx, res *exportResult, sha string) (exportSink, error) {
	k := &tableSink{env: env, tx: tx, res: res, sha: sha}
	open := func(table string) (*warehouse.RowWriter, error) {
		schema := warehouse.ArrowSchema(env, table, nil)
		tf, err := tx.CreateTableFile(schema, table, "trust", res.trust, "data")
		if err != nil {
			return nil, err
		}
		return warehouse.NewRowWriter(schema, tf), nil
	}
	var err error
	if res.kind == schemas.KindFidelity {
		if k.fid, err = open("fidelity_ratings"); err != nil {
			return nil, err
		}
		return k, nil
	}
	if k.parts, err = open("participants"); err != nil {
		return nil, err
	}
	if k.ivw, err = open("interviews"); err != nil {
		k.parts.Abort()
		return nil, err
	}
	if k.resp, err = newResponsesWriter(env, tx, res, sha); err != nil {
		k.parts.Abort()
		k.ivw.Abort()
		return nil, err
	}
	k.pc = columnPositions(env.Study.Tables.Table("participants"))
	k.ic = columnPositions(env.Study.Tables.Table("interviews"))
	return k, nil
}

// columnPositions maps a table's column names to their positions.
func columnPositions(tb *schemas.Table) map[string]int {
	out := make(map[string]int, len(tb.Columns))
	for i, c := range tb.Columns {
		out[c.Name] = i
	}
	return out
}

// participant writes one participant's row, their interviews rows (one
// per wave of the study) and the items of each dated interview (ivs sorted
// by wave). In participants, baseline is the study's first wave and
// follow-up its primary wave (analysis.primary_wave, by default the last).
func (k *tableSink) participant(ivs []*Interview) error {
	bw, pw := k.env.Study.BaselineWave(), k.env.Study.PrimaryWave()
	var base, fu *Interview
	withdrawn := false
	for _, iv := range ivs {
		switch iv.Wave {
		case bw:
			base = iv
		case pw:
			fu = iv
		}
		withdrawn = withdrawn || iv.Withdrawn
	}
	first := ivs[0]
	if base != nil {
		first = base
	}
	team, _ := k.env.Study.Team(first.Team)
	sid := k.res.trust + "-" + first.Pid
	rw, c := k.parts, k.pc
	rw.Str(c["study_id"], sid)
	rw.Str(c["trust"], k.res.trust)
	rw.Str(c["team"], team.Code)
	rw.Str(c["arm"], team.Arm)
	for i, col := range k.env.Study.CodedDemographics() {
		v := ""
		if base != nil {
			v = base.Demo[i]
		}
		rw.NullStr(c[col], v)
	}
	for i, col := range k.env.Study.BinaryDemographics() {
		if base != nil {
			rw.Int32(c[col], base.Flags[i], base.Flags[i] != NullInt)
		} else {
			rw.Null(c[col])
		}
	}
	rw.Bool(c["withdrawn"], withdrawn)
	rw.Date(c["baseline_date"], dateOf(base), base != nil && base.interviewed())
	rw.Date(c["followup_date"], dateOf(fu), fu != nil && fu.interviewed())
	rw.Bool(c["interviewed_baseline"], base != nil && base.interviewed())
	rw.Bool(c["interviewed_followup"], fu != nil && fu.interviewed())
	if err := rw.RowDone(); err != nil {
		return err
	}
	if err := k.interviews(sid, ivs, team, withdrawn); err != nil {
		return err
	}
	for _, iv := range ivs {
		if !iv.interviewed() {
			continue
		}
		team, _ := k.env.Study.Team(iv.Team)
		if err := k.resp.interview(sid, iv, team.Code, team.Arm); err != nil {
			return err
		}
	}
	return nil
}

// interviews writes a participant's rows of the interviews table: one per
// wave of the study, in the study's order (as responses), whether or not
// the export has a row for it. withdrawn is the participant's (as
// participants.withdrawn) on every row; team and arm are the participant's.
func (k *tableSink) interviews(sid string, ivs []*Interview, team *schemas.Team, withdrawn bool) error {
	rw, c := k.ivw, k.ic
	next := 0 // ivs are in wave order
	for _, w := range k.env.Study.Waves {
		var iv *Interview
		for next < len(ivs) && k.env.Study.WaveIndex(ivs[next].Wave) <= k.env.Study.WaveIndex(w) {
			if ivs[next].Wave == w {
				iv = ivs[next]
			}
			next++
		}
		on := iv != nil && iv.interviewed()
		rw.Str(c["study_id"], sid)
		rw.Str(c["wave"], w)
		rw.Date(c["interview_date"], dateOf(iv), on)
		rw.Bool(c["interviewed"], on)
		rw.Bool(c["withdrawn"], withdrawn)
		rw.Str(c["trust"], k.res.trust)
		rw.Str(c["team"], team.Code)
		rw.Str(c["arm"], team.Arm)
		if err := rw.RowDone(); err != nil {
			return err
		}
	}
	return nil
}

func dateOf(iv *Interview) int32 {
	if iv == nil {
		return 0
	}
	return iv.Date
}

// ratings writes a fidelity export's accepted ratings, sorted by key.
func (k *tableSink) ratings(rs []*rating) error {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].team != rs[j].team {
			return rs[i].team < rs[j].team
		}
		if rs[i].period != rs[j].period {
			return rs[i].period < rs[j].period
		}
		return rs[i].rater < rs[j].rater
	})
	comps := k.env.Study.Fidelity.Components
	order := make([]int, len(comps))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return comps[order[a]].Code < comps[order[b]].Code })
	tb := k.env.Study.Tables.Table("fidelity_ratings")
	col := func(c string) int { return warehouse.ColIndex(tb, c) }
	rw := k.fid
	for _, r := range rs {
		team, _ := k.env.Study.Team(r.team)
		for _, i := range order {
			rw.Str(col("team"), r.team)
			rw.Str(col("period"), r.period)
			rw.Str(col("rater_id"), r.rater)
			rw.Str(col("component"), comps[i].Code)
			rw.Str(col("trust"), k.res.trust)
			rw.Str(col("arm"), team.Arm)
			rw.Str(col("rater_role"), r.role)
			rw.Date(col("rating_date"), r.date, r.date != NullInt)
			rw.Int32(col("value"), r.values[i], r.values[i] != NullInt)
			rw.Str(col("source_sha256"), k.sha)
			rw.Int32(col("source_line"), int32(r.line), true)
			if err := rw.RowDone(); err != nil {
				return err
			}
		}
	}
	return nil
}

// close finishes the tables.
func (k *tableSink) close() error {
	for _, rw := range []*warehouse.RowWriter{k.parts, k.ivw, k.fid} {
		if rw == nil {
			continue
		}
		if err := rw.Close(); err != nil {
			return err
		}
	}
	if k.resp != nil {
		if err := k.resp.close(); err != nil {
			return err
		}
	}
	k.parts, k.ivw, k.resp, k.fid = nil, nil, nil, nil
	return nil
}

func (k *tableSink) abort() {
	for _, rw := range []*warehouse.RowWriter{k.parts, k.ivw, k.fid} {
		if rw != nil {
			rw.Abort()
		}
	}
	if k.resp != nil {
		k.resp.abort()
	}
	k.parts, k.ivw, k.resp, k.fid = nil, nil, nil, nil
}

// WriteIngestFiles mirrors the ledger's files, sorted by SHA-256.
func WriteIngestFiles(ctx context.Context, env warehouse.Env, tx *warehouse.Tx) error {
	const name = "ingest_files"
	tb := env.Study.Tables.Table(name)
	schema := warehouse.ArrowSchema(env, name, nil)
	tf, err := tx.CreateTableFile(schema, name, "", "", "data")
	if err != nil {
		return err
	}
	rw := warehouse.NewRowWriter(schema, tf)
	files := append([]*warehouse.FileEntry(nil), tx.Ledger.Files...)
	sort.Slice(files, func(i, j int) bool {
		if files[i].SHA256 != files[j].SHA256 {
			return files[i].SHA256 < files[j].SHA256
		}
		return files[i].Name < files[j].Name
	})
	col := func(c string) int { return warehouse.ColIndex(tb, c) }
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

// WriteProblems writes a problem list as CSV. Cells that a spreadsheet
// would read as a formula are prefixed with an apostrophe.
func WriteProblems(w io.Writer, probs []Problem) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"file", "line", "column", "rule", "severity", "message"}); err != nil {
		return err
	}
	for _, p := range probs {
		if err := cw.Write(problemRecord(p)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// problemRecord is a problem list's CSV record of p.
func problemRecord(p Problem) []string {
	return []string{safeCell(p.File), strconv.Itoa(p.Line), safeCell(p.Column), p.Code, p.Severity, safeCell(p.Message)}
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
