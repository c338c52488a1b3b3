package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/sentinel-edge/sentinel/sim/scanner"
)

func runScan(ctx context.Context, args []string, e env) error {
	fs := newFlags("scan", "--port PATH --tokens FILE|- [flags]",
		"Acts as a serial QR scanner: writes each token (one per line, blank lines\n"+
			"skipped) followed by the EOL bytes to the port, at most --rate scans a second.\n"+
			"If PATH is a character device (or a symlink to one outside /dev/pts) it is\n"+
			"opened and written to. Otherwise a pty is created, kept open in raw mode, and\n"+
			"PATH made a symlink to its slave (removed on exit; an existing regular file is\n"+
			"never replaced). Prints \"port ready: PATH -> /dev/pts/N\" to stderr.\n"+
			"With --tokens - tokens are read from stdin as they arrive. After the last\n"+
			"token the port stays open until SIGINT/SIGTERM, unless --exit-after-write.\n"+
			"Tokens are logged masked.", e)
	port := fs.String("port", "", "serial port `path` to create (pty symlink) or open (device) (required)")
	tokens := fs.String("tokens", "", "token list `file`, or - for stdin (required)")
	rate := fs.Float64("rate", 1, "most scans per second; 0 for no limit")
	eolName := fs.String("eol", scanner.DefaultEOLName, "end of line after each token: crlf, cr or lf")
	count := fs.Int("count", 0, "stop after `N` scans; a token file is cycled to reach N (0: each token once)")
	exitAfter := fs.Bool("exit-after-write", false, "exit once every token is written and read (see --drain)")
	drain := fs.Duration("drain", 5*time.Second, "with --exit-after-write, how long to wait for the reader to take the bytes")
	level := logLevelFlag(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	switch {
	case *port == "":
		return usagef("--port is required")
	case *tokens == "":
		return usagef("--tokens is required (a file, or - for stdin)")
	case *rate < 0 || math.IsNaN(*rate) || math.IsInf(*rate, 0):
		return usagef("--rate must be >= 0, got %v", *rate)
	case *count < 0:
		return usagef("--count must be >= 0, got %d", *count)
	case *drain < 0:
		return usagef("--drain must be >= 0, got %v", *drain)
	}
	eol, err := scanner.ParseEOL(*eolName)
	if err != nil {
		return usagef("--eol must be crlf, cr or lf, got %q", *eolName)
	}
	log, err := newLogger(*level, e, "scan")
	if err != nil {
		return err
	}

	// Read a token file before creating the port, so a missing file leaves
	// nothing behind.
	var src scanner.Source
	if *tokens == "-" {
		src = scanner.NewLineSource(e.stdin)
	} else {
		f, err := os.Open(*tokens)
		if err != nil {
			return fmt.Errorf("tokens: %w", err)
		}
		list, err := scanner.ReadTokens(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("tokens %s: %w", *tokens, err)
		}
		if len(list) == 0 {
			return fmt.Errorf("tokens %s: no tokens in the file", *tokens)
		}
		src = scanner.NewListSource(list, *count)
	}

	p, err := scanner.Open(*port, log)
	if err != nil {
		return err
	}
	defer p.Close()
	// Close unblocks a write stuck on a full pty when a signal arrives.
	stopClose := context.AfterFunc(ctx, func() { _ = p.Close() })
	defer stopClose()
	fmt.Fprintf(e.stderr, "port ready: %s\n", p)

	n, err := scanner.Feed(ctx, p, src, scanner.Options{Rate: *rate, EOL: eol, Count: *count, Logger: log})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	log.Info("all tokens written", "scans", n)

	if *exitAfter {
		dctx, cancel := context.WithTimeout(ctx, *drain)
		defer cancel()
		if err := p.Drain(dctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("reader did not take every byte before exit", "err", err)
		}
		return p.Close()
	}
	<-ctx.Done()
	return p.Close()
}
