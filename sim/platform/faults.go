package platform

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sentinel-edge/sentinel/sim/population"
)

// Fault kinds the server can inject into a verification request.
const (
	FaultNone         = "ok"            // answer normally
	FaultLatency      = "latency"       // answer normally after a delay: "latency 300ms"
	FaultHang         = "hang"          // never answer; wait until the client gives up
	Fault5xx          = "5xx"           // 500 internal ("safe to retry")
	FaultMalformed    = "malformed"     // 200 with a body that is not JSON
	FaultBadSignature = "bad_signature" // refuse the request's signature (401)
	FaultDrop         = "drop"          // close the connection without an answer
	// FaultOtherPerson answers a known credential with another person's record: the
	// identity (ID number and name) of another person of the population, match true, and
	// that person's health data (a green code with a negative test when the population has
	// one). An unknown credential is still not found. It plays a platform that mixes up
	// answers, or an attacker in the middle.
	FaultOtherPerson = "other_person"
)

// FaultKinds lists the fault kinds.
var FaultKinds = []string{FaultNone, FaultLatency, FaultHang, Fault5xx, FaultMalformed, FaultBadSignature, FaultDrop, FaultOtherPerson}

// Fault is what to do to one verification request.
type Fault struct {
	Kind  string
	Delay time.Duration // for FaultLatency
}

func (f Fault) String() string {
	if f.Kind == FaultLatency {
		return f.Kind + " " + f.Delay.String()
	}
	return f.Kind
}

// ParseFault reads "ok", "latency 300ms" (or "latency:300ms"), "hang", "5xx", "malformed",
// "bad_signature", "drop" or "other_person".
func ParseFault(s string) (Fault, error) {
	s = strings.TrimSpace(s)
	kind, arg, _ := strings.Cut(strings.Replace(s, ":", " ", 1), " ")
	kind, arg = strings.TrimSpace(kind), strings.TrimSpace(arg)
	switch kind {
	case FaultLatency:
		d, err := time.ParseDuration(arg)
		if err != nil || d < 0 || d > time.Hour {
			return Fault{}, fmt.Errorf("fault %q: latency needs a duration between 0 and 1h, like \"latency 300ms\"", s)
		}
		return Fault{Kind: kind, Delay: d}, nil
	case FaultNone, FaultHang, Fault5xx, FaultMalformed, FaultBadSignature, FaultDrop, FaultOtherPerson:
		if arg != "" {
			return Fault{}, fmt.Errorf("fault %q: %s takes no argument", s, kind)
		}
		return Fault{Kind: kind}, nil
	}
	return Fault{}, fmt.Errorf("unknown fault %q (known: %s)", s, strings.Join(FaultKinds, ", "))
}

// FaultSource says what to do to each verification request, in arrival order.
type FaultSource interface {
	Next() Fault
}

// Always injects the same fault into every request.
type Always Fault

// Next returns the fault.
func (a Always) Next() Fault { return Fault(a) }

// Script injects faults from a list, one per request in order; the last one repeats.
type Script struct {
	mu     sync.Mutex
	faults []Fault
	i      int
}

// NewScript returns a script of faults; an empty one answers every request normally.
func NewScript(faults ...Fault) *Script { return &Script{faults: faults} }

// Next returns the next fault of the script.
func (s *Script) Next() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return Fault{Kind: FaultNone}
	}
	f := s.faults[min(s.i, len(s.faults)-1)]
	s.i++
	return f
}

// ParseScript reads one fault per line; blank lines and lines starting with # are skipped.
func ParseScript(b []byte) ([]Fault, error) {
	var fs []Fault
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f, err := ParseFault(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		fs = append(fs, f)
	}
	return fs, sc.Err()
}

// FileScript is a Script read from a file that tests may rewrite while the server runs: the
// file is read again before each request, and when its content changed the script restarts
// from its first line. A file that stops parsing keeps the last good script (and Err says
// why).
type FileScript struct {
	path string
	mu   sync.Mutex
	last []byte
	s    *Script
	err  error
}

// NewFileScript reads the fault file at path; its faults must parse.
func NewFileScript(path string) (*FileScript, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fault file: %w", err)
	}
	fs, err := ParseScript(b)
	if err != nil {
		return nil, fmt.Errorf("fault file %s: %w", path, err)
	}
	return &FileScript{path: path, last: b, s: NewScript(fs...)}, nil
}

// Next re-reads the file and returns the next fault.
func (f *FileScript) Next() Fault {
	f.mu.Lock()
	if b, err := os.ReadFile(f.path); err == nil && !bytes.Equal(b, f.last) {
		if fs, perr := ParseScript(b); perr == nil {
			f.s, f.last, f.err = NewScript(fs...), b, nil
		} else {
			f.err = perr
		}
	}
	s := f.s
	f.mu.Unlock()
	return s.Next()
}

// Err is the last parse error of the file, if its current content does not parse.
func (f *FileScript) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// otherPerson is the answer of FaultOtherPerson: the credential is looked up as usual, and
// the answer is about someone else: the population's other person with a green code and the
// latest negative test, else any other person.
func (s *Server) otherPerson(iface string, req credRequest) (*Data, bool) {
	asked, ok := s.lookup(iface, req)
	if !ok {
		return nil, false
	}
	var best, anyone *population.Person
	for _, p := range s.pop.People() {
		if p.IDNumber == asked.Identity.IDNumber {
			continue
		}
		if anyone == nil {
			anyone = &p
		}
		if p.HealthCode == population.Green && p.NATResult == population.Negative && (best == nil || p.NATSampledAt.After(best.NATSampledAt)) {
			best = &p
		}
	}
	if best == nil {
		best = anyone
	}
	if best == nil {
		return asked, true // a population of one: there is nobody else to answer about
	}
	return s.data(*best, Identity{IDNumber: best.IDNumber, Name: best.Name, Match: true}), true
}
