package qrscan

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sentinel-edge/sentinel/drivers"
)

// Scan is one line read from a scanner.
type Scan struct {
	Token string
	At    time.Time
}

// Port is what the driver needs of a serial port.
type Port interface {
	io.ReadCloser
	SetReadTimeout(t time.Duration) error
}

// OpenPort opens a serial port; tests swap it.
var OpenPort = func(path string, baud int) (Port, error) { return drivers.OpenSerial(path, baud) }

// Timing of the read loop; tests shrink them.
var (
	readTimeout = 100 * time.Millisecond
	// idleGap drops a partial line that got no terminator within this time.
	idleGap    = 500 * time.Millisecond
	backoffMin = 100 * time.Millisecond
	// backoffMax keeps a returning scanner read again within ~1 s.
	backoffMax = time.Second
)

// SerialConfig configures a serial scanner.
type SerialConfig struct {
	Port      string
	Baud      int
	MaxLength int
	// DuplicateWindow suppresses a scan equal to the one before it within this time (a
	// code held in front of the scanner is read many times); 0 turns it off.
	DuplicateWindow time.Duration
}

// Serial is a QR scanner on a serial line.
type Serial struct {
	cfg SerialConfig
	log *slog.Logger

	counters
	onState func(online bool, err error)
	everUp  bool
}

// OnState sets f to be told when the port goes away (with why) and comes back (nil error).
// Call it before Run; f runs on Run's goroutine and must be quick.
func (s *Serial) OnState(f func(online bool, err error)) { s.onState = f }

func (s *Serial) state(online bool, err error) {
	if s.onState != nil {
		s.onState(online, err)
	}
}

// NewSerial returns a scanner on cfg.Port. It opens the port in Run.
func NewSerial(cfg SerialConfig, log *slog.Logger) *Serial {
	if log == nil {
		log = slog.Default()
	}
	return &Serial{cfg: cfg, log: log.With("driver", "qrscan.serial", "port", cfg.Port)}
}

func (s *Serial) String() string { return "qr scanner on " + s.cfg.Port }

// Open checks that the port opens, for fail-fast start-up and the self-test; it closes it
// again.
func (s *Serial) Open() error {
	p, err := OpenPort(s.cfg.Port, s.cfg.Baud)
	if err != nil {
		return fmt.Errorf("qrscan: open %s: %w", s.cfg.Port, err)
	}
	return p.Close()
}

// Stats counts what the scanner read and dropped.
type Stats struct {
	Scans, Overlong, Garbage, Partial, Reopens int64
	Duplicates                                 int64 // suppressed within the duplicate window
	Online                                     bool
}

// Stats returns the counters.
func (s *Serial) Stats() Stats {
	return s.stats()
}

// Run reads scans and calls emit for each, until ctx ends. A port that fails or vanishes is
// reopened with backoff; Run returns only ctx's end (nil).
func (s *Serial) Run(ctx context.Context, emit func(Scan)) error {
	backoff := backoffMin
	for ctx.Err() == nil {
		p, err := OpenPort(s.cfg.Port, s.cfg.Baud)
		if err != nil {
			if s.up.Swap(false) || !s.everUp {
				s.everUp = true
				s.log.Warn("scanner port unavailable; retrying", "err", err)
				s.state(false, err)
			}
			s.reopens.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, backoffMax)
			continue
		}
		if !s.up.Swap(true) {
			s.everUp = true
			s.log.Info("scanner online")
			s.state(true, nil)
		}
		backoff = backoffMin
		err = s.read(ctx, p, emit)
		_ = p.Close()
		if err != nil && ctx.Err() == nil {
			s.up.Store(false)
			s.log.Warn("scanner port failed; reopening", "err", err)
			s.state(false, err)
		}
	}
	return nil
}

func (s *Serial) read(ctx context.Context, p Port, emit func(Scan)) error {
	if err := p.SetReadTimeout(readTimeout); err != nil {
		return fmt.Errorf("qrscan: set read timeout: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = p.Close() }) // unblocks a read
	defer stop()
	ls := newLineStream(s.cfg.MaxLength, s.cfg.DuplicateWindow, &s.counters, s.log, "no line end")
	buf := make([]byte, 256)
	for {
		n, err := p.Read(buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return drivers.MapSerialErr(err)
		}
		if n == 0 {
			ls.idle(time.Now())
			continue
		}
		ls.feed(buf[:n], time.Now(), emit)
	}
}

// Halt is a no-op: the port is closed when Run returns.
func (s *Serial) Halt() error { return nil }
