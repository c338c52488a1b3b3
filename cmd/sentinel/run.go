package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sentinel-edge/sentinel/agent"
	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/internal/buildinfo"
)

func init() { register("run", "run the daemon", cmdRun) }

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "run --config FILE [--console]", stdout, stderr)
	path := fs.String("config", "", "config `FILE`")
	console := fs.Bool("console", false, "print one line per passage on standard output")
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	cfg, code := loadConfig(fs, *path, stderr)
	if cfg == nil {
		return code
	}
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	opt := agent.Options{Log: log, ConfigPath: *path}
	if *console {
		opt.Console = stdout
	}
	log.Info("starting", "version", buildinfo.Get().Version, "config", *path)
	if err := agent.Run(ctx, cfg, opt); err != nil {
		log.Error("sentinel stopped with an error", "err", err)
		fmt.Fprintln(stderr, "sentinel:", err)
		return exitFailure
	}
	return exitOK
}

// newLogger logs as log.format says. In JSON a duration is a number of milliseconds under
// its key with "_ms" added ("took": 1.5s is "took_ms": 1500), so that a log collector can
// compute with it; text keeps Go's "1.5s".
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	hopt := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "json" {
		hopt.ReplaceAttr = durationsInMS
		return slog.New(slog.NewJSONHandler(w, hopt))
	}
	return slog.New(slog.NewTextHandler(w, hopt))
}

// durationsInMS turns a duration attribute into milliseconds, its key ending in _ms.
func durationsInMS(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindDuration {
		return a
	}
	key := a.Key
	if !strings.HasSuffix(key, "_ms") {
		key += "_ms"
	}
	return slog.Float64(key, float64(a.Value.Duration())/float64(time.Millisecond))
}
