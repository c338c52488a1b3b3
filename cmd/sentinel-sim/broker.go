package main

import (
	"context"
	"fmt"

	"github.com/sentinel-edge/sentinel/sim/broker"
	"github.com/sentinel-edge/sentinel/sim/loopback"
)

func runBroker(ctx context.Context, args []string, e env) error {
	fs := newFlags("broker", "[--listen ADDR] [flags]",
		"Runs an embedded MQTT 3.1.1/5 broker (mochi-mqtt) that lets every client in,\n"+
			"for demos only. Prints \"broker listening on HOST:PORT\" to stderr once ready;\n"+
			"--listen 127.0.0.1:0 picks a free port.", e)
	listen := fs.String("listen", "127.0.0.1:1883", "`address` to listen on; loopback only unless --allow-remote")
	allowRemote := fs.Bool("allow-remote", false, "allow a non-loopback --listen address")
	level := logLevelFlag(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if !*allowRemote {
		if err := loopback.Check(*listen); err != nil {
			return usagef("--listen %q is not a loopback address; add --allow-remote to serve other machines", *listen)
		}
	}
	log, err := newLogger(*level, e, "broker")
	if err != nil {
		return err
	}
	b, err := broker.New(*listen, broker.Options{Logger: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "broker listening on %s\n", b.Addr())
	return b.Run(ctx)
}
