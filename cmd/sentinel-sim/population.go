package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sentinel-edge/sentinel/sim/population"
)

func runPopulation(_ context.Context, args []string, e env) error {
	fs := newFlags("population", "--out FILE [--tokens-out FILE] [flags]",
		"Writes a synthetic population CSV for `sentinel-sim api`: valid GB 11643-1999\n"+
			"ID numbers, synthetic names, times relative to --now. It always holds the\n"+
			"tokens HC-GREEN-FRESH, HC-GREEN-OLD, HC-GREEN-NONAT, HC-YELLOW, HC-RED and\n"+
			"HC-GREEN-POS, then --random more people. --tokens-out writes a token list for\n"+
			"`sentinel-sim scan`: every token once plus HC-UNKNOWN-0001, mixed.", e)
	out := fs.String("out", "", "population CSV `file` to write (required; - for stdout)")
	tokensOut := fs.String("tokens-out", "", "token list `file` to write (optional)")
	nowStr := fs.String("now", "", "RFC 3339 `time` the population's times are relative to (default: now)")
	seed := fs.Uint64("seed", 1, "random seed; the same seed and --now give the same files")
	random := fs.Int("random", population.DefaultRandom, "number of random people after the fixed ones")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required")
	}
	if *random < 0 || *random > 100000 {
		return usagef("--random must be between 0 and 100000, got %d", *random)
	}
	now := time.Now()
	if *nowStr != "" {
		t, err := time.Parse(time.RFC3339, *nowStr)
		if err != nil {
			return usagef("--now must be an RFC 3339 time such as 2026-11-25T08:00:00Z, got %q", *nowStr)
		}
		now = t
	}

	people := population.Generate(population.GenerateOptions{Now: now, Seed: *seed, Random: *random})
	var csv bytes.Buffer
	if err := population.WriteCSV(&csv, people); err != nil {
		return err
	}
	if err := writeOut(*out, csv.Bytes(), e); err != nil {
		return err
	}
	if *tokensOut != "" {
		list := population.TokenList(people, *seed)
		if err := writeOut(*tokensOut, []byte(strings.Join(list, "\n")+"\n"), e); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stderr, "wrote %d people to %s\n", len(people), *out)
	return nil
}

// writeOut writes data to path atomically (a temporary file renamed over
// it), or to stdout for "-".
func writeOut(path string, data []byte, e env) error {
	if path == "-" {
		_, err := e.stdout.Write(data)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
