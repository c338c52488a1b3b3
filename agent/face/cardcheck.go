package face

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/verify"
)

// Snapshotter is what the card check needs of a camera; camera.HTTP and camera.V4L2 are ones.
type Snapshotter interface {
	Snapshot(ctx context.Context) ([]byte, error)
	String() string
}

// CardCheckOptions configure a CardCheck.
type CardCheckOptions struct {
	Camera Snapshotter
	// Required: no snapshot, no passage (camera.verify required: denied face_unavailable
	// without a call); otherwise the card alone decides when the camera gives none
	// (with_idcard).
	Required bool
	Budget   time.Duration // bound of one snapshot (camera.timeout)
	// PolicyHash is the policy in force, for a decision made without the platform.
	PolicyHash string
	// OnState, when set, is told when the camera stops giving snapshots (with why) and when it
	// gives one again (nil error).
	OnState func(online bool, err error)
	Log     *slog.Logger
}

// CardCheck is the pipeline step that turns an ID-card read into a face credential: a
// snapshot plus the card's ID number and name. Other credentials pass untouched.
type CardCheck struct {
	opt CardCheckOptions

	mu    sync.Mutex
	state int // 0 unknown, 1 online, -1 offline

	snapshots, failures, fallbacks atomic.Int64
}

// NewCardCheck returns the card check; opt.Camera is required.
func NewCardCheck(opt CardCheckOptions) *CardCheck {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Budget <= 0 {
		opt.Budget = 2 * time.Second
	}
	return &CardCheck{opt: opt}
}

// Prepare completes an ID-card read with a snapshot. Without one the card goes on alone, or,
// when a snapshot is required, the passage is denied face_unavailable without a call.
func (c *CardCheck) Prepare(ctx context.Context, cred verify.Credential) (verify.Credential, *verify.Decision) {
	if cred.Kind != verify.KindIDCard {
		return cred, nil
	}
	img, err := c.snapshot(ctx)
	if err != nil {
		c.failures.Add(1)
		c.setState(false, err)
		if c.opt.Required {
			return cred, &verify.Decision{
				Verdict: verify.Deny, Reason: verify.ReasonFaceUnavailable, Mode: verify.ModeOnline,
				Credential: verify.KindFace, PolicyHash: c.opt.PolicyHash, Err: err,
				Subject: verify.Identity{IDNumber: verify.NormalizeIDNumber(cred.IDNumber), Name: cred.Name},
			}
		}
		c.fallbacks.Add(1)
		return cred, nil // with_idcard: the card alone decides
	}
	c.snapshots.Add(1)
	c.setState(true, nil)
	return verify.Credential{Kind: verify.KindFace, IDNumber: cred.IDNumber, Name: cred.Name, FaceJPEG: img}, nil
}

func (c *CardCheck) snapshot(ctx context.Context) ([]byte, error) {
	sctx, cancel := context.WithTimeout(ctx, c.opt.Budget)
	defer cancel()
	img, err := c.opt.Camera.Snapshot(sctx)
	if err != nil {
		return nil, err
	}
	if len(img) > verify.MaxFaceJPEG {
		n := len(img)
		clear(img)
		return nil, fmt.Errorf("face: %s gave a snapshot of %d bytes, more than the platform takes (%d): lower the camera's resolution", c.opt.Camera, n, verify.MaxFaceJPEG)
	}
	return img, nil
}

// setState reports the camera's transitions, logging each once.
func (c *CardCheck) setState(online bool, err error) {
	want := -1
	if online {
		want = 1
	}
	c.mu.Lock()
	changed := c.state != want
	c.state = want
	c.mu.Unlock()
	if !changed {
		return
	}
	if online {
		c.opt.Log.Info("camera gives snapshots", "camera", c.opt.Camera.String())
	} else {
		then := "ID-card passages are decided by the card alone until it does"
		if c.opt.Required {
			then = "ID-card passages are denied face_unavailable until it does"
		}
		c.opt.Log.Warn("camera gives no snapshot; "+then, "camera", c.opt.Camera.String(), "err", err)
	}
	if c.opt.OnState != nil {
		c.opt.OnState(online, err)
	}
}

// Stats counts what the card check did.
type Stats struct {
	Snapshots int64 // snapshots sent to face verification
	Failures  int64 // snapshots that could not be taken
	Fallbacks int64 // ID-card passages decided by the card alone (with_idcard)
}

// Stats returns the counters.
func (c *CardCheck) Stats() Stats {
	return Stats{c.snapshots.Load(), c.failures.Load(), c.fallbacks.Load()}
}
