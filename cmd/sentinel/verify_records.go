package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sentinel-edge/sentinel/internal/chain"
)

func init() {
	register("verify-records", "check captured or live records: chains, gaps, edits, forks, signed heads", cmdVerifyRecords)
}

// verifyArgs are the flags of verify-records.
type verifyArgs struct {
	in, broker, filter, prefix, keys, state string
	ca, cert, key, userFile, passFile       string
	idle, wait, maxTime                     time.Duration
	json                                    bool
}

// verifyMaxLine bounds one line of a capture file (a topic and a payload).
const verifyMaxLine = 2 << 20

// verifySubscribed is called once the live subscription is up; tests wait on it.
var verifySubscribed = func() {}

func cmdVerifyRecords(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("verify-records", "verify-records --in FILE | --broker URL [--keys DIR] [--state FILE] [--json] [flags]", stdout, stderr)
	var a verifyArgs
	fs.StringVar(&a.in, "in", "", "captured messages, one `FILE` line each: topic, a space, the payload (mosquitto_sub -F '%t %p'); '-' reads standard input")
	fs.StringVar(&a.broker, "broker", "", "read live from the broker at `URL` (tcp://, ssl://), until it is idle")
	fs.StringVar(&a.filter, "filter", "", "topic `filter` to subscribe to (default PREFIX/#)")
	fs.StringVar(&a.prefix, "prefix", "sentinel/v1", "topic `prefix` (uplink.topic_prefix)")
	fs.StringVar(&a.keys, "keys", "", "`DIR` of the units' public keys: DIR/<venue>/<device>.pub (one key per line; the provisioning's chain.pub); without it the key of each unit's first status is trusted")
	fs.StringVar(&a.state, "state", "", "`FILE` where what was verified is kept between runs (read, then rewritten)")
	fs.StringVar(&a.ca, "ca", "", "`FILE`: the CA that signs the broker's certificate (PEM)")
	fs.StringVar(&a.cert, "cert", "", "`FILE`: client certificate (PEM), with --key")
	fs.StringVar(&a.key, "key", "", "`FILE`: client key (PEM)")
	fs.StringVar(&a.userFile, "username-file", "", "`FILE` whose first line is the broker user name")
	fs.StringVar(&a.passFile, "password-file", "", "`FILE` whose first line is the broker password")
	fs.DurationVar(&a.idle, "idle", 2*time.Second, "with --broker: stop once no message came for this long")
	fs.DurationVar(&a.wait, "wait", 10*time.Second, "with --broker: longest time to wait for the connection and the subscription")
	fs.DurationVar(&a.maxTime, "max-time", 0, "with --broker: stop after this long even if messages keep coming (0: only when idle)")
	fs.BoolVar(&a.json, "json", false, "print the report as JSON")
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	if err := a.check(); err != nil {
		fmt.Fprintf(stderr, "sentinel verify-records: %v\n", err)
		return exitUsage
	}
	opts := chain.VerifyOptions{Prefix: a.prefix}
	if a.keys != "" {
		keys, err := loadKeyDir(a.keys)
		if err != nil {
			fmt.Fprintf(stderr, "sentinel verify-records: --keys: %v\n", err)
			return exitUsage
		}
		opts.Keys = keys
	}
	if a.state != "" {
		st, err := chain.LoadState(a.state)
		if err != nil {
			fmt.Fprintf(stderr, "sentinel verify-records: --state: %v\n", err)
			return exitFailure
		}
		opts.State = st
	}
	v := chain.NewVerifier(opts)
	var err error
	if a.in != "" {
		err = readCapture(a.in, v, stderr)
	} else {
		err = readBroker(a, v)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sentinel verify-records: %v\n", err)
		return exitFailure
	}
	return writeVerifyReport(a, opts.State, v.Report(), stdout, stderr)
}

func (a *verifyArgs) check() error {
	switch {
	case (a.in == "") == (a.broker == ""):
		return errors.New("give --in FILE (captured messages) or --broker URL (live), one of them")
	case a.in != "" && (a.ca != "" || a.cert != "" || a.key != "" || a.userFile != "" || a.passFile != ""):
		return errors.New("--ca, --cert, --key, --username-file and --password-file go with --broker")
	case (a.cert == "") != (a.key == ""):
		return errors.New("--cert and --key go together")
	case (a.userFile == "") != (a.passFile == ""):
		return errors.New("--username-file and --password-file go together")
	case a.idle <= 0 || a.wait <= 0 || a.maxTime < 0:
		return errors.New("--idle and --wait must be > 0, --max-time >= 0")
	case strings.ContainsAny(a.prefix, "+#") || a.prefix == "":
		return fmt.Errorf("--prefix %q must be a topic prefix without wildcards", a.prefix)
	}
	if a.broker != "" {
		u, err := url.Parse(a.broker)
		if err != nil || u.Host == "" || !slices.Contains([]string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}, u.Scheme) {
			return fmt.Errorf("--broker must be a URL like tcp://host:1883 or ssl://host:8883, got %q", a.broker)
		}
	}
	if a.filter == "" {
		a.filter = strings.TrimSuffix(a.prefix, "/") + "/#"
	}
	return nil
}

// writeVerifyReport prints the report and saves the state; the exit code says whether
// everything verified.
func writeVerifyReport(a verifyArgs, prev *chain.State, rep *chain.Report, stdout, stderr io.Writer) int {
	var err error
	if a.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sentinel verify-records: write: %v\n", err)
		return exitFailure
	}
	if a.state != "" {
		if err := rep.NextState(prev).Save(a.state); err != nil {
			fmt.Fprintf(stderr, "sentinel verify-records: --state: %v\n", err)
			return exitFailure
		}
	}
	if !rep.OK {
		return exitFailure
	}
	return exitOK
}

// loadKeyDir reads DIR/<venue>/<device>.pub.
func loadKeyDir(dir string) (map[string][]ed25519.PublicKey, error) {
	venues, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	keys := map[string][]ed25519.PublicKey{}
	for _, v := range venues {
		if !v.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, v.Name()))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			device, ok := strings.CutSuffix(f.Name(), ".pub")
			if !ok || f.IsDir() {
				continue
			}
			ks, err := chain.LoadPublicKeys(filepath.Join(dir, v.Name(), f.Name()))
			if err != nil {
				return nil, err
			}
			keys[v.Name()+"/"+device] = ks
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no key: put each unit's chain.pub at %s/<venue>/<device>.pub", dir, dir)
	}
	return keys, nil
}

// readCapture feeds a capture file to v: each line a topic, a space and the payload. A line
// longer than verifyMaxLine is skipped and named, and fails the run.
func readCapture(path string, v *chain.Verifier, stderr io.Writer) error {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var long []int
	for n := 1; ; n++ {
		line, tooLong, err := readLine(br)
		topic, payload, _ := strings.Cut(strings.TrimSuffix(line, "\r"), " ")
		switch {
		case tooLong:
			long = append(long, n)
		case topic != "":
			v.Add(topic, []byte(payload))
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
				return err // it names the path already ("read DIR: is a directory")
			}
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
	if len(long) > 0 {
		return fmt.Errorf("%s: %d line(s) longer than %d bytes, not read (lines %v): is it a capture of mosquitto_sub -F '%%t %%p'?",
			path, len(long), verifyMaxLine, long[:min(len(long), 10)])
	}
	return nil
}

// readLine returns the next line without its newline; a line past verifyMaxLine is
// consumed and reported as too long.
func readLine(br *bufio.Reader) (line string, tooLong bool, err error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong && len(b)+len(chunk) > verifyMaxLine+1 {
			tooLong, b = true, nil
		} else if !tooLong {
			b = append(b, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return strings.TrimSuffix(string(b), "\n"), tooLong, err
	}
}

// readBroker subscribes to a.filter and feeds every message to v until none came for
// a.idle (or a.maxTime passed).
func readBroker(a verifyArgs, v *chain.Verifier) error {
	opts := mqtt.NewClientOptions().AddBroker(a.broker).
		SetClientID(fmt.Sprintf("sentinel-verify-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(a.wait)
	if err := brokerAuth(opts, a); err != nil {
		return err
	}
	var mu sync.Mutex
	got := make(chan struct{}, 1)
	handler := func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		v.Add(m.Topic(), m.Payload())
		mu.Unlock()
		select {
		case got <- struct{}{}:
		default:
		}
	}
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(a.wait) || tok.Error() != nil {
		err := tok.Error()
		if err == nil {
			err = fmt.Errorf("timed out after %s", a.wait)
		}
		return fmt.Errorf("connect to %s: %s%w", a.broker, connectHint(err), err)
	}
	defer c.Disconnect(100)
	if tok := c.Subscribe(a.filter, 1, handler); !tok.WaitTimeout(a.wait) || tok.Error() != nil {
		return fmt.Errorf("subscribe to %s: %v", a.filter, tok.Error())
	}
	verifySubscribed()
	idle := time.NewTimer(a.idle)
	defer idle.Stop()
	var deadline <-chan time.Time
	if a.maxTime > 0 {
		deadline = time.After(a.maxTime)
	}
	for {
		select {
		case <-got:
			idle.Reset(a.idle)
		case <-idle.C:
			mu.Lock() // the handler may be running: let it finish
			defer mu.Unlock()
			return nil
		case <-deadline:
			mu.Lock()
			defer mu.Unlock()
			return nil
		}
	}
}

// connectHint says what to check for the connect errors one meets.
func connectHint(err error) string {
	switch msg := err.Error(); {
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:"):
		return "the TLS handshake failed; does the broker's certificate verify against --ca (or was the client certificate refused)? "
	case strings.Contains(msg, "not Authorized") || strings.Contains(msg, "bad user name or password"):
		return "the broker refused the credentials (--username-file, --password-file) or the ACL: "
	}
	return ""
}

// brokerAuth sets TLS (TLS 1.2 or newer, the broker's certificate always verified) and the
// credentials from their files.
func brokerAuth(opts *mqtt.ClientOptions, a verifyArgs) error {
	if a.ca != "" || a.cert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if a.ca != "" {
			pem, err := os.ReadFile(a.ca)
			if err != nil {
				return fmt.Errorf("--ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("--ca: %s holds no PEM certificate", a.ca)
			}
			tc.RootCAs = pool
		}
		if a.cert != "" {
			kp, err := tls.LoadX509KeyPair(a.cert, a.key)
			if err != nil {
				return fmt.Errorf("--cert, --key: %w", err)
			}
			tc.Certificates = []tls.Certificate{kp}
		}
		opts.SetTLSConfig(tc)
	}
	if a.userFile != "" {
		user, err := firstLine(a.userFile)
		if err != nil {
			return fmt.Errorf("--username-file: %w", err)
		}
		pass, err := firstLine(a.passFile)
		if err != nil {
			return fmt.Errorf("--password-file: %w", err)
		}
		opts.SetUsername(user).SetPassword(pass)
	}
	return nil
}

// firstLine reads a credential file: its first line, at most 4 KiB read.
func firstLine(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimRight(line, "\r"); line == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return line, nil
}
