package scanner

import (
	"context"
	"time"
)

// Drain polls the kernel's queue: there is no event for "queue empty" that
// works on both sides of a pty. Bytes written to a pty master reach the
// slave's queue asynchronously, so the queue must be seen empty drainQuiet
// times in a row.
const (
	drainPoll  = 10 * time.Millisecond
	drainQuiet = 3
)

// Drain waits until the bytes written so far have left the port: read by
// the agent from the pty, or sent by the device. It returns ctx.Err() when
// ctx ends first; give it a deadline.
func (p *Port) Drain(ctx context.Context) error {
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	quiet := 0
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		n, err := p.queued()
		if err != nil {
			return err
		}
		if n > 0 {
			quiet = 0
			continue
		}
		if quiet++; quiet >= drainQuiet {
			return nil
		}
	}
}
