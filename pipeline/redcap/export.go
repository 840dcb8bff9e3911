package redcap

import (
	"encoding/csv"
	"fmt"
	"io"
)

// ExportWriter writes a raw records export of the project, as REDCap's
// "CSV / Microsoft Excel (raw data)" export lays it out: the header of
// ExportColumns, then one row per record and event.
type ExportWriter struct {
	p     *Project
	w     *csv.Writer
	cells []string
	// formAt[f][wave] reports whether form f is collected at wave.
	formAt []map[string]bool
	ids    map[string]string // record_id -> DAG, to refuse one id in two DAGs
}

// NewExportWriter writes the header of p's records export to w.
func NewExportWriter(w io.Writer, p *Project) (*ExportWriter, error) {
	ew := &ExportWriter{p: p, w: csv.NewWriter(w), cells: make([]string, len(p.ExportColumns())), ids: map[string]string{}}
	for _, f := range p.Forms {
		at := map[string]bool{}
		for _, wv := range f.Waves {
			at[wv] = true
		}
		ew.formAt = append(ew.formAt, at)
	}
	if err := ew.w.Write(p.ExportColumns()); err != nil {
		return nil, fmt.Errorf("write records header: %w", err)
	}
	return ew, nil
}

// Write writes one record's row at one wave. value gives the canonical
// cell of a canonical column ("" blank). A form not collected at the wave
// is left blank; a collected form's status is 2 (complete) when any of its
// fields has a value, else 0 (incomplete). A record_id met before in
// another data access group is refused: REDCap's record ids are unique in
// the project.
func (ew *ExportWriter) Write(recordID, team, wave string, value func(column string) string) error {
	dag := DAGName(team)
	if prev, ok := ew.ids[recordID]; ok && prev != dag {
		return fmt.Errorf("one record id in two data access groups (%s and %s): REDCap record ids are unique in a project", prev, dag)
	}
	ew.ids[recordID] = dag
	ew.cells[0], ew.cells[1], ew.cells[2] = recordID, EventName(wave), dag
	i := 3
	for k, f := range ew.p.Forms {
		at := ew.formAt[k][wave]
		any := false
		for _, fd := range f.Fields {
			if fd.Name == RecordID {
				continue
			}
			v := ""
			if at {
				v = value(fd.Canonical)
			}
			any = any || v != ""
			ew.cells[i] = v
			i++
		}
		switch {
		case !at:
			ew.cells[i] = ""
		case any:
			ew.cells[i] = "2"
		default:
			ew.cells[i] = "0"
		}
		i++
	}
	return ew.w.Write(ew.cells)
}

// Flush writes out what is buffered.
func (ew *ExportWriter) Flush() error {
	ew.w.Flush()
	if err := ew.w.Error(); err != nil {
		return fmt.Errorf("write records: %w", err)
	}
	return nil
}
