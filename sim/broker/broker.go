package broker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Options tune a Broker.
type Options struct {
	// Logger receives the broker's own log; nil discards it.
	Logger *slog.Logger
}

// Broker is an allow-all MQTT broker with one TCP listener.
type Broker struct {
	srv       *mqtt.Server
	tcp       *listeners.TCP
	closeOnce sync.Once
	closeErr  error
}

// New binds addr (use "127.0.0.1:0" for a free port, see Addr) and returns
// a broker ready to Run.
func New(addr string, opts Options) (*Broker, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := mqtt.New(&mqtt.Options{Logger: log, InlineClient: false})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		return nil, fmt.Errorf("broker: add auth hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w", addr, err)
	}
	return &Broker{srv: srv, tcp: tcp}, nil
}

// Addr is the address the broker listens on, with the real port.
func (b *Broker) Addr() string { return b.tcp.Address() }

// String describes the broker.
func (b *Broker) String() string { return "mqtt broker on " + b.Addr() }

// Run serves clients until ctx is done, then disconnects them and closes the
// listener. A cancelled ctx is a clean stop and returns nil.
func (b *Broker) Run(ctx context.Context) error {
	if err := b.srv.Serve(); err != nil {
		_ = b.Close()
		return fmt.Errorf("broker: serve: %w", err)
	}
	<-ctx.Done()
	return b.Close()
}

// Close stops the broker; it may be called more than once.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		if err := b.srv.Close(); err != nil {
			b.closeErr = fmt.Errorf("broker: close: %w", err)
		}
	})
	return b.closeErr
}

// allowAll lets every client connect and use every topic. It stands in for
// mochi's hooks/auth.AllowHook, whose package drags in a YAML module the
// module graph does not carry.
type allowAll struct {
	mqtt.HookBase
}

func (h *allowAll) ID() string { return "allow-all" }

func (h *allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (h *allowAll) OnACLCheck(*mqtt.Client, string, bool) bool { return true }
