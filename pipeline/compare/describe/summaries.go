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
// one outcome at a time, and the pass over interviews takes the second
// core.
type Pending struct {
	cancel context.CancelFunc
	done   chan struct{}
	in     chan *Columns // the participants' columns, once read
	sum    Summaries
	err    error
}

// Start begins making the summaries from the tables of the generation
// dir: first the flow's pass over interviews and service_use (from
// service_sums), which need nothing else; descriptives wait for the
// participants' columns (Columns). On an error it
// calls fail with it, so that the caller stops its own work. Wait gives
// the summaries or the first error; Stop (deferred by the caller, for the
// paths that never reach Wait) cancels them and waits, so the goroutine
// never outlives the stage.
func Start(ctx context.Context, s *schemas.Study, dir string, fail func(error)) *Pending {
	ctx, cancel := context.WithCancel(ctx)
	p := &Pending{cancel: cancel, done: make(chan struct{}), in: make(chan *Columns, 1)}
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
// caller may read them meanwhile). Call it once. The flow's analysed
// stages are the caller's to add (they count its frames, which are
// memory the caller would hold beside its own).
func (p *Pending) Columns(c *Columns) {
	p.in <- c
}

func (p *Pending) run(ctx context.Context, s *schemas.Study, dir string) error {
	var err error
	if p.sum.Flow, err = CountFlow(ctx, s, dir); err != nil {
		return err
	}
	if p.sum.ServiceUse, err = ServiceUse(ctx, s, dir); err != nil {
		return err
	}
	var c *Columns
	select {
	case c = <-p.in:
	case <-ctx.Done():
		return ctx.Err()
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
