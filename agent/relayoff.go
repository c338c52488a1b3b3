package agent

import (
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/open"
)

// RelayOff drives the barrier relay named in the config file at path to its de-energised
// state and releases it. It reads only the barrier section, leniently, so that it works with
// a config the daemon itself refuses: systemd runs it after the daemon stopped or crashed
// (ExecStopPost), so that a pulse-driven barrier closes whatever ended the daemon. It says
// whether there was a relay to drive.
func RelayOff(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("agent: relay-off: %w", err)
	}
	var c struct {
		Barrier config.Barrier `yaml:"barrier"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return false, fmt.Errorf("agent: relay-off: %s: the barrier section cannot be read: %w", path, err)
	}
	if c.Barrier.Driver != "gpio" {
		return false, nil
	}
	rel, err := open.Relay(c.Barrier)
	if err != nil {
		return false, fmt.Errorf("agent: relay-off: %w", err)
	}
	if err := rel.Halt(); err != nil {
		return true, fmt.Errorf("agent: relay-off: %w", err)
	}
	return true, nil
}
