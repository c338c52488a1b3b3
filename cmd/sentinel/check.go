package main

import (
	"fmt"
	"io"
)

func init() { register("check", "validate a config file", cmdCheck) }

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
