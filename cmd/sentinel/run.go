package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sentinel-edge/sentinel/agent"
	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/internal/buildinfo"
)

func init() { register("run", "run the daemon (SIGHUP re-reads the config: sentinel reload)", cmdRun) }

func cmdRun(args []string, stdout, stderr io.Writer) int {
	// Before anything else: a SIGHUP asks for a reload, it never ends the daemon.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
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
	level := new(slog.LevelVar)
	log := newLogger(cfg, stderr, level)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	reloads := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case reloads <- struct{}{}:
				default: // one is pending: it reads the file as it is then
				}
			}
		}
	}()
	pid := pidFile{path: pidPath(cfg), config: *path}
	opt := agent.Options{Log: log, ConfigPath: *path, Reload: reloads, LogLevel: level,
		// Once the pipeline is up, sentinel reload and sentinel status can find the daemon.
		Ready: func() {
			if err := pid.write(); err != nil {
				log.Warn("pid file not written: sentinel reload and sentinel status cannot find this daemon", "err", err)
			}
		}}
	defer pid.remove()
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

// newLogger is the daemon's logger at log.level (held in level, which a reload changes), in
// log.format. In JSON a duration is a number of milliseconds under its key with "_ms" added
// ("took": 1.5s is "took_ms": 1500), so that a log collector can compute with it; text keeps
// Go's "1.5s".
func newLogger(cfg *config.Config, w io.Writer, level *slog.LevelVar) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	level.Set(lvl)
	hopt := &slog.HandlerOptions{Level: level}
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
