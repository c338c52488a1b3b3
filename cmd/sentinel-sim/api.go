package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/sentinel-edge/sentinel/sim/loopback"
	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
)

func runAPI(ctx context.Context, args []string, e env) error {
	fs := newFlags("api", "--population FILE [--listen ADDR] [flags]",
		"Serves the docking interface of docs/docking-spec.md (GET /api/v1/ping,\n"+
			"POST /api/v1/verify/qr, POST /api/v1/verify/idcard) from a population CSV.\n"+
			"Prints \"listening on HOST:PORT\" to stderr once ready; --listen 127.0.0.1:0\n"+
			"picks a free port. Logs one line per call, credentials masked.", e)
	listen := fs.String("listen", "127.0.0.1:8080", "`address` to listen on; loopback only unless --allow-remote")
	popFile := fs.String("population", "", "population CSV `file` (required; see `sentinel-sim population`)")
	allowRemote := fs.Bool("allow-remote", false, "allow a non-loopback --listen address")
	delay := fs.Duration("delay", 0, "hold every verification answer this long (exercises the unit's timeout)")
	failEvery := fs.Int("fail-every", 0, "answer every `N`-th verification with 500 internal (0: never)")
	level := logLevelFlag(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if *popFile == "" {
		return usagef("--population is required")
	}
	if !*allowRemote {
		if err := loopback.Check(*listen); err != nil {
			return usagef("--listen %q is not a loopback address; add --allow-remote to serve other machines", *listen)
		}
	}
	if *delay < 0 || *delay > time.Hour {
		return usagef("--delay must be between 0 and 1h, got %v", *delay)
	}
	if *failEvery < 0 {
		return usagef("--fail-every must be >= 0, got %d", *failEvery)
	}
	log, err := newLogger(*level, e, "api")
	if err != nil {
		return err
	}

	pop, err := population.Load(*popFile)
	if err != nil {
		return err
	}
	opts := platform.Options{Logger: log, Delay: *delay}
	if *failEvery > 0 {
		opts.Fault = platform.FailEvery(*failEvery)
	}
	srv := platform.NewServer(pop, opts)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("population loaded", "file", *popFile, "people", pop.Len())
	fmt.Fprintf(e.stderr, "listening on %s\n", ln.Addr())
	return srv.Serve(ctx, ln)
}
