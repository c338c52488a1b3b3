package verify_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/sentinel-edge/sentinel/verify"
)

// The examples of docs/docking-spec.md, "One mapping per scheme", are the shipped mappings
// (without their comments and sample), and the written-out canonical section parses.
func TestDocExamplesAreTheShippedMappings(t *testing.T) {
	b, err := os.ReadFile("../docs/docking-spec.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	doc = doc[strings.Index(doc, "### One mapping per scheme"):strings.Index(doc, "## Commissioning")]
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	seen := 0
	for _, blk := range blocks {
		y := blk[1]
		if strings.HasPrefix(y, "signing:") {
			if _, err := verify.ParseMapping([]byte(string(verify.ReferenceMappingYAML()) + y)); err != nil {
				t.Errorf("the canonical section: %v", err)
			}
			continue
		}
		name := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(y, "\n", 2)[0], "name:"))
		shipped := readMapping(t, name)
		var lines []string
		for _, l := range strings.Split(shipped[:strings.Index(shipped, "sample:")], "\n") {
			if !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
		if strings.Join(lines, "\n") != y {
			t.Errorf("the doc's %s differs from configs/mappings/%s.yaml", name, name)
		}
		if _, err := verify.ParseMapping([]byte(y)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		seen++
	}
	if seen != 4 {
		t.Errorf("%d full examples in the doc, want one per non-default scheme (4)", seen)
	}
}
