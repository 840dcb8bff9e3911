package synth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/connectingpeople/cpi/schemas"
)

// The synthetic study generator (DESIGN §4 "cpi synth"): a realistic study
// of every trust in the study definition, streamed participant by
// participant, and written as each trust's own export dialect (or all in
// the canonical format of DESIGN §5).
//
// The participant model is in synth_model.go, its answers to each
// instrument in synth_items.go, the fidelity ratings in synth_fidelity.go
// and the file writers (CSV and XLSX dialects) in synth_write.go.

// SynthDefaultParticipants is the number recruited when SynthOptions leaves
// Participants at zero: the published study's 159.
const SynthDefaultParticipants = 159

// SynthEffect is the true effect of the intervention arm on the primary
// outcome (rguk.total, the Resource Generator-UK total) at follow-up, in
// points of the total: an intervention participant's expected total is
// SynthEffect higher than it would have been in the control arm, all else
// equal. A correct analysis of a large synthetic study recovers it (up to
// the team-level noise of ten clusters).
const SynthEffect = 1.5

// SynthDefaultExportDate is the export date of the files of a two-wave
// study when SynthOptions leaves ExportDate zero (see DefaultExportDate).
var SynthDefaultExportDate = time.Date(2019, time.March, 29, 0, 0, 0, 0, time.UTC)

// DefaultExportDate is the export date of the files of study s when
// SynthOptions leaves ExportDate zero: SynthDefaultExportDate for a study
// of two waves or fewer, and synthWaveDays later for every wave beyond the
// second, so that every wave's interviews (spaced synthWaveDays apart, see
// synthGen.participant) are in the default exports.
func DefaultExportDate(s *schemas.Study) time.Time {
	if extra := len(s.Waves) - 2; extra > 0 {
		return SynthDefaultExportDate.AddDate(0, 0, extra*synthWaveDays)
	}
	return SynthDefaultExportDate
}

// SynthOptions configure the synthetic study.
type SynthOptions struct {
	// Seed fixes every random draw: the same seed gives the same study,
	// byte for byte.
	Seed uint64
	// Participants is the number recruited over all trusts; zero means
	// SynthDefaultParticipants. Attrition scales with it.
	Participants int
	// Canonical writes every trust in the canonical format of DESIGN §5
	// instead of its own dialect.
	Canonical bool
	// ExportDate is the date the exports are made; zero means
	// DefaultExportDate(study). Interviews and ratings after it are not in
	// the exports.
	ExportDate time.Time
}

// withDefaults fills the zero options and checks the rest.
func (o SynthOptions) withDefaults(s *schemas.Study) (SynthOptions, error) {
	if o.Participants == 0 {
		o.Participants = SynthDefaultParticipants
	}
	if o.Participants < 0 {
		return o, fmt.Errorf("participants must be positive, not %d", o.Participants)
	}
	if o.Participants > synthMaxParticipants {
		return o, fmt.Errorf("participants must be at most %d", synthMaxParticipants)
	}
	if o.ExportDate.IsZero() {
		o.ExportDate = DefaultExportDate(s)
	}
	y, m, d := o.ExportDate.Date()
	o.ExportDate = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return o, nil
}

// synthMaxParticipants keeps every pseudonym under ten digits, so none
// looks like an NHS number, even if one trust had them all.
const synthMaxParticipants = 100_000_000

// SynthValue is one generated integer answer; Valid is false for a blank
// cell (a missing answer, never zero).
type SynthValue struct {
	Value int32
	Valid bool
}

// Ptr returns the value as a pointer, nil when blank.
func (v SynthValue) Ptr() *int32 {
	if !v.Valid {
		return nil
	}
	x := v.Value
	return &x
}

// SynthInterview is one row of a participants export in canonical values:
// one participant at one wave. Blank strings are blank cells.
type SynthInterview struct {
	Trust         string
	ParticipantID string
	Team          string
	Arm           string
	Wave          string
	// Date is the interview date; zero when the participant was recruited
	// but not interviewed at this wave (or withdrew before it).
	Date time.Time
	// Demo holds the study's coded demographics (Study.CodedDemographics),
	// Flags its 0/1 ones (Study.BinaryDemographics), in the study's order;
	// both are blank on rows after the baseline (but an occasional repeat).
	// Both slices are shared between calls.
	Demo      []string
	Flags     []SynthValue
	Withdrawn bool
	// ItemNames are the instrument items of the study in template order
	// (the participants template after its ten fixed columns); Items holds
	// their values in the same order. Both slices are shared between calls.
	ItemNames []string
	Items     []SynthValue
}

// Item returns the value of the named item, and false when the study has
// no such item.
func (r *SynthInterview) Item(name string) (SynthValue, bool) {
	for i, n := range r.ItemNames {
		if n == name {
			return r.Items[i], true
		}
	}
	return SynthValue{}, false
}

// Interviewed reports whether the row is an interview (it has a date).
func (r *SynthInterview) Interviewed() bool { return !r.Date.IsZero() }

// SynthRating is one row of a fidelity export in canonical values: one
// rater's rating of one team in one period.
type SynthRating struct {
	Trust     string
	Team      string
	Arm       string
	Period    string
	RaterID   string
	RaterRole string
	Date      time.Time
	// ComponentNames are the fidelity components in template order;
	// Components holds the ratings in the same order (at most one blank).
	// Both slices are shared between calls.
	ComponentNames []string
	Components     []SynthValue
}

// Synthesize generates the participants of every trust, in the study's
// trust order, and calls visit with each row: a participant's baseline row
// first, then their later waves. The row is the one the files written by
// WriteSynth hold, in canonical values; it is reused after visit returns,
// so visit must copy what it keeps. An error from visit, or the context's,
// stops the generation and is returned.
func Synthesize(ctx context.Context, s *schemas.Study, opts SynthOptions, visit func(trust string, row *SynthInterview) error) error {
	opts, err := opts.withDefaults(s)
	if err != nil {
		return err
	}
	sizes := synthTrustSizes(s, opts)
	for _, t := range s.Trusts {
		g := newSynthGen(s, opts, t.Code, sizes[t.Code])
		if err := g.run(ctx, func(r *SynthInterview) error { return visit(t.Code, r) }); err != nil {
			return err
		}
	}
	return nil
}

// SynthesizeTrust is Synthesize for one trust: the same rows, so trusts
// can be generated in parallel.
func SynthesizeTrust(ctx context.Context, s *schemas.Study, opts SynthOptions, trust string, visit func(row *SynthInterview) error) error {
	opts, err := opts.withDefaults(s)
	if err != nil {
		return err
	}
	if _, ok := s.Trust(trust); !ok {
		return fmt.Errorf("unknown trust %q", trust)
	}
	return newSynthGen(s, opts, trust, synthTrustSizes(s, opts)[trust]).run(ctx, visit)
}

// SynthesizeFidelity generates the fidelity ratings of every trust, in the
// study's trust order, and calls visit with each: every team × period,
// two or three raters each. The row is reused after visit returns.
func SynthesizeFidelity(ctx context.Context, s *schemas.Study, opts SynthOptions, visit func(trust string, r *SynthRating) error) error {
	opts, err := opts.withDefaults(s)
	if err != nil {
		return err
	}
	for _, t := range s.Trusts {
		if err := synthRatings(ctx, s, opts, t.Code, func(r *SynthRating) error { return visit(t.Code, r) }); err != nil {
			return err
		}
	}
	return nil
}

// SynthFile is one export file written by WriteSynth.
type SynthFile struct {
	Trust string
	Kind  string // schemas.KindParticipants or schemas.KindFidelity
	Name  string // file name inside the output folder
	Path  string
	Rows  int64 // data rows, the header not counted
}

// WriteSynth writes the synthetic study into dir (created 0750 when
// missing): for every trust a participants file and a fidelity file, in
// the trust's dialect (its site mapping) or, with opts.Canonical, in the
// canonical format. Files are written 0640 under a temporary name and
// renamed when complete, so an interrupted run leaves no partial export.
// The same options give byte-identical files. Trusts are written in
// parallel; the files come back in the study's trust order, participants
// before fidelity.
func WriteSynth(ctx context.Context, s *schemas.Study, opts SynthOptions, dir string) ([]SynthFile, error) {
	opts, err := opts.withDefaults(s)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, errors.New("no output folder")
	}
	if err := synthMkdir(dir); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		files []SynthFile
		err   error
	}
	results := make([]result, len(s.Trusts))
	var wg sync.WaitGroup
	for i, t := range s.Trusts {
		wg.Go(func() {
			files, err := synthWriteTrust(ctx, s, opts, dir, t.Code)
			if err != nil {
				cancel()
			}
			results[i] = result{files, err}
		})
	}
	wg.Wait()
	// A failing trust cancels the others: report its error, not theirs,
	// and take back the files the run did complete.
	var out []SynthFile
	var failed, canceled []error
	for _, r := range results {
		out = append(out, r.files...)
		switch {
		case r.err == nil:
		case errors.Is(r.err, context.Canceled):
			canceled = append(canceled, r.err)
		default:
			failed = append(failed, r.err)
		}
	}
	if len(failed) == 0 && len(canceled) == 0 {
		return out, nil
	}
	for _, f := range out {
		os.Remove(f.Path)
	}
	if len(failed) > 0 {
		return nil, errors.Join(failed...)
	}
	return nil, canceled[0]
}
