package ops

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/sentinel-edge/sentinel/agent/clock"
	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/lane"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/statefile"
)

// Remote commands arrive on <prefix>/<venue>/<device>/cmd/<name> as a record.SignedCommand:
// the command's JSON and an Ed25519 signature over exactly those bytes by an operator key
// from commands.operator_keys. Each is answered on .../cmd/<name>/reply and recorded as an
// event; refused ones too. See docs/operations.md.

// seenFileName is the command nonces' state file, beside the queue.
const seenFileName = "commands-seen.json"

var commandID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)

// knownCommands are the names a unit executes.
var knownCommands = map[string]bool{record.CmdOpen: true, record.CmdReload: true, record.CmdMode: true, record.CmdSelftest: true}

type inbound struct {
	topic   string
	payload []byte
}

// commander verifies and runs commands, one at a time, on its own goroutine.
type commander struct {
	o       *Ops
	publish func(topic string, retained bool, payload []byte) error // set by the control connection
	in      chan inbound
	seen    *seenStore

	mu         sync.Mutex
	keys       []ed25519.PublicKey
	maxAge     time.Duration
	tokens     float64
	refilledAt time.Time
	suppressed int
}

func newCommander(o *Ops) (*commander, error) {
	c := &commander{o: o, in: make(chan inbound, 32), seen: openSeen(statefile.Path(o.opt.Cfg.Queue.Path, seenFileName), o),
		tokens: float64(o.t.RefusalBurst), refilledAt: time.Now()}
	if err := c.setKeys(o.opt.Cfg.Commands); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *commander) setKeys(cc config.Commands) error {
	keys := make([]ed25519.PublicKey, 0, len(cc.OperatorKeys))
	for i, k := range cc.OperatorKeys {
		pk, err := config.ParseOperatorKey(k)
		if err != nil {
			return fmt.Errorf("commands.operator_keys[%d]: %w", i, err)
		}
		keys = append(keys, pk)
	}
	c.mu.Lock()
	c.keys, c.maxAge = keys, cc.MaxAge
	c.mu.Unlock()
	return nil
}

// receive is paho's callback: it hands the message over and never blocks. A command that
// finds the queue full is dropped unanswered (a flood): it is counted in the metrics and in
// the next recorded event's suppressed.
func (c *commander) receive(topic string, payload []byte) {
	m := inbound{topic: topic, payload: append([]byte(nil), payload...)}
	select {
	case c.in <- m:
	default:
		c.o.metrics.commands.WithLabelValues(metricName(cmdName(topic)), "refused:overloaded").Inc()
		c.mu.Lock()
		c.suppressed++
		c.mu.Unlock()
	}
}

func (c *commander) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-c.in:
			c.handle(ctx, m)
		}
	}
}

// handle verifies, runs, answers and records one command. A panic in a handler is a
// failed command, not a dead daemon.
func (c *commander) handle(ctx context.Context, m inbound) {
	rep := record.CommandReply{Name: cmdName(m.topic), Device: c.o.opt.Cfg.Device.ID, Venue: c.o.opt.Cfg.Device.Venue}
	func() {
		defer func() {
			if r := recover(); r != nil {
				rep.Result, rep.Detail = record.ReplyFailed, "internal error"
				c.o.opt.Log.Error("command handler panicked", "command", safeName(rep.Name), "panic", fmt.Sprint(r))
			}
		}()
		cmd, key, why := c.verify(m)
		rep.Key = key
		if cmd != nil {
			rep.ID = cmd.ID
		}
		if why != "" {
			rep.Result, rep.Detail = record.ReplyRefused, why
			return
		}
		rep.Result, rep.Detail = c.execute(ctx, cmd)
	}()
	rep.TS, rep.Clock = record.TS(c.o.opt.Now()), c.o.opt.Clock()
	label := rep.Result
	if rep.Result == record.ReplyRefused {
		label += ":" + rep.Detail
	}
	c.o.metrics.commands.WithLabelValues(metricName(rep.Name), label).Inc()
	log := c.o.opt.Log.With("command", safeName(rep.Name), "id", rep.ID, "result", rep.Result, "detail", rep.Detail, "key", rep.Key)
	if rep.Result == record.ReplyRefused {
		log.Warn("command refused")
	} else {
		log.Info("command done")
	}
	b, _ := json.Marshal(rep)
	if err := c.publish(m.topic+"/reply", false, b); err != nil {
		c.o.opt.Log.Warn("command reply not published", "command", safeName(rep.Name), "err", err)
	}
	c.record(rep)
}

// verify checks a command; it returns why it is refused ("" when it may run).
func (c *commander) verify(m inbound) (*record.Command, string, string) {
	name := cmdName(m.topic)
	if len(m.payload) > c.o.t.MaxCommandBytes {
		return nil, "", "too_large"
	}
	var sc record.SignedCommand
	if err := decodeStrict(m.payload, &sc); err != nil || len(sc.Cmd) == 0 {
		return nil, "", "malformed"
	}
	var cmd record.Command
	cmdErr := decodeStrict(sc.Cmd, &cmd)
	var shown *record.Command
	if cmdErr == nil && commandID.MatchString(cmd.ID) {
		shown = &record.Command{ID: cmd.ID}
	}
	if sc.Sig == "" {
		return shown, "", "unsigned"
	}
	sig, err := base64.StdEncoding.DecodeString(sc.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return shown, "", "bad_signature"
	}
	c.mu.Lock()
	keys, maxAge := c.keys, c.maxAge
	c.mu.Unlock()
	if len(keys) == 0 {
		return shown, "", "no_operator_keys"
	}
	key := ""
	for _, k := range keys {
		if ed25519.Verify(k, sc.Cmd, sig) {
			key = record.KeyFingerprint(k)
			break
		}
	}
	if key == "" {
		return shown, "", "bad_signature"
	}
	switch {
	case cmdErr != nil || shown == nil:
		return shown, key, "malformed"
	case cmd.Venue != c.o.opt.Cfg.Device.Venue || cmd.Device != c.o.opt.Cfg.Device.ID:
		return shown, key, "wrong_unit"
	case cmd.Name != name:
		return shown, key, "name_mismatch"
	}
	now := c.o.opt.Now()
	switch {
	case now.Year() < clock.MinTrustedYear:
		// A clock that reads before 2024 cannot check expiry: refuse rather than guess. A
		// plausible clock that NTP has not confirmed (an RTC) is used; the reply says
		// clock=unsynced.
		return shown, key, "clock_unsynced"
	case cmd.IssuedAt.IsZero() || cmd.ExpiresAt.IsZero():
		return shown, key, "malformed"
	case !now.Before(cmd.ExpiresAt):
		return shown, key, "expired"
	case cmd.IssuedAt.After(now.Add(c.o.t.CommandSkew)):
		return shown, key, "not_yet_valid"
	case cmd.ExpiresAt.Sub(cmd.IssuedAt) > maxAge:
		return shown, key, "validity_too_long"
	case c.seen.has(cmd.ID):
		return shown, key, "replayed"
	case !knownCommands[name]:
		return shown, key, "unknown_command"
	}
	// Spend the nonce before acting: a crash mid-command must not allow a replay.
	if err := c.seen.add(cmd.ID, cmd.ExpiresAt, now); err != nil {
		c.o.opt.Log.Error("command nonce not stored; refusing", "err", err)
		return shown, key, "nonce_store_failed"
	}
	return &cmd, key, ""
}

// execute runs a verified command.
func (c *commander) execute(ctx context.Context, cmd *record.Command) (string, string) {
	switch cmd.Name {
	case record.CmdOpen:
		return c.open(ctx)
	case record.CmdMode:
		return c.mode(cmd)
	case record.CmdReload:
		return c.reload(cmd)
	case record.CmdSelftest:
		return c.selftest(ctx)
	}
	return record.ReplyRefused, "unknown_command"
}

// open opens the barrier once, through the lane like any opening: the door sensor knows it
// was authorised, and the pulse is bounded by barrier.max_pulse.
func (c *commander) open(ctx context.Context) (string, string) {
	l := c.o.opt.Lane
	if l.Barrier() == "" {
		return record.ReplyUnsupported, "this unit has no barrier"
	}
	switch l.State().GateMode {
	case record.GateModeLocked:
		return record.ReplyRefused, "locked"
	case record.GateModeAlwaysOpen:
		return record.ReplyOK, "already held open"
	}
	d, err := l.Open(ctx)
	if err != nil {
		return record.ReplyFailed, err.Error()
	}
	return record.ReplyOK, "opened for " + d.String()
}

func (c *commander) mode(cmd *record.Command) (string, string) {
	m := cmd.Args["mode"]
	err := c.o.opt.Lane.SetGateMode(m, "command "+cmd.ID)
	switch {
	case errors.Is(err, lane.ErrModeNotPersisted):
		// In force now, but a restart would not restore it: the operator must know.
		c.o.opt.Log.Error("gate mode set but not persisted", "mode", m, "err", err)
		return record.ReplyOK, "mode " + m + "; NOT persisted, a restart would not restore it: " + err.Error()
	case err != nil:
		return record.ReplyFailed, err.Error()
	}
	return record.ReplyOK, "mode " + m
}

func (c *commander) selftest(ctx context.Context) (string, string) {
	if c.o.opt.Selftest == nil {
		return record.ReplyUnsupported, "this build has no selftest"
	}
	st := c.o.opt.Selftest(ctx)
	c.o.recordSelftest(st)
	if !st.OK {
		return record.ReplyFailed, st.Detail
	}
	return record.ReplyOK, st.Detail
}

// reload reads the config file again, exactly as SIGHUP does (Options.Reload): what can
// change live changes, the reply names what needs a restart; an invalid file changes
// nothing.
func (c *commander) reload(cmd *record.Command) (string, string) {
	if c.o.opt.Reload == nil {
		return record.ReplyUnsupported, "the daemon was started without a config file path"
	}
	ok, detail := c.o.opt.Reload("command " + cmd.ID)
	if !ok {
		return record.ReplyFailed, detail
	}
	return record.ReplyOK, detail
}

// record records the command's outcome as an event, through the daemon's event recorder
// (never blocking). Refusals are rate limited; the ones left out are counted in the next
// recorded event's suppressed.
func (c *commander) record(rep record.CommandReply) {
	suppressed := 0
	c.mu.Lock()
	if rep.Result == record.ReplyRefused {
		now := time.Now()
		c.tokens += now.Sub(c.refilledAt).Seconds() / c.o.t.RefusalEvery.Seconds()
		c.refilledAt = now
		if c.tokens > float64(c.o.t.RefusalBurst) {
			c.tokens = float64(c.o.t.RefusalBurst)
		}
		if c.tokens < 1 {
			c.suppressed++
			c.mu.Unlock()
			return
		}
		c.tokens--
	}
	suppressed, c.suppressed = c.suppressed, 0
	c.mu.Unlock()
	rep.Name = safeName(rep.Name)
	c.o.opt.Events.Emit(record.Event{Type: record.EventCommand, Source: record.SourceCommand, Command: &rep, Suppressed: suppressed})
}

// decodeStrict decodes exactly one JSON value into v: unknown fields and trailing data are
// errors.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// metricName keeps the metric's label set bounded: unknown names become "other".
func metricName(n string) string {
	if knownCommands[n] {
		return n
	}
	return "other"
}

// safeName is a command name fit for logs and records.
func safeName(n string) string {
	if knownCommands[n] || commandID.MatchString(n) {
		return n
	}
	return fmt.Sprintf("(invalid name, %d bytes)", len(n))
}

// seenStore remembers executed command ids until they expire, in a small file written
// atomically, so that a command cannot be replayed, even across a restart.
type seenStore struct {
	path string
	max  int // past it new commands are refused (nonce_store_failed)

	mu     sync.Mutex
	ids    map[string]time.Time // id → expires_at
	broken error                // the file could not be read: every command is refused
}

// openSeen reads the store. A corrupt file is moved aside (the ids in it have expired or
// will within commands.max_age); an unreadable one breaks the store.
func openSeen(path string, o *Ops) *seenStore {
	s := &seenStore{path: path, max: o.t.MaxSeen, ids: map[string]time.Time{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s
	case err != nil:
		// Starting empty would allow replays, and stopping would stop the lane: the lane
		// runs, and every command is refused (nonce_store_failed) until a restart reads it.
		s.broken = fmt.Errorf("commands: read %s: %w", path, err)
		o.opt.Log.Error("command nonce file unreadable; every command will be refused", "path", path, "err", err)
		return s
	}
	if err := json.Unmarshal(b, &s.ids); err != nil {
		aside := statefile.MoveAside(path)
		o.opt.Log.Warn("command nonce file unreadable; moved aside, starting empty", "path", path, "aside", aside, "err", err)
		s.ids = map[string]time.Time{}
	}
	return s
}

func (s *seenStore) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids[id]
	return ok
}

// add stores id until exp, dropping expired ids, and writes the file (temp, fsync, rename).
func (s *seenStore) add(id string, exp, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	for k, e := range s.ids {
		if now.After(e) {
			delete(s.ids, k)
		}
	}
	if len(s.ids) >= s.max {
		return fmt.Errorf("commands: %d unexpired command ids stored", len(s.ids))
	}
	s.ids[id] = exp
	b, err := json.Marshal(s.ids)
	if err != nil {
		return err
	}
	if err := statefile.Write(s.path, b); err != nil {
		delete(s.ids, id)
		return err
	}
	return nil
}
