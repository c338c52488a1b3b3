package qrscan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/sentinel-edge/sentinel/drivers"
)

// EventDevice is what the evdev driver reads: an input device's event stream.
type EventDevice interface {
	io.ReadCloser
}

// deadliner is an EventDevice whose reads can time out (an *os.File on a character device).
type deadliner interface {
	SetReadDeadline(t time.Time) error
}

// OpenEventDevice opens an input device, grabbing it so that its keystrokes reach only
// Sentinel (not a console); tests swap it.
var OpenEventDevice = openEventDevice

// wordSize is the kernel's long on this machine: input_event records are 24 bytes on 64-bit
// systems and 16 on 32-bit ARM.
var wordSize = strconv.IntSize / 8

// EvdevConfig configures a keyboard-wedge (USB HID) scanner.
type EvdevConfig struct {
	Device          string // /dev/input/by-id/...-event-kbd or /dev/input/eventN
	MaxLength       int
	DuplicateWindow time.Duration
}

// Evdev is a USB HID keyboard-wedge QR scanner read through Linux evdev, US layout.
type Evdev struct {
	cfg     EvdevConfig
	log     *slog.Logger
	onState func(online bool, err error)
	everUp  bool

	counters
}

// NewEvdev returns a scanner on cfg.Device; Run opens it.
func NewEvdev(cfg EvdevConfig, log *slog.Logger) *Evdev {
	if log == nil {
		log = slog.Default()
	}
	return &Evdev{cfg: cfg, log: log.With("driver", "qrscan.evdev", "device", cfg.Device)}
}

func (e *Evdev) String() string { return "qr scanner (keyboard) on " + e.cfg.Device }

// OnState is Serial.OnState.
func (e *Evdev) OnState(f func(online bool, err error)) { e.onState = f }

// Open checks that the device opens; it closes it again.
func (e *Evdev) Open() error {
	d, err := OpenEventDevice(e.cfg.Device)
	if err != nil {
		return fmt.Errorf("qrscan: open %s: %w", e.cfg.Device, err)
	}
	return d.Close()
}

// Stats returns the counters.
func (e *Evdev) Stats() Stats {
	return e.stats()
}

// Run reads scans until ctx ends, reopening the device with backoff when it goes away.
func (e *Evdev) Run(ctx context.Context, emit func(Scan)) error {
	backoff := backoffMin
	for ctx.Err() == nil {
		d, err := OpenEventDevice(e.cfg.Device)
		if err == nil {
			if !e.up.Swap(true) {
				e.everUp = true
				e.log.Info("scanner online")
				if e.onState != nil {
					e.onState(true, nil)
				}
			}
			backoff = backoffMin
			err = e.read(ctx, d, emit)
			_ = d.Close()
		}
		if ctx.Err() != nil {
			break
		}
		if e.up.Swap(false) || !e.everUp {
			e.everUp = true
			e.log.Warn("scanner device unavailable; retrying", "err", err)
			if e.onState != nil {
				e.onState(false, err)
			}
		}
		e.reopens.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, backoffMax)
	}
	return nil
}

func (e *Evdev) read(ctx context.Context, d EventDevice, emit func(Scan)) error {
	stop := context.AfterFunc(ctx, func() { _ = d.Close() })
	defer stop()
	dl, canTimeout := d.(deadliner)
	kd := KeyDecoder{WordSize: wordSize}
	ls := newLineStream(e.cfg.MaxLength, e.cfg.DuplicateWindow, &e.counters, e.log, "no Enter")
	buf := make([]byte, 64*(2*wordSize+8))
	for {
		if canTimeout {
			_ = dl.SetReadDeadline(time.Now().Add(readTimeout))
		}
		n, err := d.Read(buf)
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		if errors.Is(err, os.ErrDeadlineExceeded) || (err == nil && n == 0) {
			ls.idle(now)
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ENODEV) || errors.Is(err, os.ErrClosed) {
				return fmt.Errorf("%w: %v", drivers.ErrDisconnected, err)
			}
			return err
		}
		ls.feed(kd.Feed(buf[:n]), now, emit)
	}
}

// Halt is a no-op: the device is closed (and its grab released) when Run returns.
func (e *Evdev) Halt() error { return nil }
