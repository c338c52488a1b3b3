package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/sentinel-edge/sentinel/drivers/idcard"
	"github.com/sentinel-edge/sentinel/sim/card"
	"github.com/sentinel-edge/sentinel/sim/population"
	"github.com/sentinel-edge/sentinel/sim/scanner"
)

func init() {
	commands = append(commands, command{"card", "act as a second-generation ID-card reader (SAM protocol) on a pty", runCard})
}

func runCard(ctx context.Context, args []string, e env) error {
	names := make([]string, len(card.Faults))
	for i, f := range card.Faults {
		names[i] = string(f)
	}
	fs := newFlags("card", "--port PATH --population FILE [--present ID|#N | --script FILE] [flags]",
		"Acts as an ID-card reader built on the SAM module: creates a pty, links PATH\n"+
			"to its slave, and answers the agent's find (20 01), select (20 02), read\n"+
			"(30 01), status (11 FF) and reset (10 FF) frames with the real byte protocol.\n"+
			"The card on the reader is the population's person with ID number --present\n"+
			"(or #N, the N-th row), or what --script lays there over time; with neither,\n"+
			"no card lies on the reader. badcheck:ID or badcheck:#N presents that card with\n"+
			"a wrong GB 11643 check character (a forged or damaged card). A script has one\n"+
			"step a line:\n"+
			"  present ID|#N|badcheck:ID|badcheck:#N   remove   wait DURATION   fault NAME   sam-fail\n"+
			"--fault NAME[,NAME] with --fault-every N puts faults into every N-th reply.\n"+
			"Faults: "+strings.Join(names, ", ")+".\n"+
			"Prints \"port ready: PATH -> /dev/pts/N\" to stderr. Runs until SIGINT/SIGTERM\n"+
			"(after a script ends, the last card stays). ID numbers are logged masked.", e)
	port := fs.String("port", "", "`path` of the pty symlink to create (required)")
	popFile := fs.String("population", "", "population CSV `file` (required)")
	present := fs.String("present", "", "ID number (or #N, or badcheck:ID|#N) of the card lying on the reader")
	script := fs.String("script", "", "script `file` that lays cards on the reader and injects faults")
	faults := fs.String("fault", "", "comma-separated faults put into every --fault-every-th reply")
	every := fs.Int("fault-every", 0, "put the --fault faults into every `N`-th reply (0: never)")
	seed := fs.Uint64("seed", 1, "random seed for noise and fragment sizes")
	level := logLevelFlag(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	switch {
	case *port == "":
		return usagef("--port is required")
	case *popFile == "":
		return usagef("--population is required")
	case *present != "" && *script != "":
		return usagef("--present and --script are exclusive")
	case *every < 0:
		return usagef("--fault-every must be >= 0, got %d", *every)
	case (*faults == "") != (*every == 0):
		return usagef("--fault and --fault-every go together")
	}
	fl, err := parseCardFaults(*faults)
	if err != nil {
		return err
	}
	log, err := newLogger(*level, e, "card")
	if err != nil {
		return err
	}
	pop, err := population.Load(*popFile)
	if err != nil {
		return err
	}
	first, steps, err := cardPlan(pop, *present, *script)
	if err != nil {
		return err
	}

	p, err := scanner.OpenDuplex(*port, log)
	if err != nil {
		return err
	}
	defer p.Close()
	stopClose := context.AfterFunc(ctx, func() { _ = p.Close() })
	defer stopClose()
	r := card.New(p, card.Options{Every: *every, Faults: fl, Log: log, Seed: *seed})
	if first != nil {
		r.Present(first)
	}
	fmt.Fprintf(e.stderr, "port ready: %s\n", p)
	if len(steps) > 0 {
		go func() {
			if err := card.Play(ctx, r, steps); err == nil {
				log.Info("script done")
			}
		}()
	}
	if err := r.Serve(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return p.Close()
}

// parseCardFaults parses --fault's comma-separated fault names.
func parseCardFaults(list string) ([]card.Fault, error) {
	if list == "" {
		return nil, nil
	}
	var fl []card.Fault
	for _, name := range strings.Split(list, ",") {
		f, err := card.ParseFault(strings.TrimSpace(name))
		if err != nil {
			return nil, usagef("--fault: %v", err)
		}
		fl = append(fl, f)
	}
	return fl, nil
}

// cardPlan is what lies on the reader: the card --present names (nil for none), and the
// steps of --script.
func cardPlan(pop *population.Population, present, script string) (*idcard.Info, []card.Step, error) {
	var first *idcard.Info
	if present != "" {
		info, err := card.Lookup(pop, present)
		if err != nil {
			return nil, nil, usagef("--present: %v", err)
		}
		first = &info
	}
	if script == "" {
		return first, nil, nil
	}
	f, err := os.Open(script)
	if err != nil {
		return nil, nil, fmt.Errorf("script: %w", err)
	}
	defer f.Close()
	steps, err := card.ParseScript(f, script, pop)
	return first, steps, err
}
