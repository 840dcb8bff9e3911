package synth

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/connectingpeople/cpi/pipeline/redcap"
	"github.com/connectingpeople/cpi/schemas"
)

// WriteRedcap writes the participants of the synthetic study as one REDCap
// raw records export of the study's project (redcap.Build) into dir:
// redcap.FileName(s, export date), every trust in it, each row the one
// the canonical export holds (WriteSynth with Canonical) in REDCap's
// layout: participant_id as record_id, team as data access group, wave as
// event. Demographics are written at the baseline event only (the
// demographics form's one event); the canonical export's occasional
// repeat of them at a later wave has no place in the project. Fidelity
// ratings are not captured in REDCap: write them with WriteSynth.
func WriteRedcap(ctx context.Context, s *schemas.Study, opts SynthOptions, dir string) (SynthFile, error) {
	opts, err := opts.withDefaults(s)
	if err != nil {
		return SynthFile{}, err
	}
	p, err := redcap.Build(s)
	if err != nil {
		return SynthFile{}, err
	}
	if err := synthMkdir(dir); err != nil {
		return SynthFile{}, err
	}
	name := redcap.FileName(s, opts.ExportDate)
	var buf bytes.Buffer
	ew, err := redcap.NewExportWriter(&buf, p)
	if err != nil {
		return SynthFile{}, err
	}
	coded, flags := s.CodedDemographics(), s.BinaryDemographics()
	col := map[string]func(*SynthInterview) string{
		"participant_id": func(r *SynthInterview) string { return r.ParticipantID },
		"interview_date": func(r *SynthInterview) string {
			if r.Date.IsZero() {
				return ""
			}
			return r.Date.Format("2006-01-02")
		},
		"withdrawn": func(r *SynthInterview) string {
			if r.Withdrawn {
				return "1"
			}
			return "0"
		},
	}
	for i, n := range coded {
		col[n] = func(r *SynthInterview) string { return r.Demo[i] }
	}
	for i, n := range flags {
		col[n] = func(r *SynthInterview) string { return valueText(r.Flags[i]) }
	}
	var rows int64
	err = Synthesize(ctx, s, opts, func(trust string, r *SynthInterview) error {
		idx := map[string]int{}
		for i, n := range r.ItemNames {
			idx[n] = i
		}
		rows++
		return ew.Write(r.ParticipantID, r.Team, r.Wave, func(column string) string {
			if f, ok := col[column]; ok {
				return f(r)
			}
			if i, ok := idx[column]; ok {
				return valueText(r.Items[i])
			}
			return ""
		})
	})
	if err != nil {
		return SynthFile{}, fmt.Errorf("write %s: %w", name, err)
	}
	if err := ew.Flush(); err != nil {
		return SynthFile{}, err
	}
	if err := redcap.WriteFileAtomic(dir, name, buf.Bytes()); err != nil {
		return SynthFile{}, err
	}
	return SynthFile{Kind: schemas.KindParticipants, Name: name, Path: filepath.Join(dir, name), Rows: rows}, nil
}

func valueText(v SynthValue) string {
	if !v.Valid {
		return ""
	}
	return strconv.Itoa(int(v.Value))
}

// WriteRedcapStudy writes the synthetic study as a REDCap project sends
// it: the participants of every trust in one REDCap records export
// (WriteRedcap), and every trust's fidelity export, in its dialect or,
// with opts.Canonical, in the canonical format (as WriteSynth writes it).
// The REDCap file comes first, then the fidelity files in trust order.
func WriteRedcapStudy(ctx context.Context, s *schemas.Study, opts SynthOptions, dir string) ([]SynthFile, error) {
	opts, err := opts.withDefaults(s)
	if err != nil {
		return nil, err
	}
	rf, err := WriteRedcap(ctx, s, opts, dir)
	if err != nil {
		return nil, err
	}
	out := []SynthFile{rf}
	var components []string
	for _, c := range s.Fidelity.Components {
		components = append(components, c.Code)
	}
	for _, t := range s.Trusts {
		site := s.Sites[t.Code]
		if site == nil {
			return out, fmt.Errorf("trust %s has no site mapping", t.Code)
		}
		name := site.FileName(schemas.KindFidelity, opts.ExportDate)
		if opts.Canonical || site.Format == schemas.FormatRedcap {
			site = schemas.Canonical(t.Code)
			name = schemas.CanonicalFileName(t.Code, schemas.KindFidelity, opts.ExportDate)
		}
		fd, err := newSynthDialect(s, site, schemas.KindFidelity, components)
		if err != nil {
			return out, fmt.Errorf("%s: %w", t.Code, err)
		}
		f, err := synthWriteFile(ctx, dir, name, fd, "Fidelity", opts.ExportDate, func(emit func([]synthCell) error) error {
			return synthRatings(ctx, s, opts, t.Code, func(r *SynthRating) error { return emit(fd.rating(r)) })
		})
		if err != nil {
			return out, err
		}
		out = append(out, SynthFile{Trust: t.Code, Kind: schemas.KindFidelity, Name: f.Name, Path: f.Path, Rows: f.Rows})
	}
	return out, nil
}
