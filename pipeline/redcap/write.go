package redcap

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The files WriteProject writes.
const (
	DictionaryFile = "data_dictionary.csv"
	EventsFile     = "events.csv"
	MappingFile    = "instrument_event_mapping.csv"
	DAGsFile       = "data_access_groups.csv"
)

// DictionaryRows returns the data dictionary: its header (the 18 columns)
// then one row per field.
func (p *Project) DictionaryRows() [][]string {
	rows := [][]string{DictionaryColumns[:]}
	for _, f := range p.Fields() {
		req := ""
		if f.Required {
			req = "y"
		}
		rows = append(rows, []string{
			f.Name, f.Form, f.Section, f.Type, f.Label, choicesCell(f.Choices), f.Note,
			f.Validation, f.Min, f.Max,
			"", // Identifier?: nothing identifying is a field
			"", req, "", "", "", "", "",
		})
	}
	return rows
}

// choicesCell is REDCap's "code, Label | code, Label" list.
func choicesCell(cs []Choice) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Code + ", " + c.Label
	}
	return strings.Join(parts, " | ")
}

// EventRows are the events upload: event_name, arm_num, unique_event_name.
func (p *Project) EventRows() [][]string {
	rows := [][]string{{"event_name", "arm_num", "unique_event_name"}}
	for _, e := range p.Events {
		rows = append(rows, []string{e.Name, "1", e.Unique})
	}
	return rows
}

// MappingRows are the instrument–event mapping upload: arm_num,
// unique_event_name, form; events in wave order, forms in project order.
func (p *Project) MappingRows() [][]string {
	rows := [][]string{{"arm_num", "unique_event_name", "form"}}
	for _, e := range p.Events {
		for _, f := range p.Forms {
			for _, w := range f.Waves {
				if w == e.Wave {
					rows = append(rows, []string{"1", e.Unique, f.Name})
				}
			}
		}
	}
	return rows
}

// DAGRows are the data access groups upload: data_access_group_name,
// unique_group_name.
func (p *Project) DAGRows() [][]string {
	rows := [][]string{{"data_access_group_name", "unique_group_name"}}
	for _, d := range p.DAGs {
		rows = append(rows, []string{d.Name, d.Unique})
	}
	return rows
}

// WriteProject writes the project's four upload files into dir (created
// 0700 when missing): the data dictionary, the events, the instrument–event
// mapping and the data access groups. Each file is written 0600 under a
// temporary name and renamed into place when complete.
func (p *Project) WriteProject(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	files := []struct {
		name string
		rows [][]string
	}{
		{DictionaryFile, p.DictionaryRows()},
		{EventsFile, p.EventRows()},
		{MappingFile, p.MappingRows()},
		{DAGsFile, p.DAGRows()},
	}
	var out []string
	for _, f := range files {
		if err := writeCSVAtomic(dir, f.name, f.rows); err != nil {
			return out, err
		}
		out = append(out, f.name)
	}
	return out, nil
}

// writeCSVAtomic writes rows as CSV to dir/name, 0600, through a temporary
// file renamed into place.
func writeCSVAtomic(dir, name string, rows [][]string) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.WriteAll(rows); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return WriteFileAtomic(dir, name, buf.Bytes())
}

// WriteFileAtomic writes b to dir/name, 0600, through a temporary file in
// dir renamed into place: a reader never sees a partial file.
func WriteFileAtomic(dir, name string, b []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	ok = true
	return nil
}
