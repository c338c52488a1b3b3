package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sentinel-edge/sentinel/agent"
	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/internal/buildinfo"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usage = `sentinel — edge agent for electronic-sentinel terminals

Usage:
  sentinel run --config FILE      run the daemon
  sentinel check --config FILE    validate a config; print every problem with its key and line
  sentinel version                print version, commit, build time, Go version, OS/arch
  sentinel help [COMMAND]         show help

Exit codes: 0 success, 1 runtime failure, 2 usage error or invalid config.
Run "sentinel COMMAND --help" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"run":     {"run the daemon", cmdRun},
		"check":   {"validate a config file", cmdCheck},
		"version": {"print build information", cmdVersion},
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help", "-help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.run([]string{"--help"}, stdout, stderr)
			}
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "sentinel: unknown command %q\n\n%s", name, usage)
		return exitUsage
	}
	return c.run(args[1:], stdout, stderr)
}

// newFlags returns a flag set whose --help prints to stdout and exits 0, and whose errors
// print to stderr.
func newFlags(name, synopsis string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sentinel "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sentinel %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args; it returns a non-negative exit code when the command should stop.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) int {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK
	case err != nil:
		return exitUsage
	case fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage
	}
	return -1
}

func loadConfig(fs *flag.FlagSet, path string, stderr io.Writer) (*config.Config, int) {
	if path == "" {
		fmt.Fprintf(stderr, "%s: --config FILE is required\n", fs.Name())
		return nil, exitUsage
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, exitUsage
	}
	return cfg, -1
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "check --config FILE", stdout, stderr)
	path := fs.String("config", "", "config `FILE` to validate")
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	cfg, code := loadConfig(fs, *path, stderr)
	if cfg == nil {
		return code
	}
	fmt.Fprintf(stdout, "%s: ok (device %s, venue %s, style %s)\n", *path, cfg.Device.ID, cfg.Device.Venue, cfg.Device.Style)
	return exitOK
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "version [--json]", stdout, stderr)
	asJSON := fs.Bool("json", false, "print as JSON")
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	bi := buildinfo.Get()
	if *asJSON {
		fmt.Fprintf(stdout, `{"version":%q,"commit":%q,"build_time":%q,"go_version":%q,"os":%q,"arch":%q}`+"\n",
			bi.Version, bi.Commit, bi.BuildTime, bi.GoVersion, bi.OS, bi.Arch)
		return exitOK
	}
	fmt.Fprintln(stdout, bi.String())
	return exitOK
}

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
	opt := agent.Options{Log: log}
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

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	hopt := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, hopt))
	}
	return slog.New(slog.NewTextHandler(w, hopt))
}
