package agent

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/statefile"
)

type fakeApplier struct{ got []*config.Config }

func (f *fakeApplier) Apply(c *config.Config) error { f.got = append(f.got, c); return nil }

const reloadYAML = `device: {id: gate-01, venue: "350582-0001", style: gate_all_in_one}
scanners: {qr: {driver: serial, port: /dev/null}}
platform: {url: "http://127.0.0.1:1", app_key: AK-1, secret_file: %DIR%/secret}
policy: {health_codes: [green]}
barrier: {driver: fake, pulse: 300ms}
queue: {path: %DIR%/queue.db}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
install: {unit: 某超市, location: 北门, brand: Acme, status: installed}
log: {level: info}
`

// reloadRig is a reloader over a config file in a temporary directory, as assemble builds it.
type reloadRig struct {
	dir, path string
	ops       *fakeApplier
	level     *slog.LevelVar
	rl        *reloader
}

func newReloadRig(t *testing.T) *reloadRig { return newReloadRigWith(t, reloadYAML) }

func newReloadRigWith(t *testing.T, yaml string) *reloadRig {
	t.Helper()
	r := &reloadRig{dir: t.TempDir(), ops: &fakeApplier{}, level: new(slog.LevelVar)}
	r.path = filepath.Join(r.dir, "sentinel.yaml")
	r.write(t, "secret", "the-issued-secret-of-gate-01-000")
	r.write(t, "sentinel.yaml", yaml)
	cfg, err := config.Load(r.path)
	if err != nil {
		t.Fatal(err)
	}
	first, err := newDecider(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	decs := &decisions{}
	decs.swap(first)
	r.rl = &reloader{path: r.path, log: slog.New(slog.NewTextHandler(io.Discard, nil)), level: r.level, decs: decs, ops: r.ops}
	r.rl.cfg.Store(cfg)
	return r
}

func (r *reloadRig) write(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, name), []byte(strings.ReplaceAll(body, "%DIR%", r.dir)), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (r *reloadRig) outcome(t *testing.T) ReloadOutcome {
	t.Helper()
	b, err := os.ReadFile(statefile.Path(filepath.Join(r.dir, "queue.db"), ReloadFile))
	if err != nil {
		t.Fatal(err)
	}
	var o ReloadOutcome
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// TestReload (issue #14, finding 4): the policy, the platform, the install facts and the
// log level change live, the verifier and its client swapped as one; what needs a restart
// is named; an invalid or unprovisioned file changes nothing.
func TestReload(t *testing.T) {
	r := newReloadRig(t)
	before, beforeCfg := r.rl.decs.now(), r.rl.current()
	r.write(t, "sentinel.yaml", strings.NewReplacer("[green]", "[green, yellow]", "北门", "南门", "pulse: 300ms", "pulse: 400ms",
		"level: info", "level: debug").Replace(reloadYAML))
	ok, detail := r.rl.reload("SIGHUP")
	if !ok || !strings.Contains(detail, "policy.health_codes") || !strings.Contains(detail, "restart needed for: barrier.pulse") {
		t.Fatalf("reload: %v %s", ok, detail)
	}
	out := r.outcome(t)
	if !out.OK || out.By != "SIGHUP" || !reflect.DeepEqual(out.Applied, []string{"policy.health_codes", "log.level", "install.location"}) ||
		!reflect.DeepEqual(out.Restart, []string{"barrier.pulse"}) {
		t.Errorf("outcome %+v", out)
	}
	if r.rl.decs.now() == before || r.rl.decs.PolicyHash() == before.verifier.PolicyHash() {
		t.Error("the policy changed but the verifier was not swapped")
	}
	if r.level.Level() != slog.LevelDebug || len(r.ops.got) != 1 || r.ops.got[0].Install.Location != "南门" || r.rl.current() == beforeCfg {
		t.Errorf("level %s, ops got %d configs, current %p", r.level.Level(), len(r.ops.got), r.rl.current())
	}

	// Nothing changed since: nothing swapped, the pending restart still named.
	cur := r.rl.decs.now()
	if ok, detail := r.rl.reload("SIGHUP"); !ok || detail != "restart needed for: barrier.pulse" || r.rl.decs.now() != cur {
		t.Errorf("an unchanged file: %v %q", ok, detail)
	}
	// A rotated secret, same keys: a new client.
	r.write(t, "secret", "the-rotated-secret-of-gate-01-00")
	if ok, detail := r.rl.reload("command c-1"); !ok || !strings.Contains(detail, "platform.secret_file (contents)") || r.rl.decs.now() == cur {
		t.Errorf("a rotated secret: %v %q", ok, detail)
	}

	// Refused: an invalid file, an unprovisioned one, a secret that cannot be read.
	for name, body := range map[string]string{
		"invalid":       strings.Replace(reloadYAML, "[green]", "[purple]", 1),
		"unprovisioned": strings.Replace(reloadYAML, "id: gate-01", "id: unprovisioned", 1),
		"no secret":     strings.Replace(reloadYAML, "%DIR%/secret", "%DIR%/missing", 1),
	} {
		cur, curCfg, applied := r.rl.decs.now(), r.rl.current(), len(r.ops.got)
		r.write(t, "sentinel.yaml", body)
		ok, detail := r.rl.reload("SIGHUP")
		if out := r.outcome(t); ok || out.OK || len(out.Problems) == 0 || r.rl.decs.now() != cur || r.rl.current() != curCfg || len(r.ops.got) != applied {
			t.Errorf("%s: %v %q %+v: something changed", name, ok, detail, out)
		}
	}
	r.write(t, "sentinel.yaml", strings.Replace(reloadYAML, "%DIR%/secret", "%DIR%/missing", 1))
	if _, detail := r.rl.reload("SIGHUP"); !strings.Contains(detail, "platform.secret_file") {
		t.Errorf("a missing secret is refused naming its key: %s", detail)
	}
}

// camera.* needs a restart, so a reload that writes camera.trigger: none beside a policy
// change keeps the face trigger in force and its score threshold: the new verifier is the one
// a start with the face trigger and the new policy builds.
func TestReloadKeepsFaceTrigger(t *testing.T) {
	const pillar = `device: {id: pillar-01, venue: "350582-0001", style: pillar}
scanners: {idcard: {driver: sam, port: /dev/null}}
camera: {driver: mjpeg, url: "http://127.0.0.1:1/stream", trigger: detect}
platform: {url: "http://127.0.0.1:1", app_key: AK-1, secret_file: %DIR%/secret}
policy: {health_codes: [green], credentials: {pillar: [face]}}
barrier: {driver: fake, pulse: 300ms}
queue: {path: %DIR%/queue.db}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
install: {unit: 某超市, location: 北门, brand: Acme, status: installed}
`
	r := newReloadRigWith(t, pillar)
	r.write(t, "sentinel.yaml", strings.NewReplacer("trigger: detect", "trigger: none", "[green]", "[green, yellow]").Replace(pillar))
	ok, detail := r.rl.reload("SIGHUP")
	if !ok || !strings.Contains(detail, "restart needed for: camera.trigger") {
		t.Fatalf("reload: %v %s", ok, detail)
	}
	r.write(t, "want.yaml", strings.Replace(pillar, "[green]", "[green, yellow]", 1))
	want, err := config.Load(filepath.Join(r.dir, "want.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDecider(want, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.rl.decs.PolicyHash(); got != d.verifier.PolicyHash() {
		t.Errorf("policy in force %s after the reload, want %s (the face trigger's threshold kept)", got, d.verifier.PolicyHash())
	}
}

func TestChangedKeys(t *testing.T) {
	a := config.Config{Policy: config.Policy{HealthCodes: []string{"green"}}, Barrier: config.Barrier{Pin: "GPIO17"}}
	b := a
	b.Policy.HealthCodes = []string{"green", "yellow"}
	b.Barrier.Pin = "GPIO18"
	b.Camera = &config.Camera{Driver: "http"}
	b.Inputs.Tamper = &config.Input{Pin: "GPIO19"}
	got := changedKeys("", reflect.ValueOf(a), reflect.ValueOf(b))
	if want := []string{"policy.health_codes", "barrier.pin", "camera", "inputs.tamper"}; !reflect.DeepEqual(got, want) {
		t.Errorf("changed %q, want %q", got, want)
	}
	for key, live := range map[string]bool{"policy.health_codes": true, "platform.url": true, "install.unit": true, "status.heartbeat": true,
		"screen.verdict_hold": true, "screen.listen": false, "log.level": true, "log.format": false, "barrier.pin": false, "device.id": false,
		"queue.path": false, "uplink.brokers": false, "scanners.qr.port": false} {
		if isLive(key) != live {
			t.Errorf("isLive(%s) = %v", key, !live)
		}
	}
}

// A restart-only key is compared with the config the daemon started with, not with the file
// the last reload took (probeC finding 1): a second reload of the same edit still names it,
// and putting the original file back names nothing. The outcome never says "nothing changed"
// while a restart is pending.
func TestReloadRestartAgainstRunning(t *testing.T) {
	r := newReloadRig(t)
	edited := strings.Replace(reloadYAML, "pulse: 300ms", "pulse: 400ms", 1)
	edited = strings.Replace(edited, "id: gate-01", "id: gate-02", 1)
	wantRestart := []string{"device.id", "barrier.pulse", "uplink.client_id"} // the client id is derived from device.id
	for i := 1; i <= 2; i++ {
		r.write(t, "sentinel.yaml", edited)
		ok, detail := r.rl.reload("SIGHUP")
		out := r.outcome(t)
		if !ok || !reflect.DeepEqual(out.Restart, wantRestart) || strings.Contains(detail, "nothing changed") ||
			!strings.Contains(detail, "restart needed for: device.id, barrier.pulse") {
			t.Errorf("reload %d of the edited file: %v %q, outcome %+v; want restart %v", i, ok, detail, out, wantRestart)
		}
	}
	// A live change beside the pending restart: both named.
	r.write(t, "sentinel.yaml", strings.Replace(edited, "[green]", "[green, yellow]", 1))
	if _, detail := r.rl.reload("SIGHUP"); !strings.Contains(detail, "applied: policy.health_codes") || !strings.Contains(detail, "barrier.pulse") {
		t.Errorf("a live change with a pending restart: %q", detail)
	}
	// The original file back (policy too): it matches what runs, nothing needs a restart.
	r.write(t, "sentinel.yaml", reloadYAML)
	ok, detail := r.rl.reload("SIGHUP")
	if out := r.outcome(t); !ok || len(out.Restart) != 0 || strings.Contains(detail, "restart") {
		t.Errorf("the original file back: %v %q, outcome %+v", ok, detail, out)
	}
	if ok, detail := r.rl.reload("SIGHUP"); !ok || detail != "nothing changed" {
		t.Errorf("the original file again: %v %q", ok, detail)
	}
}
