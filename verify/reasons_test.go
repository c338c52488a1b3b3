package verify

import (
	"os"
	"strings"
	"testing"
)

// Every reason code is documented in docs/reasons.md.
func TestReasonsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/reasons.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Reasons {
		if !strings.Contains(string(doc), "| `"+r.Code+"` |") {
			t.Errorf("reason %s is not in docs/reasons.md", r.Code)
		}
	}
}
