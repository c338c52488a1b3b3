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
//	present badcheck:ID|#N
//	                that person's card with a wrong check character (a forged or damaged
//	                card that the reader reads fine; GB 11643 fails)
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
			return nil, bad("unknown step %q (present ID|#N|badcheck:ID|badcheck:#N, remove, wait D, fault NAME, sam-fail)", f[0])
		}
		steps = append(steps, st)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("card: script %s: %w", name, err)
	}
	return steps, nil
}

// BadCheckPrefix before a card reference (badcheck:#2, badcheck:ID) presents that person's
// card with a wrong check character.
const BadCheckPrefix = "badcheck:"

// Lookup finds the card for ref: an ID number in pop, or #N for the N-th person; with
// BadCheckPrefix, that card with its ID number's check character made wrong (WithBadCheck).
func Lookup(pop *population.Population, ref string) (idcard.Info, error) {
	if rest, ok := strings.CutPrefix(ref, BadCheckPrefix); ok {
		info, err := Lookup(pop, rest)
		if err != nil {
			return idcard.Info{}, err
		}
		return WithBadCheck(info), nil
	}
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

// WithBadCheck returns info with its ID number's last character replaced by one that fails
// the GB 11643 check (the next in "0123456789X" after the right one). An ID number that is
// not 18 characters is returned as it is.
func WithBadCheck(info idcard.Info) idcard.Info {
	id := info.IDNumber
	if len(id) != 18 {
		return info
	}
	const chars = "0123456789X"
	right, err := population.CheckChar(id[:17])
	if err != nil {
		right = id[17]
	}
	i := strings.IndexByte(chars, right)
	info.IDNumber = id[:17] + string(chars[(i+1)%len(chars)])
	return info
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
