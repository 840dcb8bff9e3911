package describe

import (
	"context"

	"github.com/connectingpeople/cpi/schemas"
)

// Summaries are the tables of this package that need nothing of the
// analyses' fits: descriptives, service_use and the flow's counts.
type Summaries struct {
	Descriptives []DescRow
	ServiceUse   []ServiceUseRow
	Flow         map[FlowKey]*FlowCounts
}

// Pending is Summaries being made on a goroutine of their own (Start)
// while compare reads its columns and fits its analyses: compare fits
// one outcome at a time, and these passes over interviews and responses
// take the second core.
type Pending struct {
	cancel context.CancelFunc
	done   chan struct{}
	in     chan pendingInput // the participants' columns, once read
	sum    Summaries
	err    error
}

type pendingInput struct {
	c   *Columns
	ids *StudyIDs
}

// Start begins making the summaries from the tables of the generation
// dir: first the flow's pass over interviews, which needs nothing else;
// the rest waits for the participants' columns (Columns). On an error it
// calls fail with it, so that the caller stops its own work. Wait gives
// the summaries or the first error; Stop (deferred by the caller, for the
// paths that never reach Wait) cancels them and waits, so the goroutine
// never outlives the stage.
func Start(ctx context.Context, s *schemas.Study, dir string, fail func(error)) *Pending {
	ctx, cancel := context.WithCancel(ctx)
	p := &Pending{cancel: cancel, done: make(chan struct{}), in: make(chan pendingInput, 1)}
	go func() {
		defer close(p.done)
		p.err = p.run(ctx, s, dir)
		if p.err != nil {
			fail(p.err)
		}
	}()
	return p
}

// Columns hands over the participants' columns c (read only, so the
// caller may read them meanwhile) and their study_ids (let go once
// service_use's pass is over). Call it once. The flow's analysed stages
// are the caller's to add (they count its frames, which are memory the
// caller would hold beside its own).
func (p *Pending) Columns(c *Columns, ids *StudyIDs) {
	p.in <- pendingInput{c, ids}
}

func (p *Pending) run(ctx context.Context, s *schemas.Study, dir string) error {
	var err error
	if p.sum.Flow, err = CountFlow(ctx, s, dir); err != nil {
		return err
	}
	var in pendingInput
	select {
	case in = <-p.in:
	case <-ctx.Done():
		return ctx.Err()
	}
	c := in.c
	// in holds the study_ids until service_use's pass is over.
	p.sum.ServiceUse, err = ServiceUse(ctx, s, dir, c, in.ids)
	in = pendingInput{}
	if err != nil {
		return err
	}
	p.sum.Descriptives = Descriptives(s, c)
	return ctx.Err()
}

// Wait waits for the summaries.
func (p *Pending) Wait() (*Summaries, error) {
	<-p.done
	if p.err != nil {
		return nil, p.err
	}
	return &p.sum, nil
}

// Stop cancels the summaries if they are still being made and waits for
// them.
func (p *Pending) Stop() {
	p.cancel()
	<-p.done
}
