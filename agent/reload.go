package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/statefile"
	"github.com/sentinel-edge/sentinel/verify"
)

// ReloadFile is the outcome of the last reload, beside the queue: `sentinel reload` waits for
// it after signalling the daemon.
const ReloadFile = "reload.json"

// ReloadOutcome is what one reload did (ReloadFile).
type ReloadOutcome struct {
	At string `json:"at"`
	By string `json:"by"` // SIGHUP, or "command <id>"
	OK bool   `json:"ok"`
	// Applied are the keys that changed and are in force; Restart those that changed and
	// need a restart (not in force). Problems are why a file was refused.
	Applied  []string `json:"applied,omitempty"`
	Restart  []string `json:"restart,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

// liveKeys are the config keys (and sections, with a trailing dot) a reload puts in force:
// the venue's policy and the platform (a new verifier and client, swapped in whole), the
// install facts, the commands' keys, the status and docking settings, the screen's verdict
// hold, the log level. Everything else is read once at start: the device identity, the
// readers, the barrier and inputs, the camera, the outbox, the uplink, the listeners, the
// privacy keys, the log format.
var liveKeys = []string{"policy.", "platform.", "install.", "commands.", "status.", "screen.verdict_hold", "log.level"}

func isLive(key string) bool {
	for _, k := range liveKeys {
		if key == k || (strings.HasSuffix(k, ".") && strings.HasPrefix(key, k)) {
			return true
		}
	}
	return false
}

// applier puts a new config in force in operations; ops.Ops is one.
type applier interface{ Apply(*config.Config) error }

// reloader re-reads the config file: the one reload path, for SIGHUP and the reload command.
type reloader struct {
	path   string
	log    *slog.Logger
	level  *slog.LevelVar // nil: log.level needs a restart
	decs   *decisions
	onPing func(verify.Call)
	ops    applier

	mu  sync.Mutex // one reload at a time
	cfg atomic.Pointer[config.Config]
	// started is the config the daemon started with: what the restart-only keys hold in
	// force until a restart. Taken from cfg before the first reload replaces it.
	started *config.Config
}

// current is the config in force (the last one a reload took).
func (r *reloader) current() *config.Config { return r.cfg.Load() }

// running is the config the daemon started with (restart-only keys are in force as it
// holds them).
func (r *reloader) running() *config.Config {
	if r.started == nil {
		r.started = r.cfg.Load()
	}
	return r.started
}

// reloadFor is the reload command's hook: nil when the daemon has no config file to read.
func (r *reloader) reloadFor(path string) func(by string) (bool, string) {
	if path == "" {
		return nil
	}
	return r.reload
}

// reload reads the config file again. An invalid file, an unprovisioned one, or one whose
// platform client cannot be built (a secret file that cannot be read) is refused with its
// errors and changes nothing. Otherwise what can change live is put in force at once and
// what cannot is named at WARN. It returns whether the file was taken and a one-line detail.
func (r *reloader) reload(by string) (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.apply(by)
	out.At = record.TS(time.Now())
	if b, err := json.Marshal(out); err == nil {
		if err := statefile.Write(statefile.Path(r.current().Queue.Path, ReloadFile), append(b, '\n')); err != nil {
			r.log.Warn("reload outcome not stored", "err", err)
		}
	}
	if !out.OK {
		return false, fmt.Sprintf("config refused, the unit keeps the config it has (%d problem(s)), first: %s", len(out.Problems), out.Problems[0])
	}
	var parts []string
	if len(out.Applied) > 0 {
		parts = append(parts, "applied: "+strings.Join(out.Applied, ", "))
	}
	if len(out.Restart) > 0 {
		parts = append(parts, "restart needed for: "+strings.Join(out.Restart, ", "))
	}
	if len(parts) == 0 {
		return true, "nothing changed"
	}
	return true, strings.Join(parts, "; ")
}

func (r *reloader) apply(by string) ReloadOutcome {
	out := ReloadOutcome{By: by}
	refuse := func(problems ...string) ReloadOutcome {
		out.Problems = problems
		r.log.Error("config reload refused; the unit keeps running on the config it has", "by", by, "file", r.path,
			"problems", strings.Join(problems, "; "))
		return out
	}
	nc, err := config.Load(r.path)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) && len(ce.Problems) > 0 {
			ps := make([]string, 0, len(ce.Problems))
			for _, p := range ce.Problems {
				ps = append(ps, p.String())
			}
			return refuse(ps...)
		}
		return refuse(err.Error())
	}
	if err := refuseUnprovisioned(nc); err != nil {
		return refuse(err.Error())
	}
	// Live keys are compared with the config in force (the last one taken), restart-only
	// keys with the one the daemon started with: an edit that needs a restart stays named
	// on every reload until the restart, and undoing it names nothing.
	old, run := r.current(), r.running()
	changed := changedKeys("", reflect.ValueOf(*old), reflect.ValueOf(*nc))
	// A new platform client when a platform or policy key changed, or a file it reads did
	// (a rotated secret, an edited mapping): built before anything changes.
	var next *decider
	if slices.ContainsFunc(changed, func(k string) bool { return strings.HasPrefix(k, "platform.") || strings.HasPrefix(k, "policy.") }) ||
		r.filesChanged(nc, &changed) {
		// camera.* needs a restart: the face trigger in force, not the file's, says whether
		// policy.face_min_score applies and whether the mapping must search faces.
		dc := *nc
		dc.Camera = run.Camera
		if next, err = newDecider(&dc, r.onPing); err != nil {
			return refuse(err.Error())
		}
	}
	live := func(k string) bool { return isLive(k) && (k != "log.level" || r.level != nil) }
	for _, k := range changed {
		if live(k) {
			out.Applied = append(out.Applied, k)
		}
	}
	for _, k := range changedKeys("", reflect.ValueOf(*run), reflect.ValueOf(*nc)) {
		if !live(k) {
			out.Restart = append(out.Restart, k)
		}
	}
	if err := r.ops.Apply(nc); err != nil {
		return refuse(err.Error())
	}
	if next != nil {
		r.decs.swap(next)
	}
	if r.level != nil {
		var lvl slog.Level
		if lvl.UnmarshalText([]byte(nc.Log.Level)) == nil {
			r.level.Set(lvl)
		}
	}
	r.cfg.Store(nc)
	out.OK = true
	r.log.Info("config reloaded", "by", by, "applied", strings.Join(out.Applied, ","), "policy", r.decs.PolicyHash())
	if len(out.Restart) > 0 {
		r.log.Warn("config reloaded, but these changes need a restart and are NOT in force", "keys", strings.Join(out.Restart, ","))
	}
	return out
}

// filesChanged says whether the secret file or the mapping file of nc holds something else
// than the client in force read, and adds that to changed.
func (r *reloader) filesChanged(nc *config.Config, changed *[]string) bool {
	cur := r.decs.now()
	secretSum, mappingHash, err := platformFiles(nc)
	if err != nil {
		return true // newDecider says why
	}
	n := len(*changed)
	if secretSum != cur.secretSum {
		*changed = append(*changed, "platform.secret_file (contents)")
	}
	if mappingHash != cur.mappingHash {
		*changed = append(*changed, "platform.mapping (contents)")
	}
	return len(*changed) > n
}

// changedKeys lists the dotted config keys (by their yaml names) whose values differ
// between a and b.
func changedKeys(prefix string, a, b reflect.Value) []string {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return []string{prefix}
			}
			return nil
		}
		return changedKeys(prefix, a.Elem(), b.Elem())
	case reflect.Struct:
		var out []string
		for i := 0; i < a.NumField(); i++ {
			f := a.Type().Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			out = append(out, changedKeys(key, a.Field(i), b.Field(i))...)
		}
		return out
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		return []string{prefix}
	}
	return nil
}
