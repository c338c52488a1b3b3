package idcard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/drivers"
)

// DefaultBaud is the SAM module's usual line speed.
const DefaultBaud = 115200

// Port is what the driver needs of a serial port.
type Port interface {
	io.ReadWriteCloser
	SetReadTimeout(t time.Duration) error
}

// OpenPort opens a serial port; tests swap it.
var OpenPort = func(path string, baud int) (Port, error) { return drivers.OpenSerial(path, baud) }

// ErrTimeout is a command the reader did not answer in time.
var ErrTimeout = errors.New("idcard: no reply")

// Timing; tests shrink them.
var (
	readTimeout = 50 * time.Millisecond
	// cmdTimeout bounds one command's reply (a read is 1,295 bytes: ~115 ms at 115200).
	cmdTimeout = time.Second
	// pollEvery is the pause between two looks for a card.
	pollEvery = 250 * time.Millisecond
	// StatusEvery is how often the SAM is checked while idle (supervision).
	statusEvery = 5 * time.Second
	backoffMin  = 100 * time.Millisecond
	backoffMax  = time.Second
	// failLimit consecutive failed commands make the driver reset the SAM.
	failLimit = 3
)

// Config configures a SAM reader.
type Config struct {
	Port string
	Baud int
	// DuplicateWindow makes the same card, taken off and laid again (or lost and found
	// again by a flaky find) within this time of its last read, one card: it is not emitted
	// again. The window restarts with every read of the card, so a card left lying is one
	// card however long it lies. 0 turns it off (a card is still emitted once per laying).
	DuplicateWindow time.Duration
	// OnState, when set, is told when the reader goes offline (with why) and comes back
	// online (with a nil error). It runs on the driver's goroutine: keep it quick.
	OnState func(online bool, err error)
}

// SAM is an ID-card reader on a serial line.
type SAM struct {
	cfg Config
	log *slog.Logger

	reads, noCard, failures, resets, reopens atomic.Int64
	noise, badChecksum, badLength, badText   atomic.Int64
	invalidID, duplicates                    atomic.Int64
	up                                       atomic.Bool
	burst                                    bool // a run of bad replies was logged
	everOnline                               bool
	// seen and seenAt are the last card read and when (Run's goroutine only): the
	// duplicate window, kept across reopens of the port.
	seen   string
	seenAt time.Time
}

// NewSAM returns a reader on cfg.Port; Run opens it.
func NewSAM(cfg Config, log *slog.Logger) *SAM {
	if cfg.Baud == 0 {
		cfg.Baud = DefaultBaud
	}
	if log == nil {
		log = slog.Default()
	}
	return &SAM{cfg: cfg, log: log.With("driver", "idcard.sam", "port", cfg.Port)}
}

func (s *SAM) String() string { return "id-card reader on " + s.cfg.Port }

// Open checks that the port opens, for fail-fast start-up; it closes it again.
func (s *SAM) Open() error {
	p, err := OpenPort(s.cfg.Port, s.cfg.Baud)
	if err != nil {
		return fmt.Errorf("idcard: open %s: %w", s.cfg.Port, err)
	}
	return p.Close()
}

// Stats counts what the reader did.
type Stats struct {
	Reads, NoCard, Failures, Resets, Reopens int64
	Noise, BadChecksum, BadLength, BadText   int64
	// InvalidID counts cards delivered whose ID number fails the GB 11643 format or check
	// character (the verifier denies them invalid_id_number); Duplicates, cards laid again
	// within the duplicate window and not emitted.
	InvalidID, Duplicates int64
	Online                bool
}

// Stats returns the counters.
func (s *SAM) Stats() Stats {
	return Stats{
		Reads: s.reads.Load(), NoCard: s.noCard.Load(), Failures: s.failures.Load(), Resets: s.resets.Load(), Reopens: s.reopens.Load(),
		Noise: s.noise.Load(), BadChecksum: s.badChecksum.Load(), BadLength: s.badLength.Load(), BadText: s.badText.Load(),
		InvalidID: s.invalidID.Load(), Duplicates: s.duplicates.Load(), Online: s.up.Load(),
	}
}

// Run polls for cards and calls emit once for each card laid on the reader (a card left
// lying there is not read twice), until ctx ends. A port that fails or vanishes, or a SAM
// that fails its status check and a reset, takes the reader offline; Run reopens it with
// backoff and returns only at ctx's end (nil).
func (s *SAM) Run(ctx context.Context, emit func(Card)) error {
	backoff := backoffMin
	for ctx.Err() == nil {
		p, err := OpenPort(s.cfg.Port, s.cfg.Baud)
		if err == nil {
			err = s.session(ctx, p, emit, func() { backoff = backoffMin })
			_ = p.Close()
		}
		if ctx.Err() != nil {
			break
		}
		s.offline(err)
		s.reopens.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, backoffMax)
	}
	return nil
}

func (s *SAM) offline(err error) {
	if s.up.Swap(false) || !s.everOnline {
		if !s.everOnline {
			s.everOnline = true // log the first failure once, then only transitions
		}
		s.log.Warn("id-card reader offline; retrying", "err", err)
		if s.cfg.OnState != nil {
			s.cfg.OnState(false, err)
		}
	}
}

// conn is one open port and its decoder.
type conn struct {
	p   Port
	dec Decoder
	buf []byte
}

// session talks to an open reader until it fails or ctx ends.
func (s *SAM) session(ctx context.Context, p Port, emit func(Card), opened func()) error {
	if err := p.SetReadTimeout(readTimeout); err != nil {
		return fmt.Errorf("idcard: set read timeout: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = p.Close() })
	defer stop()
	c := &conn{p: p, buf: make([]byte, 512)}
	if err := s.check(ctx, c); err != nil {
		return err
	}
	opened()
	if !s.up.Swap(true) {
		s.everOnline = true
		s.log.Info("id-card reader online")
		if s.cfg.OnState != nil {
			s.cfg.OnState(true, nil)
		}
	}
	var last string // the card lying on the reader (ID number and name), already handled
	fails := 0
	nextStatus := time.Now().Add(statusEvery)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if time.Now().After(nextStatus) {
			if err := s.check(ctx, c); err != nil {
				return err
			}
			nextStatus = time.Now().Add(statusEvery)
		}
		card, err := s.readCard(ctx, c)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			fails = 0
			s.burst = false
			key := card.IDNumber + "\x00" + card.Name
			if key != last {
				last = key
				s.deliver(card, key, emit)
			}
			s.seen, s.seenAt = key, time.Now()
		case errors.Is(err, errNoCard):
			fails = 0
			s.burst = false
			last = ""
		case errors.Is(err, drivers.ErrDisconnected), isIOErr(err):
			return err
		default:
			s.failures.Add(1)
			fails++
			s.badBurst("id-card reader: failed exchange", err)
			if fails >= failLimit {
				if err := s.check(ctx, c); err != nil {
					return err
				}
				fails = 0
			}
		}
	}
}

// deliver emits a card newly laid on the reader, unless it is the last card read, read again
// within the duplicate window.
func (s *SAM) deliver(card Card, key string, emit func(Card)) {
	if w := s.cfg.DuplicateWindow; w > 0 && key == s.seen && time.Since(s.seenAt) < w {
		s.duplicates.Add(1)
		return
	}
	if !validID(card.IDNumber) {
		s.invalidID.Add(1) // read fine: the card says so; the verifier denies it
	}
	s.reads.Add(1)
	emit(card)
}

var errNoCard = errors.New("idcard: no card")

// readCard finds, selects and reads a card.
func (s *SAM) readCard(ctx context.Context, c *conn) (Card, error) {
	r, err := s.do(ctx, c, CmdFind)
	if err != nil {
		return Card{}, err
	}
	switch r.SW3 {
	case StatusFound:
	case StatusNoCard:
		s.noCard.Add(1)
		return Card{}, errNoCard
	default:
		return Card{}, &StatusError{CmdFind, r.SW3}
	}
	if r, err = s.do(ctx, c, CmdSelect); err != nil {
		return Card{}, err
	}
	if r.SW3 != StatusOK {
		return Card{}, &StatusError{CmdSelect, r.SW3}
	}
	if r, err = s.do(ctx, c, CmdRead); err != nil {
		return Card{}, err
	}
	if r.SW3 != StatusOK {
		return Card{}, &StatusError{CmdRead, r.SW3}
	}
	card, err := ParseRead(r.Data)
	if err != nil {
		s.badText.Add(1)
		return Card{}, err
	}
	return card, nil
}

// check asks the SAM's status and resets it once when the answer is not success.
func (s *SAM) check(ctx context.Context, c *conn) error {
	r, err := s.do(ctx, c, CmdStatus)
	if err == nil && r.SW3 == StatusOK {
		return nil
	}
	if errors.Is(err, drivers.ErrDisconnected) || isIOErr(err) {
		return err
	}
	s.resets.Add(1)
	s.log.Warn("SAM status check failed; resetting the SAM", "err", errOrStatus(err, r))
	if _, rerr := s.do(ctx, c, CmdReset); rerr != nil && (errors.Is(rerr, drivers.ErrDisconnected) || isIOErr(rerr)) {
		return rerr
	}
	r, err = s.do(ctx, c, CmdStatus)
	if err != nil {
		return fmt.Errorf("idcard: SAM status after reset: %w", err)
	}
	if r.SW3 != StatusOK {
		return &StatusError{CmdStatus, r.SW3}
	}
	return nil
}

func errOrStatus(err error, r Response) string {
	if err != nil {
		return err.Error()
	}
	return "status " + r.SW3.String()
}

// ioError marks a failure of the port itself (as opposed to a bad reply).
type ioError struct{ err error }

func (e ioError) Error() string { return "idcard: port: " + e.err.Error() }
func (e ioError) Unwrap() error { return e.err }

func isIOErr(err error) bool {
	var ie ioError
	return errors.As(err, &ie)
}

// do sends one command and waits for its reply.
func (s *SAM) do(ctx context.Context, c *conn, cmd [2]byte) (Response, error) {
	if n := c.dec.Reset(); n > 0 {
		s.noise.Add(int64(n)) // the rest of a reply that came too late
	}
	if _, err := c.p.Write(EncodeCommand(cmd, nil)); err != nil {
		return Response{}, ioError{drivers.MapSerialErr(err)}
	}
	deadline := time.Now().Add(cmdTimeout)
	for {
		n, err := c.p.Read(c.buf)
		if ctx.Err() != nil {
			return Response{}, ctx.Err()
		}
		if err != nil {
			return Response{}, ioError{drivers.MapSerialErr(err)}
		}
		if n > 0 {
			noise, chk, ln := c.dec.Noise, c.dec.BadChecksum, c.dec.BadLength
			frames := c.dec.Feed(c.buf[:n])
			s.noise.Add(int64(c.dec.Noise - noise))
			s.badChecksum.Add(int64(c.dec.BadChecksum - chk))
			s.badLength.Add(int64(c.dec.BadLength - ln))
			if len(frames) > 0 {
				return ParseResponse(frames[0])
			}
			switch {
			case c.dec.BadChecksum > chk:
				return Response{}, fmt.Errorf("%w in the reply to %02X %02X", ErrChecksum, cmd[0], cmd[1])
			case c.dec.BadLength > ln:
				return Response{}, fmt.Errorf("%w in the reply to %02X %02X", ErrLength, cmd[0], cmd[1])
			}
		}
		if time.Now().After(deadline) {
			return Response{}, fmt.Errorf("%w to %02X %02X within %s", ErrTimeout, cmd[0], cmd[1], cmdTimeout)
		}
	}
}

// badBurst logs the first of a run of bad exchanges; the rest are only counted.
func (s *SAM) badBurst(msg string, err error) {
	if s.burst {
		return
	}
	s.burst = true
	st := s.Stats()
	s.log.Warn(msg, "err", err, "noise_bytes", st.Noise, "bad_checksum", st.BadChecksum, "bad_length", st.BadLength, "failures", st.Failures)
}

// Halt is a no-op: the port is closed when Run returns.
func (s *SAM) Halt() error { return nil }

// Probe is the commissioning check: it opens the port, asks the SAM for its status (11 FF)
// once, without resetting it, and closes the port. It returns nil when the SAM answers
// success (SW3 90); a *StatusError with the SW3 code when it answers otherwise; ErrTimeout
// (wrapped) when nothing answers; the open error when the port does not open. It must not
// run while Run holds the port.
func (s *SAM) Probe(ctx context.Context) error {
	p, err := OpenPort(s.cfg.Port, s.cfg.Baud)
	if err != nil {
		return fmt.Errorf("idcard: open %s: %w", s.cfg.Port, err)
	}
	defer p.Close()
	if err := p.SetReadTimeout(readTimeout); err != nil {
		return fmt.Errorf("idcard: set read timeout: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = p.Close() })
	defer stop()
	r, err := s.do(ctx, &conn{p: p, buf: make([]byte, 512)}, CmdStatus)
	if err != nil {
		return err
	}
	if r.SW3 != StatusOK {
		return &StatusError{CmdStatus, r.SW3}
	}
	return nil
}
