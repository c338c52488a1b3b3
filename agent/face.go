package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/drivers/camera"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/verify"
)

// Face verification (camera.verify, docs/drivers.md "Face verification"): when the unit's
// style asks for it, each ID-card passage takes a snapshot and the platform's face call
// decides it, with the card's ID number; the record's credential is then face. The snapshot
// lives for the decision only: it is zeroed after it, and stored only with camera.keep
// sealed, inside the record's sealed subject.

// Snapshotter is what face verification needs of a camera; camera.HTTP and camera.V4L2 are
// ones.
type Snapshotter interface {
	Snapshot(ctx context.Context) ([]byte, error)
	String() string
}

// FaceDecider decides ID-card passages by face: a snapshot and the card's ID number go to
// the platform's face verification. Other credentials, and ID-card passages when no
// snapshot can be taken (with_idcard), go to Inner as they are; with required, a passage
// without a snapshot is denied face_unavailable without a call.
type FaceDecider struct {
	Inner   Decider
	Camera  Snapshotter
	Mode    string        // config.CameraVerifyWithIDCard or config.CameraVerifyRequired
	Timeout time.Duration // bound of one snapshot
	// PolicyHash is the policy in force, for a decision made without the platform.
	PolicyHash string
	Log        *slog.Logger
	// OnState, when set, is told when the camera stops giving snapshots (with why) and when
	// it gives one again (nil error): reader_offline/reader_online events with source camera.
	OnState func(online bool, err error)
	// Keep hands each deciding snapshot to Take (camera.keep sealed); otherwise it is zeroed
	// as soon as the decision is made.
	Keep bool

	mu    sync.Mutex
	kept  []byte // the last decision's snapshot, until Take (Keep only)
	state int    // 0 unknown, 1 online, -1 offline

	snapshots, failures, fallbacks atomic.Int64
}

var _ Decider = (*FaceDecider)(nil)

// Decide decides one passage; see FaceDecider.
func (f *FaceDecider) Decide(ctx context.Context, cred verify.Credential, passageID string) verify.Decision {
	f.drop()
	if cred.Kind != verify.KindIDCard {
		return f.Inner.Decide(ctx, cred, passageID)
	}
	start := time.Now()
	img, err := f.snapshot(ctx)
	if err != nil {
		f.failures.Add(1)
		f.setState(false, err)
		if f.Mode == config.CameraVerifyRequired {
			return verify.Decision{
				Verdict: verify.Deny, Reason: verify.ReasonFaceUnavailable, Mode: verify.ModeOnline,
				Credential: verify.KindFace, PolicyHash: f.PolicyHash, Err: err, Took: time.Since(start),
				Subject: verify.Identity{IDNumber: verify.NormalizeIDNumber(cred.IDNumber), Name: cred.Name},
			}
		}
		f.fallbacks.Add(1)
		return f.Inner.Decide(ctx, cred, passageID) // with_idcard: the card alone decides
	}
	f.snapshots.Add(1)
	f.setState(true, nil)
	face := verify.Credential{Kind: verify.KindFace, IDNumber: cred.IDNumber, Name: cred.Name, FaceJPEG: img}
	d := f.Inner.Decide(ctx, face, passageID)
	d.Took = time.Since(start) // the snapshot is part of the decision
	if f.Keep && d.Credential == verify.KindFace {
		f.mu.Lock()
		f.kept = img
		f.mu.Unlock()
	} else {
		clear(img)
	}
	return d
}

func (f *FaceDecider) snapshot(ctx context.Context) ([]byte, error) {
	sctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	img, err := f.Camera.Snapshot(sctx)
	if err != nil {
		return nil, err
	}
	if len(img) > verify.MaxFaceJPEG {
		n := len(img)
		clear(img)
		return nil, fmt.Errorf("agent: %s gave a snapshot of %d bytes, more than the platform takes (%d): lower the camera's resolution", f.Camera, n, verify.MaxFaceJPEG)
	}
	return img, nil
}

// Take hands over the snapshot of the last decision (Keep only) and forgets it; nil when
// there is none. The caller zeroes it when done.
func (f *FaceDecider) Take() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	img := f.kept
	f.kept = nil
	return img
}

// drop zeroes a snapshot nobody took.
func (f *FaceDecider) drop() {
	if img := f.Take(); img != nil {
		clear(img)
	}
}

// setState reports the camera's transitions, logging each once.
func (f *FaceDecider) setState(online bool, err error) {
	want := -1
	if online {
		want = 1
	}
	f.mu.Lock()
	changed := f.state != want
	f.state = want
	f.mu.Unlock()
	if !changed {
		return
	}
	if online {
		f.Log.Info("camera gives snapshots", "camera", f.Camera.String())
	} else {
		then := "ID-card passages are decided by the card alone until it does"
		if f.Mode == config.CameraVerifyRequired {
			then = "ID-card passages are denied face_unavailable until it does"
		}
		f.Log.Warn("camera gives no snapshot; "+then, "camera", f.Camera.String(), "mode", f.Mode, "err", err)
	}
	if f.OnState != nil {
		f.OnState(online, err)
	}
}

// FaceStats counts what face verification did.
type FaceStats struct {
	Snapshots int64 // snapshots sent to face verification
	Failures  int64 // snapshots that could not be taken
	Fallbacks int64 // ID-card passages decided by the card alone (with_idcard)
}

// Stats returns the counters.
func (f *FaceDecider) Stats() FaceStats {
	return FaceStats{f.snapshots.Load(), f.failures.Load(), f.fallbacks.Load()}
}

// setupFace wires face verification into the pipeline when camera.verify asks for it, and
// with camera.keep sealed adds the deciding snapshot to the record's sealed subject.
func setupFace(d *Daemon, cam camera.Camera, onState func(bool, error), log *slog.Logger) error {
	cfg := d.Cfg
	mode := cfg.FaceVerify()
	if cam == nil || mode == config.CameraVerifyNever || d.Pipeline == nil {
		if cam != nil {
			log.Info("camera ready; camera.verify is never: no snapshot is taken", "camera", cam.String())
		}
		return nil
	}
	policy := ""
	if d.Verifier != nil {
		policy = d.Verifier.PolicyHash()
	}
	fd := &FaceDecider{
		Inner: d.Pipeline.Decider, Camera: cam, Mode: mode, Timeout: cfg.Camera.Timeout,
		PolicyHash: policy, Log: log, OnState: onState, Keep: cfg.Camera.Keep == config.CameraKeepSealed,
	}
	d.Pipeline.Decider = fd
	log.Info("face verification on: each ID-card passage is decided by a snapshot and the card's ID number", "camera", cam.String(), "mode", mode, "keep", cfg.Camera.Keep)
	if !fd.Keep {
		return nil
	}
	pub, err := privacy.LoadPublicKey(cfg.Privacy.PlatformKeyFile)
	if err != nil {
		return fmt.Errorf("camera.keep: privacy.platform_key_file: %w", err)
	}
	inner := d.Pipeline.Seal
	d.Pipeline.Seal = func(s *Subject, who verify.Identity) {
		if inner != nil {
			inner(s, who) // the identity's sealing and look-up hash
		}
		img := fd.Take()
		if img == nil {
			return
		}
		defer clear(img)
		sealed, err := privacy.Seal(pub, privacy.Sealed{IDNumber: who.IDNumber, Name: who.Name, Face: img})
		if err != nil {
			log.Error("privacy: sealing the snapshot failed; it is not stored", "err", err)
			return
		}
		s.Sealed = sealed
	}
	return nil
}
