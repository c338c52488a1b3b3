package main

import (
	"fmt"
	"io"

	"github.com/sentinel-edge/sentinel/agent"
)

func init() {
	register("relay-off", "de-energise the barrier relay (systemd runs it after the daemon stops)", cmdRelayOff)
}

// cmdRelayOff drives the relay to its safe state from the config's barrier section alone, so
// it works even when the rest of the config is invalid.
func cmdRelayOff(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("relay-off", "relay-off --config FILE", stdout, stderr)
	path := fs.String("config", "", "config `FILE` whose barrier section names the relay")
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	if *path == "" {
		fmt.Fprintf(stderr, "%s: --config FILE is required\n", fs.Name())
		return exitUsage
	}
	had, err := agent.RelayOff(*path)
	switch {
	case err != nil:
		fmt.Fprintln(stderr, "sentinel:", err)
		return exitFailure
	case had:
		fmt.Fprintln(stdout, "barrier relay de-energised")
	default:
		fmt.Fprintln(stdout, "no GPIO barrier relay in this config: nothing to do")
	}
	return exitOK
}
