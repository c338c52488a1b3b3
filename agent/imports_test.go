package agent_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// allowed are the agent packages each agent package may import: each imports only what is
// below it, and agent (the wiring) alone imports them all. A new edge is a design decision:
// add it here on purpose (docs/architecture.md draws the same graph).
var allowed = map[string][]string{
	"agent/record":    nil,
	"agent/clock":     nil,
	"agent/statefile": nil,
	"agent/config":    nil,
	"agent/screen":    nil,
	"agent/events":    {"agent/clock", "agent/record"},
	"agent/lane":      {"agent/clock", "agent/record", "agent/statefile"},
	"agent/pipeline":  {"agent/clock", "agent/record"},
	"agent/face":      nil,
	"agent/seal":      {"agent/record"},
	"agent/audit":     {"agent/record"},
	"agent/open":      {"agent/config", "agent/record", "agent/seal"},
	"agent/selftest":  {"agent/clock", "agent/config", "agent/open", "agent/record", "agent/statefile"},
	"agent/ops":       {"agent/clock", "agent/config", "agent/events", "agent/lane", "agent/pipeline", "agent/record", "agent/screen", "agent/statefile"},
}

// TestImportsGoDown: no agent package imports agent, nor a sibling it should not know.
func TestImportsGoDown(t *testing.T) {
	const mod = "github.com/sentinel-edge/sentinel/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(strings.ReplaceAll(line, mod, ""))
		pkg, imports := f[0], f[1:]
		if pkg == "agent" {
			continue
		}
		ok, known := allowed[pkg]
		if !known {
			t.Errorf("%s: a new agent package; say in allowed what it may import", pkg)
			continue
		}
		for _, imp := range imports {
			if imp == "agent" || (strings.HasPrefix(imp, "agent/") && !slices.Contains(ok, imp)) {
				t.Errorf("%s imports %s", pkg, imp)
			}
		}
	}
}
