package redcap

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/connectingpeople/cpi/schemas"
)

// Quarantine codes of a REDCap records export that cannot be split into
// the trusts' parts (stable: part of the ledger and problem-list contract).
const (
	// CodeLabelExport: labels instead of raw names or codes (REDCap's
	// "CSV / Microsoft Excel (labels)" export).
	CodeLabelExport = "redcap_label_export"
	// CodeOtherProject: the export's columns are not this study's project
	// (record_id, redcap_event_name, redcap_data_access_group and every
	// field of the project's dictionary).
	CodeOtherProject = "redcap_other_project"
	// CodeUnknownDAG: a row whose data access group is no team's.
	CodeUnknownDAG = "redcap_unknown_dag"
	// CodeUnknownCheckbox: a checkbox column (field___code) of a field
	// the project does not have, or of a code the field does not have.
	CodeUnknownCheckbox = "redcap_unknown_checkbox"
	// CodeMalformed: not readable as UTF-8 CSV, or a row of another width
	// than the header.
	CodeMalformed = "redcap_malformed"
)

// HowToExport is said with every quarantine of a REDCap export.
const HowToExport = "export the records from REDCap's Data Exports as \"CSV / Microsoft Excel (raw data)\", all instruments and events, with the data access group column (the project made by `cpi redcap dictionary`)"

// SplitError says why a REDCap export cannot be split; it carries the
// place and a stable Code, never a cell value.
type SplitError struct {
	Code   string
	Line   int // 1-based; 0 when n/a
	Column string
	Msg    string
}

func (e *SplitError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Code, e.Msg)
	}
	return e.Code + ": " + e.Msg
}

// Part is one trust's rows of a REDCap export, as a canonical participants
// export (DESIGN §5): the canonical header, then one row per record and
// event, in the export's order.
type Part struct {
	Trust string
	Rows  int
	CSV   []byte
}

// Split reads a raw records export of the study's project and returns, for
// every trust with rows in it (in the study's trust order), those rows as
// a canonical participants export: record_id → participant_id, the data
// access group → team_code, the event → wave (an event the project does
// not have is kept as it is, so the validator rejects the row), each field
// to its canonical column, <form>_complete columns dropped, checkbox
// columns field___code to their field (the code whose box is ticked;
// several ticked gives a value no code list holds, so the row is
// rejected). Nothing is validated beyond what the split needs: the parts
// go through ingest's validation like any export.
//
// An export that cannot be split returns a *SplitError: labels instead of
// raw data, another project's columns, a data access group that is no
// team's (its rows could be no trust's), a checkbox column of an unknown
// field or code, malformed CSV.
func Split(s *schemas.Study, p *Project, r io.Reader) ([]Part, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, &SplitError{Code: CodeMalformed, Line: 1, Msg: "no readable header line; " + HowToExport}
	}
	head = slices.Clone(head)
	if len(head) > 0 {
		head[0] = strings.TrimPrefix(head[0], "\uFEFF")
	}
	for i := range head {
		head[i] = strings.TrimSpace(head[i])
	}
	if err := checkLabels(head); err != nil {
		return nil, err
	}
	canon := s.ExportFields(schemas.KindParticipants)
	canonIdx := map[string]int{}
	for i, f := range canon {
		canonIdx[f.Name] = i
	}
	fields := map[string]Field{}
	for _, f := range p.Fields() {
		fields[f.Name] = f
	}
	forms := map[string]bool{}
	for _, f := range p.Forms {
		forms[f.Name] = true
	}
	// Where each export column goes.
	type checkbox struct {
		dst  int
		code string
	}
	dst := make([]int, len(head)) // canonical index, -1 dropped
	boxes := map[int]checkbox{}
	ev, dag := -1, -1
	seen := map[string]bool{}
	for i, h := range head {
		dst[i] = -1
		switch {
		case h == RecordID:
			dst[i] = canonIdx["participant_id"]
		case h == EventColumn:
			ev = i
		case h == DAGColumn:
			dag = i
		case strings.HasSuffix(h, CompleteSuffix) && forms[strings.TrimSuffix(h, CompleteSuffix)]:
		case strings.Contains(h, CheckboxSep):
			// REDCap writes a code into a column name lower-cased, every
			// character outside a–z and 0–9 as _ (18-24: age_band___18_24).
			name, colCode, _ := strings.Cut(h, CheckboxSep)
			f, ok := fields[name]
			code := ""
			for _, c := range f.Choices {
				if c.Code == colCode || uniqueName(c.Code) == colCode {
					code = c.Code
				}
			}
			if !ok || code == "" {
				return nil, &SplitError{Code: CodeUnknownCheckbox, Line: 1, Column: fmt.Sprintf("column %d", i+1),
					Msg: fmt.Sprintf("column %d is a checkbox of a field or code the study's project does not have; %s", i+1, HowToExport)}
			}
			boxes[i] = checkbox{canonIdx[f.Canonical], code}
			seen[name] = true
		default:
			f, ok := fields[h]
			if !ok {
				return nil, &SplitError{Code: CodeOtherProject, Line: 1, Column: fmt.Sprintf("column %d", i+1),
					Msg: fmt.Sprintf("column %d is no field of the study's project: an export of another project? %s", i+1, HowToExport)}
			}
			dst[i] = canonIdx[f.Canonical]
			seen[h] = true
		}
	}
	if head[0] != RecordID || ev < 0 || dag < 0 {
		return nil, &SplitError{Code: CodeOtherProject, Line: 1,
			Msg: "the export does not start with record_id or lacks redcap_event_name or redcap_data_access_group: an export of another project, or without events or data access groups? " + HowToExport}
	}
	missing := 0
	for name := range fields {
		if name != RecordID && !seen[name] {
			missing++
		}
	}
	if missing > 0 {
		return nil, &SplitError{Code: CodeOtherProject, Line: 1,
			Msg: fmt.Sprintf("%d fields of the study's project are not in the export: another project's export, or a selection of its fields? %s", missing, HowToExport)}
	}
	teams := map[string]DAG{}
	dagLabels := map[string]bool{}
	for _, d := range p.DAGs {
		teams[d.Unique] = d
		dagLabels[d.Name] = true
	}
	waves := map[string]string{}
	waveLabels := map[string]bool{}
	for _, e := range p.Events {
		waves[e.Unique] = e.Wave
		waveLabels[e.Name] = true
	}
	out := map[string][][]string{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			return nil, &SplitError{Code: CodeMalformed, Line: line, Msg: "malformed CSV (unbalanced quotes?); " + HowToExport}
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(head) {
			return nil, &SplitError{Code: CodeMalformed, Line: line, Msg: fmt.Sprintf("a row of %d cells under a header of %d", len(rec), len(head))}
		}
		d, ok := teams[strings.TrimSpace(rec[dag])]
		if !ok {
			if dagLabels[strings.TrimSpace(rec[dag])] || waveLabels[strings.TrimSpace(rec[ev])] {
				return nil, &SplitError{Code: CodeLabelExport, Line: line, Column: DAGColumn,
					Msg: "data access groups or events are given by their labels, not their unique names: a label export? " + HowToExport}
			}
			return nil, &SplitError{Code: CodeUnknownDAG, Line: line, Column: DAGColumn,
				Msg: "the row's data access group is no team of the study (blank, or a group the study does not have): assign the record to its team's group in REDCap"}
		}
		row := make([]string, len(canon))
		row[canonIdx["team_code"]] = d.Team
		w, ok := waves[strings.TrimSpace(rec[ev])]
		if !ok {
			w = rec[ev] // no wave: the validator rejects the row
		}
		row[canonIdx["wave"]] = w
		for i, c := range rec {
			if dst[i] >= 0 {
				row[dst[i]] = c
				continue
			}
			if b, ok := boxes[i]; ok && strings.TrimSpace(c) == "1" {
				if row[b.dst] != "" {
					row[b.dst] = "several_ticked" // no code: rejected
				} else {
					row[b.dst] = b.code
				}
			}
		}
		if err := checkLabelCells(canon, row, line); err != nil {
			return nil, err
		}
		out[d.Trust] = append(out[d.Trust], row)
	}
	var parts []Part
	for _, t := range s.Trusts {
		rows := out[t.Code]
		if len(rows) == 0 {
			continue
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		hdr := make([]string, len(canon))
		for i, f := range canon {
			hdr[i] = f.Name
		}
		_ = w.Write(hdr)
		_ = w.WriteAll(rows)
		if err := w.Error(); err != nil {
			return nil, fmt.Errorf("write part of %s: %w", t.Code, err)
		}
		parts = append(parts, Part{Trust: t.Code, Rows: len(rows), CSV: buf.Bytes()})
	}
	return parts, nil
}

// checkLabels recognises the header of a label export: REDCap's labels of
// its own columns.
func checkLabels(head []string) error {
	for _, h := range head {
		switch h {
		case "Record ID", "Event Name", "Data Access Group", "Complete?":
			return &SplitError{Code: CodeLabelExport, Line: 1,
				Msg: "the header holds field labels, not variable names: a label export? " + HowToExport}
		}
	}
	return nil
}

// checkLabelCells recognises labels in a row's coded cells: "Yes"/"No" in
// a 0/1 column, or a choice's label ("Female") where its code (female)
// belongs.
func checkLabelCells(canon []schemas.Field, row []string, line int) error {
	for i, f := range canon {
		v := row[i]
		if v == "" {
			continue
		}
		label := false
		switch {
		case f.Type == schemas.FieldInt && f.Min == 0 && f.Max == 1 && f.Instrument == "":
			label = v == "Yes" || v == "No"
		case f.Type == schemas.FieldCode && f.Name != "team_code" && f.Name != "wave":
			if !slices.Contains(f.Codes, v) {
				label = slices.ContainsFunc(f.Codes, func(c string) bool { return humanize(c) == v })
			}
		}
		if label {
			return &SplitError{Code: CodeLabelExport, Line: line, Column: f.Name,
				Msg: fmt.Sprintf("%s holds a choice's label, not its raw code: a label export? %s", f.Name, HowToExport)}
		}
	}
	return nil
}
