package agent

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sentinel-edge/sentinel/agent/config"
)

// ErrNotProvisioned is returned by Run for a unit with a placeholder identity or a secret
// left empty or at a default (config.CheckProvisioned). A config without secret files (the
// demo) runs.
var ErrNotProvisioned = errors.New("agent: unit not provisioned")

// refuseUnprovisioned is Run's refusal of an unprovisioned unit; it runs first, before any
// GPIO line, the outbox, the scanner or the network is touched: an unprovisioned unit's
// template pins and ports may be wrong for the hardware, and the message must say "provision",
// not "wrong pin".
func refuseUnprovisioned(cfg *config.Config) error {
	ps := config.CheckProvisioned(cfg)
	if len(ps) == 0 {
		return nil
	}
	msgs := make([]string, 0, len(ps))
	for _, p := range ps {
		msgs = append(msgs, p.String())
	}
	return fmt.Errorf("%w: %s (run sentinel provision; see docs/field-guide.md)", ErrNotProvisioned, strings.Join(msgs, "; "))
}
