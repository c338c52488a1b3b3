package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sentinel-edge/sentinel/internal/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // a second signal kills the old-fashioned way
	code := run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr})
	stop()
	os.Exit(code)
}

// env is the process's standard streams, swapped in tests.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, e env) error
}

var commands = []command{
	{"api", "serve the docking interface (docs/docking-spec.md) from a population file", runAPI},
	{"scan", "act as a serial QR scanner on a pty or a character device", runScan},
	{"broker", "run an embedded allow-all MQTT broker for demos", runBroker},
	{"population", "write a synthetic population CSV and token list", runPopulation},
	{"version", "print build information (also --version, -v)", runVersion},
}

// runVersion prints the build's identity, as sentinel version does.
func runVersion(_ context.Context, args []string, e env) error {
	fs := newFlags("version", "[--json]", "Prints the version, commit, build time, Go version and OS/architecture.", e)
	asJSON := fs.Bool("json", false, "print as JSON")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	bi := buildinfo.Get()
	if *asJSON {
		b, _ := json.Marshal(bi)
		fmt.Fprintln(e.stdout, string(b))
		return nil
	}
	fmt.Fprintln(e.stdout, "sentinel-sim"+strings.TrimPrefix(bi.String(), "sentinel"))
	return nil
}

func mainUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: sentinel-sim <command> [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'sentinel-sim <command> --help' for the flags of a command.\n"+
		"Exit status: 0 on success or SIGINT/SIGTERM, 1 on a runtime error, 2 on a usage error.\n")
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		mainUsage(e.stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		mainUsage(e.stdout)
		return 0
	case "--version", "-v", "-version":
		args = append([]string{"version"}, args[1:]...)
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], e)
		var ue usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp), errors.Is(err, context.Canceled):
			return 0
		case errors.Is(err, errFlagParse):
			return 2 // the flag package has printed the problem and the usage
		case errors.As(err, &ue):
			fmt.Fprintf(e.stderr, "sentinel-sim %s: %s\nRun 'sentinel-sim %s --help' for usage.\n", c.name, ue.msg, c.name)
			return 2
		default:
			fmt.Fprintf(e.stderr, "sentinel-sim %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "sentinel-sim: unknown command %q\n\n", args[0])
	mainUsage(e.stderr)
	return 2
}

var errFlagParse = errors.New("flag parse error")

// newFlags returns a flag set whose --help prints usage text to stdout and
// whose errors go to stderr.
func newFlags(name, synopsis, about string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet("sentinel-sim "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: sentinel-sim %s %s\n\n%s\n\nFlags:\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, refusing positional arguments. --help prints the
// usage to stdout and returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, e env) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errFlagParse
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// logLevelFlag adds --log-level to fs.
func logLevelFlag(fs *flag.FlagSet) *string {
	return fs.String("log-level", "info", "log level: debug, info, warn or error")
}

func newLogger(level string, e env, cmd string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return nil, usagef("--log-level must be debug, info, warn or error, got %q", level)
	}
	h := slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: l})
	return slog.New(h).With("cmd", cmd), nil
}
