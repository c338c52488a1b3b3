package card

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/idcard"
	"github.com/sentinel-edge/sentinel/sim/population"
)

// Fault is something wrong with a reply.
type Fault string

// The faults a reply can carry.
const (
	FaultChecksum Fault = "checksum" // CHK flipped
	FaultLength   Fault = "length"   // LEN one too many: the reader waits for a byte that never comes
	FaultShort    Fault = "short"    // LEN one too few
	FaultFragment Fault = "fragment" // the reply written a few bytes at a time
	FaultNoise    Fault = "noise"    // random bytes before the reply
	FaultSilent   Fault = "silent"   // no reply at all
	FaultNoCard   Fault = "nocard"   // find answers "no card" though one lies there
)

// Faults lists every fault, for usage text.
var Faults = []Fault{FaultChecksum, FaultLength, FaultShort, FaultFragment, FaultNoise, FaultSilent, FaultNoCard}

// ParseFault checks a fault name.
func ParseFault(s string) (Fault, error) {
	for _, f := range Faults {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, len(Faults))
	for i, f := range Faults {
		names[i] = string(f)
	}
	return "", fmt.Errorf("card: unknown fault %q (known: %s)", s, strings.Join(names, ", "))
}

// FromPerson makes a card for a population row: the sex and birth date come from the ID
// number; the address, issuer and validity are synthetic.
func FromPerson(p population.Person) idcard.Info {
	id := p.IDNumber
	info := idcard.Info{
		Name: p.Name, Nation: "01", IDNumber: id,
		Address: "福建省晋江市青阳街道模拟路1号", Issuer: "晋江市公安局",
		ValidFrom: "20200101", ValidTo: "20400101",
	}
	if len(id) == 18 {
		info.Birth = id[6:14]
		info.Sex = "2"
		if (id[16]-'0')%2 == 1 {
			info.Sex = "1"
		}
	}
	return info
}

// Options configure a Reader.
type Options struct {
	// Every, when > 0, puts Faults into every Every-th reply.
	Every  int
	Faults []Fault
	// Photo is the photo block served; nil means 1,024 bytes of a fixed pattern.
	Photo []byte
	Log   *slog.Logger
	Seed  uint64
}

// Reader is a simulated SAM reader serving one port.
type Reader struct {
	rw   io.ReadWriter
	opt  Options
	log  *slog.Logger
	rng  *rand.Rand
	mu   sync.Mutex
	card *idcard.Info
	// once are faults for the next reply only (from a script).
	once    []Fault
	samFail bool
	replies int
	// Requests counts the requests answered, by command.
	requests map[[2]byte]int
}

// New returns a reader that talks over rw (a pty's master side).
func New(rw io.ReadWriter, opt Options) *Reader {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Photo == nil {
		opt.Photo = make([]byte, idcard.PhotoSize)
		for i := range opt.Photo {
			opt.Photo[i] = byte(i * 7)
		}
	}
	return &Reader{rw: rw, opt: opt, log: opt.Log, rng: rand.New(rand.NewPCG(opt.Seed, 0x1dca4d)), requests: map[[2]byte]int{}}
}

// Present lays info on the reader; nil takes the card away.
func (r *Reader) Present(info *idcard.Info) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if info == nil {
		r.card = nil
		r.log.Info("card removed")
		return
	}
	c := *info
	r.card = &c
	r.log.Info("card presented", "card", c)
}

// Inject puts f into the next reply.
func (r *Reader) Inject(f Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.once = append(r.once, f)
}

// FailSAM makes the status check fail (SW3 60, self-test failed) until the next reset.
func (r *Reader) FailSAM() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samFail = true
}

// Requests returns how many times the command cmd was answered.
func (r *Reader) Requests(cmd [2]byte) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[cmd]
}

// Serve answers requests until ctx ends or the port fails. It returns nil at ctx's end.
func (r *Reader) Serve(ctx context.Context) error {
	var dec idcard.Decoder
	buf := make([]byte, 256)
	for {
		n, err := r.rw.Read(buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("card: read request: %w", err)
		}
		for _, p := range dec.Feed(buf[:n]) {
			if err := r.answer(ctx, p); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

func (r *Reader) answer(ctx context.Context, req []byte) error {
	if len(req) < 2 {
		return r.send(ctx, idcard.StatusLength, nil, nil)
	}
	cmd := [2]byte{req[0], req[1]}
	r.mu.Lock()
	r.requests[cmd]++
	r.replies++
	faults := append([]Fault(nil), r.once...)
	r.once = nil
	if r.opt.Every > 0 && r.replies%r.opt.Every == 0 {
		faults = append(faults, r.opt.Faults...)
	}
	card := r.card
	samFail := r.samFail
	if cmd == idcard.CmdReset {
		r.samFail = false
	}
	r.mu.Unlock()

	has := func(f Fault) bool {
		for _, g := range faults {
			if g == f {
				return true
			}
		}
		return false
	}
	if has(FaultSilent) {
		return nil
	}
	switch cmd {
	case idcard.CmdReset:
		return r.send(ctx, idcard.StatusOK, nil, faults)
	case idcard.CmdStatus:
		if samFail {
			return r.send(ctx, idcard.StatusSelfTest, nil, faults)
		}
		return r.send(ctx, idcard.StatusOK, nil, faults)
	case idcard.CmdSAMID:
		return r.send(ctx, idcard.StatusOK, make([]byte, 16), faults)
	case idcard.CmdFind:
		if card == nil || has(FaultNoCard) || samFail {
			return r.send(ctx, idcard.StatusNoCard, make([]byte, 4), faults)
		}
		return r.send(ctx, idcard.StatusFound, make([]byte, 4), faults)
	case idcard.CmdSelect:
		if card == nil {
			return r.send(ctx, idcard.StatusSelectFailed, make([]byte, 8), faults)
		}
		return r.send(ctx, idcard.StatusOK, make([]byte, 8), faults)
	case idcard.CmdRead:
		if card == nil {
			return r.send(ctx, idcard.StatusReadFailed, nil, faults)
		}
		data, err := idcard.EncodeRead(*card, r.opt.Photo)
		if err != nil {
			r.log.Warn("card cannot be encoded; answering read failed", "err", err)
			return r.send(ctx, idcard.StatusReadFailed, nil, faults)
		}
		return r.send(ctx, idcard.StatusOK, data, faults)
	default:
		return r.send(ctx, idcard.StatusCommand, nil, faults)
	}
}

// fragmentPause is the pause between the pieces of a fragmented reply.
var fragmentPause = 2 * time.Millisecond

func (r *Reader) send(ctx context.Context, st idcard.Status, data []byte, faults []Fault) error {
	f, err := idcard.EncodeResponse(st, data)
	if err != nil {
		return err
	}
	var out []byte
	for _, fl := range faults {
		switch fl {
		case FaultChecksum:
			f[len(f)-1] ^= 0x5A
		case FaultLength, FaultShort:
			n := int(f[5])<<8 | int(f[6])
			if fl == FaultLength {
				n++
			} else {
				n--
			}
			f[5], f[6] = byte(n>>8), byte(n)
		case FaultNoise:
			noise := make([]byte, 1+r.rng.IntN(40))
			for i := range noise {
				noise[i] = byte(r.rng.IntN(256))
				if noise[i] == idcard.Preamble[0] {
					noise[i] = 0x00 // noise never fakes a preamble start
				}
			}
			out = append(out, noise...)
		}
	}
	out = append(out, f...)
	for _, fl := range faults {
		if fl == FaultFragment {
			return r.writeFragmented(ctx, out)
		}
	}
	_, err = r.rw.Write(out)
	return err
}

func (r *Reader) writeFragmented(ctx context.Context, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), 1+r.rng.IntN(7))
		if _, err := r.rw.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(fragmentPause):
		}
	}
	return nil
}

// ErrUnknownID is a presented ID number the population lacks.
var ErrUnknownID = errors.New("card: ID number not in the population")

// Current is the card lying on the reader, nil when none.
func (r *Reader) Current() *idcard.Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.card == nil {
		return nil
	}
	c := *r.card
	return &c
}
