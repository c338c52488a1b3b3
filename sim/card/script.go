package card

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/idcard"
	"github.com/sentinel-edge/sentinel/sim/population"
)

// Step is one line of a script.
type Step struct {
	Line  int
	Op    string // present, remove, wait, fault, sam-fail
	Card  *idcard.Info
	Wait  time.Duration
	Fault Fault
}

// ParseScript reads a script: one step a line; a line starting with # is a comment.
//
//	present ID      lay the card of the person with this ID number on the reader
//	present #N      the card of the population's N-th person (1-based)
//	remove          take the card away
//	wait DURATION   pause (Go duration: 500ms, 2s)
//	fault NAME      put a fault into the next reply (checksum, length, short, fragment,
//	                noise, silent, nocard)
//	sam-fail        make the SAM fail its status check until it is reset
//
// Errors name the line, never the ID number.
func ParseScript(r io.Reader, name string, pop *population.Population) ([]Step, error) {
	var steps []Step
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		bad := func(format string, a ...any) error {
			return fmt.Errorf("card: script %s:%d: %s", name, n, fmt.Sprintf(format, a...))
		}
		st := Step{Line: n, Op: f[0]}
		switch {
		case f[0] == "present" && len(f) == 2:
			info, err := Lookup(pop, f[1])
			if err != nil {
				return nil, bad("%v", err)
			}
			st.Card = &info
		case f[0] == "remove" && len(f) == 1, f[0] == "sam-fail" && len(f) == 1:
		case f[0] == "wait" && len(f) == 2:
			d, err := time.ParseDuration(f[1])
			if err != nil || d < 0 {
				return nil, bad("wait needs a duration like 500ms or 2s, got %q", f[1])
			}
			st.Wait = d
		case f[0] == "fault" && len(f) == 2:
			fl, err := ParseFault(f[1])
			if err != nil {
				return nil, bad("%v", err)
			}
			st.Fault = fl
		default:
			return nil, bad("unknown step %q (present ID|#N, remove, wait D, fault NAME, sam-fail)", f[0])
		}
		steps = append(steps, st)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("card: script %s: %w", name, err)
	}
	return steps, nil
}

// Lookup finds the card for ref: an ID number in pop, or #N for the N-th person.
func Lookup(pop *population.Population, ref string) (idcard.Info, error) {
	if rest, ok := strings.CutPrefix(ref, "#"); ok {
		var i int
		if _, err := fmt.Sscanf(rest, "%d", &i); err != nil || i < 1 || i > pop.Len() {
			return idcard.Info{}, fmt.Errorf("card: no person #%s (the population has %d)", rest, pop.Len())
		}
		return FromPerson(pop.People()[i-1]), nil
	}
	p, ok := pop.ByID(ref)
	if !ok {
		return idcard.Info{}, fmt.Errorf("%w: %s", ErrUnknownID, population.Mask(ref))
	}
	return FromPerson(p), nil
}

// Play runs steps against r, in order, until the end or ctx's end.
func Play(ctx context.Context, r *Reader, steps []Step) error {
	for _, st := range steps {
		switch st.Op {
		case "present":
			r.Present(st.Card)
		case "remove":
			r.Present(nil)
		case "fault":
			r.Inject(st.Fault)
		case "sam-fail":
			r.FailSAM()
		case "wait":
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(st.Wait):
			}
		}
	}
	return nil
}
