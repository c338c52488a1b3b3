package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/open"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/verify"
	"github.com/sentinel-edge/sentinel/verify/signing"
)

func init() { register("check", "validate a config file and prove its platform mapping", cmdCheck) }

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "check --config FILE", stdout, stderr)
	path := fs.String("config", "", "config `FILE` to validate")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sentinel check --config FILE\n\n"+
			"Validates the config (every problem with its key and line) and proves its platform\n"+
			"mapping: its signing section (an SM2 private key must parse), and its sample answer,\n"+
			"which is printed as the unit reads it (personal data masked). A mapping without a\n"+
			"sample gets a warning: its paths were not proven. A config that sentinel run would\n"+
			"refuse as not provisioned (the placeholder identity, a secret file missing, open to\n"+
			"others or a placeholder) is reported with the reasons. Exit 0 valid, 2 invalid or\n"+
			"not provisioned.\n\n")
		fs.PrintDefaults()
	}
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	cfg, code := loadConfig(fs, *path, stderr)
	if cfg == nil {
		return code
	}
	m, err := verify.LoadMapping(cfg.Platform.Mapping)
	if err != nil { // validated by config.Load; a file changed since is still an error
		fmt.Fprintf(stderr, "%s: platform.mapping: %v\n", *path, err)
		return exitUsage
	}
	if err := open.FaceSearchMapped(cfg, m); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return exitUsage
	}
	if probs := mappingProblems(*path, cfg, m); len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintln(stderr, p)
		}
		return exitUsage
	}
	if ps := config.CheckProvisioned(cfg); len(ps) > 0 {
		printUnprovisioned(stderr, *path, ps)
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s: ok (device %s, venue %s, style %s)\n", *path, cfg.Device.ID, cfg.Device.Venue, cfg.Device.Style)
	printMappingProof(stdout, cfg, m)
	if cfg.FaceTrigger() == config.CameraTriggerDetect && !open.HasDetector {
		fmt.Fprintf(stdout, "note: camera.trigger detect needs the pillar build: this binary (%s) has no face detector and `run` refuses this config; run it with sentinel-pillar\n", filepath.Base(os.Args[0]))
	}
	return exitOK
}

// printUnprovisioned says that sentinel run would refuse the config, and why, each reason
// with its key and line.
func printUnprovisioned(w io.Writer, path string, ps []config.Problem) {
	fmt.Fprintf(w, "%s: valid, but NOT PROVISIONED: sentinel run would refuse it:\n", path)
	for _, p := range ps {
		if p.Line == 0 {
			p.Line = configLine(path, p.Key)
		}
		fmt.Fprintf(w, "%s: %s\n", path, p)
	}
	fmt.Fprintln(w, "run sentinel provision for this unit (docs/field-guide.md, section 2)")
}

// mappingProblems are what config.Load cannot see: a platform.signing written out that
// contradicts the mapping's signing section, and an SM2 private key that does not parse.
func mappingProblems(path string, cfg *config.Config, m *verify.Mapping) []string {
	var ps []string
	p := cfg.Platform
	// config.Load refuses a contradicting platform.signing other than the default; the
	// default written out is seen here.
	if line := configLine(path, "platform.signing"); line > 0 && p.Signing == config.DefaultSigning {
		if err := m.SigningConflict(p.Signing); err != nil {
			ps = append(ps, fmt.Sprintf("%s: line %d: platform.signing: %v", path, line, err))
		}
	}
	s := m.Signing
	if s == nil || s.Algorithm != signing.SM2 {
		return ps
	}
	if err := m.CheckKeyFile(); err != nil {
		ps = append(ps, fmt.Sprintf("%s: %v", path, err))
	}
	if s.KeyFile == "" && p.SecretFile != "" {
		b, err := verify.ReadSecretFile(p.SecretFile)
		if err == nil {
			_, err = signing.ParseSM2PrivateKey(b)
		}
		if err != nil {
			ps = append(ps, fmt.Sprintf("%s: line %d: platform.secret_file: %v (with sm2 and no signing.key_file it holds the unit's PEM private key)", path, configLine(path, "platform.secret_file"), err))
		}
	}
	return ps
}

// printMappingProof says which mapping and signing the unit uses, warns of what is not
// proven, and prints the sample answer as the unit reads it.
func printMappingProof(w io.Writer, cfg *config.Config, m *verify.Mapping) {
	file := m.File()
	if file == "" {
		file = "built in"
	}
	fmt.Fprintf(w, "mapping %s (%s, %s)\n", m.Name, file, m.Hash())
	if cfg.Platform.SecretFile == "" {
		fmt.Fprintln(w, "signing: off (platform.secret_file is not set)")
		if m.Signing != nil {
			fmt.Fprintln(w, "warning: the mapping has a signing section but platform.secret_file is not set: requests go unsigned")
		}
	} else {
		fmt.Fprintf(w, "signing: %s\n", m.SigningAlgorithm(cfg.Platform.Signing))
	}
	if m.Sample == "" {
		fmt.Fprintf(w, "warning: mapping %s has no sample answer: its paths, value maps and times were not proven (add sample: with a success answer of the platform, or run sentinel try)\n", m.Name)
		return
	}
	reads, err := m.ReadFields([]byte(m.Sample))
	if err != nil {
		return // ParseMapping proved the sample
	}
	fmt.Fprintln(w, "the sample answer, as the unit reads it:")
	printReadings(w, reads)
}

// printReadings is the table of mapped fields: key, path, what the unit reads (masked).
func printReadings(w io.Writer, reads []verify.Reading) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  FIELD\tPATH\tREAD AS")
	for _, r := range reads {
		v := maskReading(r)
		if r.Problem != "" {
			v = "NOT RESOLVED: " + r.Problem
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.Key, r.Path, v)
	}
	tw.Flush()
}

// maskReading is what a reading shows: personal data masked, and the raw value beside a
// mapped one.
func maskReading(r verify.Reading) string {
	switch {
	case r.Key == "id_number":
		return privacy.MaskID(r.Value)
	case r.Key == "name":
		return privacy.MaskName(r.Value)
	case r.Raw != r.Value:
		return fmt.Sprintf("%s (%q)", r.Value, r.Raw)
	}
	return r.Value
}

// configLine is the line of a dotted key in a config file; 0 when it is not there.
func configLine(path, key string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var root yaml.Node
	if yaml.Unmarshal(b, &root) != nil || len(root.Content) == 0 {
		return 0
	}
	n := root.Content[0]
	line := 0
	for _, part := range strings.Split(key, ".") {
		if n.Kind != yaml.MappingNode {
			return 0
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				line, next = n.Content[i].Line, n.Content[i+1]
				break
			}
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return line
}
