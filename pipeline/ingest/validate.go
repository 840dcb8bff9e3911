package ingest

import (
	"context"
	"fmt"
	"io"

	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// FileCheck is what validating one export found.
type FileCheck struct {
	Name         string
	Trust        string
	Kind         string
	RowsRead     int64
	RowsAccepted int64
	RowsRejected int64
	Quarantine   string // quarantine code, "" when the file would be read
	Problems     []Problem
}

// Validate is `cpi validate`: the checks of ingest on each file, with
// nothing written anywhere. It returns one FileCheck per file, in path
// order; its error is an I/O failure or cancellation.
func Validate(ctx context.Context, env warehouse.Env, paths []string) ([]FileCheck, error) {
	files, err := listExports(env.Study, paths)
	if err != nil {
		return nil, err
	}
	out := make([]FileCheck, 0, len(files))
	for _, f := range files {
		switch f.status {
		case warehouse.OutcomeIgnored:
			env.Logger().Info("ignored: "+f.reason, "file", f.name)
			continue
		case warehouse.OutcomeRefused:
			env.Logger().Warn("skipped: "+f.reason, "file", f.name)
			continue
		}
		if parts, ok, err := validateRedcap(ctx, env, f.path, f.name); err != nil {
			return nil, fmt.Errorf("validate %s: %w", f.name, err)
		} else if ok {
			out = append(out, parts...)
			continue
		}
		c, err := validateFile(ctx, env, f.path, f.name, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// validateFile checks one export (named name) at path; src is the split's
// record of a part of a REDCap export (nil for any other export).
func validateFile(ctx context.Context, env warehouse.Env, path, name string, src *SplitRecord) (FileCheck, error) {
	{
		res, err := readExport(ctx, env, path, name, src, nil, "")
		if err != nil {
			res.close()
			return FileCheck{}, fmt.Errorf("validate %s: %w", name, err)
		}
		c := FileCheck{
			Name: res.name, Trust: res.trust, Kind: res.kind, RowsRead: res.rowsRead,
			RowsAccepted: res.rowsAccepted, RowsRejected: res.rowsRejected,
			Quarantine: res.quarantine,
		}
		err = res.eachProblem(func(p Problem) error {
			c.Problems = append(c.Problems, p)
			return nil
		})
		res.close()
		if err != nil {
			return FileCheck{}, fmt.Errorf("validate %s: %w", name, err)
		}
		return c, nil
	}
}

// PrintChecks writes a readable problem list, file by file, and returns a
// *ProblemsError when there is any problem (warnings included).
func PrintChecks(w io.Writer, checks []FileCheck) error {
	pe := &warehouse.ProblemsError{}
	for _, c := range checks {
		status := fmt.Sprintf("%d rows read, %d accepted, %d rejected", c.RowsRead, c.RowsAccepted, c.RowsRejected)
		if c.Quarantine != "" {
			status = "QUARANTINED (" + c.Quarantine + "): nothing of it would be loaded"
		}
		kind := c.Kind
		if kind == "" {
			kind = "unknown kind"
		}
		trust := c.Trust
		if trust == "" {
			trust = "unknown trust"
		}
		fmt.Fprintf(w, "%s [%s, %s]: %s\n", c.Name, trust, kind, status)
		for _, p := range c.Problems {
			where := fmt.Sprintf("line %d", p.Line)
			if p.Line == 0 {
				where = "file"
			}
			if p.Column != "" {
				where += ", " + p.Column
			}
			fmt.Fprintf(w, "  %s: %s %s: %s\n", where, p.Severity, p.Code, p.Message)
			if p.Severity == SeverityWarning {
				pe.Warnings++
			}
		}
		pe.Rejected += c.RowsRejected
		if c.Quarantine != "" {
			pe.Quarantined++
		}
	}
	if pe.Rejected > 0 || pe.Quarantined > 0 || pe.Warnings > 0 {
		return pe
	}
	return nil
}
