package ops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/statefile"
)

// What the unit knows of its own verifications, and keeps checking: the stored outcomes of
// sentinel selftest and sentinel docking-check (written by other processes, so read again
// whenever they change), the selftest command's, the daemon's own platform check, and the
// idle probe of the platform.

// Verifications reads and stores the outcomes kept beside the queue; selftest.Store is one.
type Verifications interface {
	Path(name string) string
	Load(name string) (*record.SelftestState, error)
	Save(name string, st record.SelftestState) error
}

// The stored outcomes (agent/selftest's selftest.File and selftest.DockingFile), and the
// status file, beside the queue: their names are a contract of the on-site tools.
const (
	SelftestFile     = "selftest.json"
	DockingCheckFile = "docking-check.json"
	// StatusFile is the daemon's status as it would publish it, written on every change and
	// heartbeat whether or not a broker is reachable: `sentinel status` reads it.
	StatusFile = "status.json"
)

// evidence is the last outcome of each kind of verification. Guarded by Ops.mu.
type evidence struct {
	selftest, dockingCheck, platformCheck *record.SelftestState
	stamps                                map[string]fileStamp // what was read of each file
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) fileStamp {
	if fi, err := os.Stat(path); err == nil {
		return fileStamp{fi.ModTime(), fi.Size()}
	}
	return fileStamp{}
}

// refreshEvidence reads the stored selftest and docking-check again when their files
// changed (another process wrote them); a file that cannot be read is logged once per
// change and leaves what was known.
func (o *Ops) refreshEvidence() {
	vs := o.opt.Verifications
	if vs == nil {
		return
	}
	changed := false
	for _, name := range []string{SelftestFile, DockingCheckFile} {
		st := stampOf(vs.Path(name))
		o.mu.Lock()
		prev, seen := o.evidence.stamps[name]
		o.mu.Unlock()
		if seen && prev == st {
			continue
		}
		v, err := vs.Load(name)
		if err != nil {
			o.opt.Log.Warn("stored verification unreadable; ignored", "file", vs.Path(name), "err", err)
		}
		o.mu.Lock()
		if o.evidence.stamps == nil {
			o.evidence.stamps = map[string]fileStamp{}
		}
		o.evidence.stamps[name] = st
		if err == nil {
			if name == SelftestFile {
				o.evidence.selftest = v
				if v != nil {
					o.metrics.selftestOK.Set(b2f(v.OK))
				}
			} else {
				o.evidence.dockingCheck = v
			}
			changed = true
		}
		o.mu.Unlock()
	}
	if changed {
		o.touch()
	}
}

// recordSelftest keeps the outcome of the selftest command and stores it beside the queue,
// as sentinel selftest does: the last selftest, whoever ran it, counts.
func (o *Ops) recordSelftest(st record.SelftestState) {
	o.mu.Lock()
	o.evidence.selftest = &st
	o.mu.Unlock()
	if vs := o.opt.Verifications; vs != nil {
		if err := vs.Save(SelftestFile, st); err != nil {
			o.opt.Log.Error("selftest outcome not stored; it counts until the next restart", "err", err)
		}
		o.mu.Lock()
		if o.evidence.stamps == nil {
			o.evidence.stamps = map[string]fileStamp{}
		}
		o.evidence.stamps[SelftestFile] = stampOf(vs.Path(SelftestFile))
		o.mu.Unlock()
	}
	o.metrics.selftestOK.Set(b2f(st.OK))
	o.touch()
}

// platformCheck is the daemon's last platform check (nil: none yet).
func (o *Ops) platformCheck() *record.SelftestState {
	o.mu.Lock()
	defer o.mu.Unlock()
	return clone(o.evidence.platformCheck)
}

// probe pings the platform while the lane is idle: every platform.probe_interval in which no
// call got an answer. A change of state is logged, published and on the screen at once.
func (o *Ops) probe(ctx context.Context) {
	if o.opt.Pinger == nil {
		return
	}
	for {
		o.mu.Lock()
		every := o.platformCfg.ProbeInterval
		recent := !o.lastAnswer.IsZero() && time.Since(o.lastAnswer) < every
		o.mu.Unlock()
		if !recent {
			call, err := o.opt.Pinger.Ping(ctx)
			if ctx.Err() != nil {
				return
			}
			outcome := callOutcome(call.Status)
			if err != nil && outcome == "ok" {
				outcome = "bad_response" // a 200 whose answer was not usable
			}
			o.metrics.platformCallDone("ping", outcome, call.Latency)
			why := "the idle ping was answered"
			if err != nil {
				why = "the idle ping: " + err.Error()
			}
			o.setPlatform(call.Status != 0, err == nil, why)
		}
		if !sleep(ctx, every) {
			return
		}
	}
}

// verify runs the platform check at start, every status.verify_interval, and at once when
// the platform comes back; a failed one is tried again within a minute.
func (o *Ops) verify(ctx context.Context) {
	if o.opt.PlatformCheck == nil {
		return
	}
	for {
		st := o.opt.PlatformCheck(ctx)
		if ctx.Err() != nil {
			return
		}
		o.mu.Lock()
		prev := o.evidence.platformCheck
		o.evidence.platformCheck = &st
		next := o.status.VerifyInterval
		o.mu.Unlock()
		if !st.OK {
			next = min(next, time.Minute)
			if prev == nil || prev.OK {
				o.opt.Log.Warn("platform check failed: the unit is not docked until it passes", "detail", st.Detail, "retry", next)
			}
		} else if prev != nil && !prev.OK {
			o.opt.Log.Info("platform check passed again", "detail", st.Detail)
		}
		o.touch()
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-o.verifyKick:
			t.Stop()
		}
	}
}

// Apply puts in force what a reload may change in operations: the install facts, the
// operator keys and command validity, the status settings and the docking rule, the
// platform settings the probe and the log use, the screen's verdict hold. The caller has
// validated nc (config.Load).
func (o *Ops) Apply(nc *config.Config) error {
	if err := o.cmds.setKeys(nc.Commands); err != nil {
		return err
	}
	o.mu.Lock()
	o.install, o.heartbeat, o.status, o.platformCfg = nc.Install, nc.Status.Heartbeat, nc.Status, nc.Platform
	o.mu.Unlock()
	o.scr.setHold(nc.Screen.VerdictHold)
	o.live.Store(nc)
	o.touch()
	return nil
}

// writeStatusFile replaces the status file beside the queue (temp file and rename, no
// fsync: it is rewritten within the second and on every heartbeat, and a reader that finds
// an older or no file after a power loss says so).
func (o *Ops) writeStatusFile(b []byte) error {
	path := statefile.Path(o.opt.Cfg.Queue.Path, StatusFile)
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+StatusFile+"-*")
	if err != nil {
		return fmt.Errorf("ops: write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o640)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("ops: write %s: %w", path, err)
	}
	return nil
}
