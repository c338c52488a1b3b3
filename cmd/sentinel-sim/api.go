package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/sentinel-edge/sentinel/sim/loopback"
	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
)

const apiAbout = "Serves the docking interface of docs/docking-spec.md (ping, QR, ID-card and face\n" +
	"verification; face search against the population's face_image photos) from a\n" +
	"population CSV, in one of its dialects (--dialect).\n" +
	"Prints \"listening on HOST:PORT\" to stderr once ready; --listen 127.0.0.1:0\n" +
	"picks a free port. Logs one line per call, credentials masked.\n\n" +
	"With --app-key and --secret-file it checks every request's signature by the dialect's\n" +
	"scheme (the reference and province dialects: hmac-sha256 or sm3-hmac; vendor-sorted,\n" +
	"vendor-md5, vendor-sha256, vendor-sm2: docs/docking-spec.md, \"Signing\") and refuses\n" +
	"replays; without them it accepts unsigned requests. --app-key may be repeated (all\n" +
	"share --secret-file and --sm2-public-key), and --keys-file lists more app keys, one\n" +
	"per line: APP_KEY SECRET_FILE [SM2_PUBLIC_KEY_FILE] (SECRET_FILE - for none).\n" +
	"Faults (--fault, or one per line in --fault-file, the last repeating; the file is\n" +
	"read again when it changes): ok, \"latency 300ms\", hang, 5xx, malformed,\n" +
	"bad_signature, drop, other_person (a known credential is answered with another\n" +
	"person's record: that person's ID number and name, match true)."

func runAPI(ctx context.Context, args []string, e env) error {
	fs := newFlags("api", "--population FILE [--listen ADDR] [flags]", apiAbout, e)
	listen := fs.String("listen", "127.0.0.1:8080", "`address` to listen on; loopback only unless --allow-remote")
	popFile := fs.String("population", "", "population CSV `file` (required; see `sentinel-sim population`)")
	allowRemote := fs.Bool("allow-remote", false, "allow a non-loopback --listen address")
	delay := fs.Duration("delay", 0, "hold every verification answer this long (exercises the unit's timeout)")
	failEvery := fs.Int("fail-every", 0, "answer every `N`-th verification with 500 internal (0: never)")
	dialect := fs.String("dialect", platform.DialectReference, "interface `shape`: "+strings.Join(platform.Dialects, ", "))
	var appKeys repeated
	fs.Var(&appKeys, "app-key", "app `key` a unit signs with (repeatable; with --secret-file: check signatures)")
	secretFile := fs.String("secret-file", "", "`file` holding the signing secret of the --app-key keys")
	sm2Pub := fs.String("sm2-public-key", "", "PEM `file` of the units' SM2 public key (vendor-sm2) for the --app-key keys")
	keysFile := fs.String("keys-file", "", "`file` of more app keys: APP_KEY SECRET_FILE [SM2_PUBLIC_KEY_FILE] per line")
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
		return usagef("--dialect must be one of %s, got %q", strings.Join(platform.Dialects, ", "), *dialect)
	}
	if (len(appKeys) == 0) != (*secretFile == "" && *sm2Pub == "") {
		return usagef("--app-key and --secret-file (or --sm2-public-key) go together")
	}
	if *window <= 0 || *window > 24*time.Hour {
		return usagef("--replay-window must be between 0 and 24h, got %v", *window)
	}
	faults, err := apiFaults(*faultFlag, *faultFile)
	if err != nil {
		return err
	}
	log, err := newLogger(*level, e, "api")
	if err != nil {
		return err
	}
	signing, err := apiSigning(appKeys, *secretFile, *sm2Pub, *keysFile, *window)
	if err != nil {
		return err
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

// apiFaults is the fault source of --fault or --fault-file; nil when neither is given.
func apiFaults(flag, file string) (platform.FaultSource, error) {
	switch {
	case flag != "" && file != "":
		return nil, usagef("--fault and --fault-file exclude each other")
	case flag != "":
		f, err := platform.ParseFault(flag)
		if err != nil {
			return nil, usagef("--fault: %v", err)
		}
		return platform.Always(f), nil
	case file != "":
		return platform.NewFileScript(file)
	}
	return nil, nil
}

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string { return strings.Join(*r, ",") }

func (r *repeated) Set(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	*r = append(*r, v)
	return nil
}

// apiSigning is the server's signature check: the --app-key keys with --secret-file and
// --sm2-public-key, and the keys of --keys-file; nil when there are none.
func apiSigning(appKeys []string, secretFile, sm2Pub, keysFile string, window time.Duration) (*platform.Signing, error) {
	if len(appKeys) == 0 && keysFile == "" {
		return nil, nil
	}
	s := &platform.Signing{Keys: map[string]platform.Key{}, Window: window}
	k, err := apiKey(secretFile, sm2Pub, "--secret-file", "--sm2-public-key")
	if err != nil {
		return nil, err
	}
	for _, a := range appKeys {
		s.Keys[a] = k
	}
	if keysFile == "" {
		return s, nil
	}
	b, err := os.ReadFile(keysFile)
	if err != nil {
		return nil, fmt.Errorf("--keys-file: %w", err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("--keys-file %s: line %d: want APP_KEY SECRET_FILE [SM2_PUBLIC_KEY_FILE], got %d fields", keysFile, i+1, len(f))
		}
		secret, pub := f[1], ""
		if secret == "-" {
			secret = ""
		}
		if len(f) == 3 {
			pub = f[2]
		}
		k, err := apiKey(secret, pub, fmt.Sprintf("--keys-file %s: line %d: secret file", keysFile, i+1), fmt.Sprintf("--keys-file %s: line %d: SM2 public key", keysFile, i+1))
		if err != nil {
			return nil, err
		}
		if _, dup := s.Keys[f[0]]; dup {
			return nil, fmt.Errorf("--keys-file %s: line %d: app key %s is listed twice", keysFile, i+1, f[0])
		}
		s.Keys[f[0]] = k
	}
	if len(s.Keys) == 0 {
		return nil, fmt.Errorf("--keys-file %s lists no app key", keysFile)
	}
	return s, nil
}

// apiKey reads one app key's secret and SM2 public key (either may be empty).
func apiKey(secretFile, pubFile, secretName, pubName string) (platform.Key, error) {
	var k platform.Key
	if secretFile != "" {
		secret, err := readSecret(secretFile)
		if err != nil {
			return k, fmt.Errorf("%s: %w", secretName, err)
		}
		k.Secret = secret
	}
	if pubFile != "" {
		b, err := os.ReadFile(pubFile)
		if err != nil {
			return k, fmt.Errorf("%s %s: %w", pubName, pubFile, err)
		}
		if k.SM2Public, err = platform.ParseSM2PublicKey(b); err != nil {
			return k, fmt.Errorf("%s %s: %w", pubName, pubFile, err)
		}
	}
	return k, nil
}

// readSecret reads the shared secret; the error never quotes it.
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return b, nil
}
