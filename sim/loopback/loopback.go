package loopback

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ErrNotLoopback reports a listen address that would accept remote clients.
var ErrNotLoopback = errors.New("loopback: not a loopback address")

// Check returns nil when addr ("host:port") binds only loopback interfaces:
// a loopback IP (127.0.0.0/8, ::1) or "localhost". An empty host (":8080"),
// 0.0.0.0, :: or any other name or address is refused.
func Check(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("loopback: listen address %q: %w", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	return nil
}
