package agent

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sentinel-edge/sentinel/agent/pipeline"
	"github.com/sentinel-edge/sentinel/agent/record"
)

// Console prints one line per passage for people watching a terminal (the demo, a field
// engineer on site): time, masked subject, verdict, reason, gate, and whether the record
// reached the broker. A line waits up to Wait for the broker's acknowledgement, then prints
// with delivered=queued; the record stays in the outbox and goes up later.
type Console struct {
	W    io.Writer
	Wait time.Duration

	mu      sync.Mutex
	waiting map[string]*pendingLine
}

type pendingLine struct {
	rec   record.Passage
	timer *time.Timer
}

// Passage registers a decided passage.
func (c *Console) Passage(p pipeline.Outcome) {
	if !p.Committed {
		c.print(p.Record, "LOST")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting == nil {
		c.waiting = map[string]*pendingLine{}
	}
	id := p.Record.ID
	pl := &pendingLine{rec: p.Record}
	pl.timer = time.AfterFunc(c.Wait, func() { c.settle(id, "queued") })
	c.waiting[id] = pl
}

// Delivered is called when the broker acknowledged the record with this id.
func (c *Console) Delivered(id string) { c.settle(id, "yes") }

func (c *Console) settle(id, delivered string) {
	c.mu.Lock()
	pl, ok := c.waiting[id]
	if ok {
		delete(c.waiting, id)
		pl.timer.Stop()
	}
	c.mu.Unlock()
	if ok {
		c.print(pl.rec, delivered)
	}
}

func (c *Console) print(r record.Passage, delivered string) {
	subject := r.Subject.ID
	if subject == "" {
		subject = "-"
	}
	if r.Subject.Name != "" {
		subject += " " + r.Subject.Name
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.W, "%s  seq=%-4d %-22s %-4s %-20s mode=%-7s gate=%-10s delivered=%s\n",
		r.TS, r.Seq, subject, r.Verdict, r.Reason, r.Mode, r.Gate, delivered)
}
