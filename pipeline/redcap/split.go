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
	// (record_id, redcap_event_name or redcap_data_access_group missing,
	// fewer than half of the project's fields, or more foreign columns than
	// fields of the project). An older version of the project, lacking
	// fields added since, is split all the same.
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

// Part is one trust's rows of a REDCap export, as a participants export
// (DESIGN §5): a header of the canonical columns the export has (all of
// them for an export of the study's current project; an older project's
// export lacks the fields added since, and the validator warns of each
// missing column) and then any column foreign to the project, then one row
// per record and event, in the export's order.
type Part struct {
	Trust string
	Rows  int
	CSV   []byte
	// Lines are the lines of the REDCap export the part's rows came from
	// (1-based, the header is line 1): the part's row on line i+2 is the
	// export's line Lines[i].
	Lines []int
	// Missing counts, per canonical column, the cells that held one of the
	// project's missing-data codes (study key redcap.missing_codes) and
	// were made blanks; canonical column order, counts above zero only.
	Missing []MissingCount
}

// MissingCount is how many cells of one column held a missing-data code.
type MissingCount struct {
	Column string `json:"column"`
	Cells  int    `json:"cells"`
}

// Split reads a raw records export of the study's project and returns, for
// every trust with rows in it (in the study's trust order), those rows as
// a participants export: record_id → participant_id, the data access
// group → team_code, the event → wave (an event the project does not have
// is kept as it is, so the validator rejects the row), each field to its
// canonical column, <form>_complete columns dropped, checkbox columns
// field___code to their field (the code whose box is ticked; several
// ticked gives a value no code list holds, so the row is rejected). A cell
// holding one of the project's missing-data codes (s.Redcap.MissingCodes;
// in a checkbox column, the box of such a code ticked) becomes a blank,
// counted per column in the part's Missing. Nothing is validated beyond
// what the split needs: the parts go through ingest's validation like any
// export.
//
// An export of an older version of the project, lacking fields added
// since, is split all the same: its parts lack those columns (the
// validator warns of each, and what they score is null). A column foreign
// to the project is carried into the parts under its name (the validator
// warns of it as an unknown column).
//
// An export that cannot be split returns a *SplitError: labels instead of
// raw data, another project's export (record_id, redcap_event_name or
// redcap_data_access_group missing, fewer than half of the project's
// fields, or more foreign columns than fields of the project), a data
// access group that is no team's (its rows could be no trust's), a
// checkbox column of an unknown field or code, malformed CSV.
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
	missingCode := map[string]bool{}
	missingBox := map[string]bool{} // REDCap's column form of each code
	for _, c := range s.Redcap.MissingCodes {
		missingCode[c] = true
		missingBox[uniqueName(c)] = true
	}
	// Where each export column goes: a canonical index, or past the
	// canonical columns a foreign column's place; -1 dropped.
	type checkbox struct {
		dst     int
		code    string
		missing bool // the box of a missing-data code
	}
	dst := make([]int, len(head))
	boxes := map[int]checkbox{}
	ev, dag := -1, -1
	seen := map[string]bool{}
	present := make([]bool, len(canon))
	present[canonIdx["participant_id"]] = true
	present[canonIdx["team_code"]] = true
	present[canonIdx["wave"]] = true
	var foreign []string
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
			isMissing := ok && code == "" && missingBox[colCode]
			if !ok || code == "" && !isMissing {
				return nil, &SplitError{Code: CodeUnknownCheckbox, Line: 1, Column: fmt.Sprintf("column %d", i+1),
					Msg: fmt.Sprintf("column %d is a checkbox of a field or code the study's project does not have; %s", i+1, HowToExport)}
			}
			boxes[i] = checkbox{canonIdx[f.Canonical], code, isMissing}
			present[canonIdx[f.Canonical]] = true
			seen[name] = true
		default:
			f, ok := fields[h]
			if !ok {
				dst[i] = len(canon) + len(foreign)
				foreign = append(foreign, h)
				continue
			}
			dst[i] = canonIdx[f.Canonical]
			present[dst[i]] = true
			seen[h] = true
		}
	}
	if len(head) == 0 || head[0] != RecordID || ev < 0 || dag < 0 {
		return nil, &SplitError{Code: CodeOtherProject, Line: 1,
			Msg: "the export does not start with record_id or lacks redcap_event_name or redcap_data_access_group: an export of another project, or without events or data access groups? " + HowToExport}
	}
	found, want := 0, 0
	for name := range fields {
		if name == RecordID {
			continue
		}
		want++
		if seen[name] {
			found++
		}
	}
	if 2*found < want || len(foreign) > found {
		return nil, &SplitError{Code: CodeOtherProject, Line: 1,
			Msg: fmt.Sprintf("%d of the %d fields of the study's project are in the export, and %d columns that are none: another project's export? %s", found, want, len(foreign), HowToExport)}
	}
	for _, h := range foreign {
		if _, clash := canonIdx[h]; clash {
			return nil, &SplitError{Code: CodeOtherProject, Line: 1, Column: h,
				Msg: fmt.Sprintf("column %s is no field of the study's project but the name of a canonical column: another project's export? %s", h, HowToExport)}
		}
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
	type trustRows struct {
		rows    [][]string
		lines   []int
		missing []int // per canonical column
	}
	out := map[string]*trustRows{}
	width := len(canon) + len(foreign)
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
		tr := out[d.Trust]
		if tr == nil {
			tr = &trustRows{missing: make([]int, len(canon))}
			out[d.Trust] = tr
		}
		row := make([]string, width)
		row[canonIdx["team_code"]] = d.Team
		w, ok := waves[strings.TrimSpace(rec[ev])]
		if !ok {
			w = rec[ev] // no wave: the validator rejects the row
		}
		row[canonIdx["wave"]] = w
		for i, c := range rec {
			if dst[i] >= 0 {
				if dst[i] < len(canon) && i != 0 && len(missingCode) > 0 && missingCode[strings.TrimSpace(c)] {
					tr.missing[dst[i]]++
					continue
				}
				row[dst[i]] = c
				continue
			}
			if b, ok := boxes[i]; ok && strings.TrimSpace(c) == "1" {
				switch {
				case b.missing:
					tr.missing[b.dst]++
				case row[b.dst] != "":
					row[b.dst] = "several_ticked" // no code: rejected
				default:
					row[b.dst] = b.code
				}
			}
		}
		if err := checkLabelCells(canon, row, line); err != nil {
			return nil, err
		}
		tr.rows = append(tr.rows, row)
		tr.lines = append(tr.lines, line)
	}
	// The part's columns: the canonical ones present, then the foreign.
	var keep []int
	var hdr []string
	for i, f := range canon {
		if present[i] {
			keep = append(keep, i)
			hdr = append(hdr, f.Name)
		}
	}
	for i, h := range foreign {
		keep = append(keep, len(canon)+i)
		hdr = append(hdr, h)
	}
	var parts []Part
	for _, t := range s.Trusts {
		tr := out[t.Code]
		if tr == nil {
			continue
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		_ = w.Write(hdr)
		cells := make([]string, len(keep))
		for _, row := range tr.rows {
			for k, i := range keep {
				cells[k] = row[i]
			}
			_ = w.Write(cells)
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return nil, fmt.Errorf("write part of %s: %w", t.Code, err)
		}
		pt := Part{Trust: t.Code, Rows: len(tr.rows), CSV: buf.Bytes(), Lines: tr.lines}
		for i, n := range tr.missing {
			if n > 0 {
				pt.Missing = append(pt.Missing, MissingCount{Column: canon[i].Name, Cells: n})
			}
		}
		parts = append(parts, pt)
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
