package camera

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Frame is one JPEG of a stream. JPEG is the receiver's: a new slice for every frame, to keep
// or zero.
type Frame struct {
	JPEG []byte
	// Seq numbers the frames a stream read, from 1, across reconnects; a gap is frames that
	// arrived while the receiver was still busy with an earlier one (Stats.Skipped).
	Seq  uint64
	Time time.Time // when it was read
}

// Stream is a camera that delivers frames continuously (MJPEG, V4L2).
type Stream interface {
	// Run reads frames and calls emit with the newest one each time emit is free, until ctx
	// ends; it reconnects by itself and returns nil at ctx's end. One Run at a time.
	Run(ctx context.Context, emit func(Frame)) error
	String() string
	Halt() error
}

// Defaults of StreamOptions.
const (
	DefaultMaxFrameBytes = 2 << 20
	DefaultStall         = 3 * time.Second
	DefaultTimeout       = 2 * time.Second
	DefaultBackoffBase   = 100 * time.Millisecond
	DefaultBackoffCap    = 5 * time.Second
	// FreshFor is how old the newest frame may be for Snapshot to return it.
	FreshFor = 500 * time.Millisecond
)

// Errors of a stream.
var (
	ErrStalled = errors.New("camera: no frame within camera.stall")
	ErrRunning = errors.New("camera: the stream is already running")
)

// StreamOptions tune a stream. Zero values take the defaults.
type StreamOptions struct {
	// MaxFrameBytes bounds one frame (camera.max_frame_bytes); larger ones are skipped and
	// counted. At most MaxSnapshot.
	MaxFrameBytes int
	// Stall is how long without a frame makes the camera offline (camera.stall); the
	// connection is then dropped and made again.
	Stall time.Duration
	// Timeout bounds connecting and the answer's headers, and a Snapshot (camera.timeout).
	Timeout time.Duration
	// BackoffBase and BackoffCap shape the reconnect delay: full jitter, a random wait in
	// [0, min(cap, base·2^attempt)), the attempt count reset by a frame.
	BackoffBase, BackoffCap time.Duration
	// Now stamps frames; nil is time.Now.
	Now func() time.Time
}

func (o StreamOptions) withDefaults() StreamOptions {
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = DefaultMaxFrameBytes
	}
	o.MaxFrameBytes = min(o.MaxFrameBytes, MaxSnapshot)
	if o.Stall <= 0 {
		o.Stall = DefaultStall
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = DefaultBackoffBase
	}
	if o.BackoffCap <= 0 {
		o.BackoffCap = DefaultBackoffCap
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// StreamStats counts what a stream read and dropped.
type StreamStats struct {
	Frames    uint64 // good frames read
	Skipped   uint64 // good frames replaced by a newer one before the receiver took them
	Corrupt   uint64 // parts that are not a complete JPEG
	Oversize  uint64 // parts larger than MaxFrameBytes
	Connects  uint64 // connections (or device opens) made
	Failures  uint64 // connections that failed or ended
	Stalls    uint64 // times no frame came within Stall
	Online    bool
	LastFrame time.Time
	LastError string // the last connection error (never a picture; credentials removed)
	Connected bool   // a connection is open now
}

// source is one open connection to a camera.
type source interface {
	// next returns a frame, an IsSkippable error, or an error that ends the connection.
	next() ([]byte, error)
	// interrupt makes a blocked next return soon; it may run on another goroutine.
	interrupt()
	// close ends the connection; it runs once, after the last next.
	close() error
}

// stream is the supervision shared by the streaming drivers: reconnect with backoff, stall
// watchdog, online/offline reports, the newest-frame mailbox, counters.
type stream struct {
	opts StreamOptions
	name string
	log  *slog.Logger
	dial func(ctx context.Context) (source, error)

	frames, skipped, corrupt, oversize, connects, failures, stalls atomic.Uint64

	stateMu sync.Mutex // serialises onState calls
	onState func(online bool, err error)

	mu         sync.Mutex
	running    bool
	online     bool
	reported   bool // onState was called at least once
	connCancel context.CancelCauseFunc
	watchdog   *time.Timer
	connected  bool
	lastErr    error
	lastBad    error     // the last bad part since the last good frame
	armedAt    time.Time // when the watchdog was last armed (opts.Now)
	latest     *Frame
	pending    *Frame
	seq        uint64
	arrived    chan struct{} // closed and replaced at each frame
	wake       chan struct{} // one slot: a frame is pending
}

func newStream(name string, opts StreamOptions, log *slog.Logger, dial func(context.Context) (source, error)) *stream {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &stream{opts: opts.withDefaults(), name: name, log: log, dial: dial,
		arrived: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// OnState sets f to be told when the camera goes offline (no frame within the stall time,
// with the last error) and online again (the first frame after that; also the first frame
// of all). Call it before Run; calls are serialised and must be quick.
func (s *stream) OnState(f func(online bool, err error)) { s.onState = f }

// Stats returns the counters and the state.
func (s *stream) Stats() StreamStats {
	s.mu.Lock()
	st := StreamStats{Online: s.online, Connected: s.connected}
	if s.latest != nil {
		st.LastFrame = s.latest.Time
	}
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	s.mu.Unlock()
	st.Frames, st.Skipped, st.Corrupt, st.Oversize = s.frames.Load(), s.skipped.Load(), s.corrupt.Load(), s.oversize.Load()
	st.Connects, st.Failures, st.Stalls = s.connects.Load(), s.failures.Load(), s.stalls.Load()
	return st
}

func (s *stream) setState(online bool, err error) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.mu.Lock()
	changed := s.online != online || !s.reported
	s.online, s.reported = online, true
	s.mu.Unlock()
	if !changed {
		return
	}
	if online {
		s.log.Info("camera online")
	} else {
		s.log.Warn("camera offline", "err", err)
	}
	if s.onState != nil {
		s.onState(online, err)
	}
}

// run is Run: connect, read, reconnect, until ctx ends.
func (s *stream) run(ctx context.Context, emit func(Frame)) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return ErrRunning
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		for _, f := range []*Frame{s.pending, s.latest} {
			if f != nil {
				clear(f.JPEG) // no picture outlives the stream
			}
		}
		s.running, s.pending, s.latest = false, nil, nil
		s.mu.Unlock()
	}()

	var wg sync.WaitGroup
	wg.Go(func() { s.deliver(ctx, emit) })
	s.mu.Lock()
	s.watchdog = time.AfterFunc(s.opts.Stall, s.stalled)
	s.armedAt, s.lastBad = s.opts.Now(), nil
	s.mu.Unlock()
	defer s.watchdog.Stop()

	attempt := 0
	for ctx.Err() == nil {
		connCtx, cancel := context.WithCancelCause(ctx)
		s.mu.Lock()
		s.connCancel = cancel
		s.mu.Unlock()
		err := s.connect(connCtx, &attempt)
		cancel(nil)
		if ctx.Err() != nil {
			break
		}
		s.failures.Add(1)
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		s.log.Debug("camera connection ended; reconnecting", "err", err, "attempt", attempt)
		if !sleepCtx(ctx, s.backoff(attempt)) {
			break
		}
		attempt++
	}
	wg.Wait()
	return nil
}

// connect makes one connection and reads it until it fails.
func (s *stream) connect(ctx context.Context, attempt *int) error {
	src, err := s.dial(ctx)
	if err != nil {
		return err
	}
	s.connects.Add(1)
	s.mu.Lock()
	s.connected = true
	s.mu.Unlock()
	defer func() {
		_ = src.close()
		s.mu.Lock()
		s.connected = false
		s.mu.Unlock()
	}()
	stop := context.AfterFunc(ctx, src.interrupt)
	defer stop()
	for {
		b, err := src.next()
		switch {
		case err == nil:
			*attempt = 0
			s.frame(b)
		case errors.Is(err, ErrPartTooLarge):
			s.oversize.Add(1)
			s.bad(err)
		case errors.Is(err, ErrCorruptPart):
			s.corrupt.Add(1)
			s.bad(err)
		case ctx.Err() != nil:
			return context.Cause(ctx)
		default:
			return err
		}
	}
}

// frame files a good frame: the newest for Snapshot, the pending one for the receiver.
func (s *stream) frame(b []byte) {
	s.frames.Add(1)
	s.mu.Lock()
	s.watchdog.Reset(s.opts.Stall)
	s.seq++
	f := &Frame{JPEG: b, Seq: s.seq, Time: s.opts.Now()}
	s.armedAt, s.lastBad = f.Time, nil
	// Frames may show faces: each one replaced is zeroed (the newest is Snapshot's, copied
	// out under mu; the pending one is the receiver's until it takes it).
	if s.latest != nil {
		clear(s.latest.JPEG)
	}
	s.latest = f
	if s.pending != nil {
		s.skipped.Add(1)
		clear(s.pending.JPEG)
	}
	s.pending = &Frame{JPEG: append([]byte(nil), b...), Seq: f.Seq, Time: f.Time} // the receiver's own
	close(s.arrived)
	s.arrived = make(chan struct{})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.setState(true, nil)
}

// bad notes a part that was skipped: if no good frame follows within the stall time, it is
// why the camera is offline.
func (s *stream) bad(err error) {
	s.mu.Lock()
	s.lastBad = err
	s.mu.Unlock()
}

// deliver hands the pending frame to emit, one at a time, until ctx ends.
func (s *stream) deliver(ctx context.Context, emit func(Frame)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		f := s.pending
		s.pending = nil
		s.mu.Unlock()
		if f != nil && ctx.Err() == nil {
			emit(*f)
		}
	}
}

// stalled runs when no frame came within the stall time: the camera is offline (why: the
// connection's error, else the last bad part, else none came) and the connection, if any,
// is dropped. It re-arms itself. A watchdog that fires long after it was armed means this
// process did not run meanwhile (SIGSTOP, a frozen VM), not that the camera sent nothing:
// it only re-arms, and the camera gets one stall time from now.
func (s *stream) stalled() {
	s.mu.Lock()
	running, cancel, err, connected, bad := s.running, s.connCancel, s.lastErr, s.connected, s.lastBad
	now := s.opts.Now()
	waited := now.Sub(s.armedAt)
	late := waited > 2*s.opts.Stall
	if running {
		s.watchdog.Reset(s.opts.Stall)
		s.armedAt = now
	}
	s.mu.Unlock()
	if !running {
		return
	}
	if late {
		s.log.Debug("camera watchdog fired late: the process was paused; waiting one more camera.stall", "waited", waited, "stall", s.opts.Stall)
		return
	}
	s.stalls.Add(1)
	switch {
	case connected && bad != nil:
		err = fmt.Errorf("%w; every part since the last frame was bad, the last: %w", ErrStalled, bad)
	case err == nil || connected:
		err = ErrStalled
	}
	s.setState(false, err)
	if cancel != nil {
		cancel(ErrStalled)
	}
}

func (s *stream) backoff(attempt int) time.Duration {
	ceil := s.opts.BackoffBase << min(attempt, 30)
	if ceil <= 0 || ceil > s.opts.BackoffCap {
		ceil = s.opts.BackoffCap
	}
	return rand.N(ceil) // full jitter
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// fresh returns the newest frame when Run is on: at once when it is at most FreshFor old,
// else the next one, within ctx. ok is false when Run is not on.
func (s *stream) fresh(ctx context.Context) (b []byte, ok bool, err error) {
	s.mu.Lock()
	running, arrived := s.running, s.arrived
	if running && s.latest != nil && s.opts.Now().Sub(s.latest.Time) <= FreshFor {
		b = append([]byte(nil), s.latest.JPEG...) // copied under mu: the next frame zeroes it
	}
	s.mu.Unlock()
	if !running {
		return nil, false, nil
	}
	if b != nil {
		return b, true, nil
	}
	select {
	case <-arrived:
	case <-ctx.Done():
		return nil, true, fmt.Errorf("camera: no frame from %s within the timeout: %w", s.name, ctx.Err())
	}
	s.mu.Lock()
	if s.latest != nil {
		b = append([]byte(nil), s.latest.JPEG...)
	}
	s.mu.Unlock()
	if b == nil {
		return nil, true, fmt.Errorf("camera: %s stopped before a frame came", s.name)
	}
	return b, true, nil
}

// once reads one good frame over a connection of its own (Snapshot while Run is off).
func (s *stream) once(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	src, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = src.close() }()
	stop := context.AfterFunc(ctx, src.interrupt)
	defer stop()
	var last error
	for {
		b, err := src.next()
		if err == nil {
			return b, nil
		}
		if ctx.Err() != nil {
			if last != nil {
				return nil, fmt.Errorf("camera: no good frame from %s within %v (last: %v)", s.name, s.opts.Timeout, last)
			}
			return nil, fmt.Errorf("camera: no frame from %s within %v", s.name, s.opts.Timeout)
		}
		if !IsSkippable(err) {
			return nil, err
		}
		last = err
	}
}
