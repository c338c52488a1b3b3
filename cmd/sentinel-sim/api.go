package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/sentinel-edge/sentinel/sim/loopback"
	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
)

func runAPI(ctx context.Context, args []string, e env) error {
	fs := newFlags("api", "--population FILE [--listen ADDR] [flags]",
		"Serves the docking interface of docs/docking-spec.md (ping, QR, ID-card and face\n"+
			"verification; face search against the population's face_image photos) from a\n"+
			"population CSV, in the reference dialect or the province one.\n"+
			"Prints \"listening on HOST:PORT\" to stderr once ready; --listen 127.0.0.1:0\n"+
			"picks a free port. Logs one line per call, credentials masked.\n\n"+
			"With --app-key and --secret-file it checks every request's signature (hmac-sha256\n"+
			"or sm3-hmac) and refuses replays; without them it accepts unsigned requests.\n"+
			"Faults (--fault, or one per line in --fault-file, the last repeating; the file is\n"+
			"read again when it changes): ok, \"latency 300ms\", hang, 5xx, malformed,\n"+
			"bad_signature, drop.", e)
	listen := fs.String("listen", "127.0.0.1:8080", "`address` to listen on; loopback only unless --allow-remote")
	popFile := fs.String("population", "", "population CSV `file` (required; see `sentinel-sim population`)")
	allowRemote := fs.Bool("allow-remote", false, "allow a non-loopback --listen address")
	delay := fs.Duration("delay", 0, "hold every verification answer this long (exercises the unit's timeout)")
	failEvery := fs.Int("fail-every", 0, "answer every `N`-th verification with 500 internal (0: never)")
	dialect := fs.String("dialect", platform.DialectReference, "interface `shape`: reference or province")
	appKey := fs.String("app-key", "", "app `key` the units sign with (with --secret-file: check signatures)")
	secretFile := fs.String("secret-file", "", "`file` holding the shared signing secret (with --app-key)")
	window := fs.Duration("replay-window", platform.DefaultReplayWindow, "how far a request's timestamp may be from now")
	faultFlag := fs.String("fault", "", "inject this `fault` into every verification (see above)")
	faultFile := fs.String("fault-file", "", "`file` of faults, one per verification request in order")
	reqLog := fs.String("request-log", "", "append one JSON line per request received to `file`")
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
	if err := platform.CheckDialect(*dialect); err != nil {
		return usagef("--dialect must be one of reference, province, got %q", *dialect)
	}
	if (*appKey == "") != (*secretFile == "") {
		return usagef("--app-key and --secret-file go together")
	}
	if *window <= 0 || *window > 24*time.Hour {
		return usagef("--replay-window must be between 0 and 24h, got %v", *window)
	}
	if *faultFlag != "" && *faultFile != "" {
		return usagef("--fault and --fault-file exclude each other")
	}
	var faults platform.FaultSource
	if *faultFlag != "" {
		f, err := platform.ParseFault(*faultFlag)
		if err != nil {
			return usagef("--fault: %v", err)
		}
		faults = platform.Always(f)
	}
	log, err := newLogger(*level, e, "api")
	if err != nil {
		return err
	}
	if *faultFile != "" {
		script, err := platform.NewFileScript(*faultFile)
		if err != nil {
			return err
		}
		faults = script
	}
	var signing *platform.Signing
	if *appKey != "" {
		secret, err := readSecret(*secretFile)
		if err != nil {
			return err
		}
		signing = &platform.Signing{AppKey: *appKey, Secret: secret, Window: *window}
	}

	pop, err := population.Load(*popFile)
	if err != nil {
		return err
	}
	opts := platform.Options{Logger: log, Delay: *delay, Dialect: *dialect, Signing: signing, Faults: faults}
	if *reqLog != "" {
		f, err := os.OpenFile(*reqLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("--request-log: %w", err)
		}
		defer f.Close()
		opts.RequestLog = f
	}
	if *failEvery > 0 {
		opts.Fault = platform.FailEvery(*failEvery)
	}
	srv := platform.NewServer(pop, opts)
	if err := srv.LoadFaces(); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("population loaded", "file", *popFile, "people", pop.Len(), "dialect", *dialect, "signing", signing != nil, "faults", faults != nil)
	fmt.Fprintf(e.stderr, "listening on %s\n", ln.Addr())
	return srv.Serve(ctx, ln)
}

// readSecret reads the shared secret; the error never quotes it.
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("--secret-file %s: %v", path, err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("--secret-file %s is empty", path)
	}
	return b, nil
}
