package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/sentinel-edge/sentinel/agent/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usage lists the registered commands; each command's --help gives its flags.
func usage() string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("sentinel — edge agent for electronic-sentinel terminals\n\nUsage: sentinel COMMAND [flags]\n\nCommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-10s %s\n", n, commands[n].summary)
	}
	b.WriteString("  help       show help (sentinel help COMMAND, or sentinel COMMAND --help)\n")
	b.WriteString("\n--version (-v) is sentinel version.\n")
	b.WriteString("\nExit codes: 0 success, 1 runtime failure, 2 usage error or invalid config.\n")
	return b.String()
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

// register adds a command; each command's file calls it from init. A duplicate name panics.
func register(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	if _, dup := commands[name]; dup {
		panic("sentinel: command registered twice: " + name)
	}
	commands[name] = command{summary, run}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return exitUsage
	}
	name := args[0]
	switch name {
	case "--version", "-v", "-version":
		return cmdVersion(args[1:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.run([]string{"--help"}, stdout, stderr)
			}
		}
		fmt.Fprint(stdout, usage())
		return exitOK
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "sentinel: unknown command %q\n\n%s", name, usage())
		return exitUsage
	}
	return c.run(args[1:], stdout, stderr)
}

// newFlags returns a flag set whose --help prints its usage to stdout and exits 0, and whose
// errors print to stderr with the usage after them (parse prints it, once).
func newFlags(name, synopsis string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sentinel "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sentinel %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args; it returns a non-negative exit code when the command should stop. The
// usage is printed once: on stdout for --help, on stderr after a usage error.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) int {
	usage := fs.Usage
	fs.Usage = func() {} // the flag package would print it to stderr, before we can choose
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK
	case err != nil: // the flag package printed the problem
		fmt.Fprintln(fs.Output())
		fs.Usage()
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
