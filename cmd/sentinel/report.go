package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Report subcommands (sentinel report calls, sentinel report fleet, ...) register here from
// their files' init.
var reports = map[string]command{}

func registerReport(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	if _, dup := reports[name]; dup {
		panic("sentinel: report registered twice: " + name)
	}
	reports[name] = command{summary, run}
}

func init() { register("report", "print a report (sentinel report KIND --help)", cmdReport) }

func reportUsage() string {
	names := make([]string, 0, len(reports))
	for n := range reports {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("Usage: sentinel report KIND [flags]\n\nKinds:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-8s %s\n", n, reports[n].summary)
	}
	return b.String()
}

func cmdReport(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, reportUsage())
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, reportUsage())
		return exitOK
	}
	r, ok := reports[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "sentinel report: unknown kind %q\n\n%s", args[0], reportUsage())
		return exitUsage
	}
	return r.run(args[1:], stdout, stderr)
}
