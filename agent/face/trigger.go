package face

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/camera"
	"github.com/sentinel-edge/sentinel/drivers/facetrack"
	"github.com/sentinel-edge/sentinel/drivers/inputs"
	"github.com/sentinel-edge/sentinel/verify"
)

// FrameStream is what the trigger needs of a camera: frames, continuously. camera.MJPEG
// and camera.V4L2 are ones.
type FrameStream interface {
	Run(ctx context.Context, emit func(camera.Frame)) error
	String() string
}

// Watcher turns frames into faces to search; facetrack.Watcher is one.
type Watcher interface {
	Frame(at time.Time, frame []byte) (facetrack.Step, error)
	Presence(at time.Time, active bool)
	Hold(at time.Time, d time.Duration)
}

// PresenceSensor is the presence input (inputs.presence); inputs.Input is one.
type PresenceSensor interface {
	Run(ctx context.Context, emit func(inputs.Change)) error
	String() string
}

// TriggerOptions configure a Trigger.
type TriggerOptions struct {
	Stream  FrameStream // required
	Watcher Watcher     // required
	// Presence is the sensor of camera.trigger: presence; nil for detect.
	Presence PresenceSensor
	// OnHint, when set, is told what the screen should ask of the person each time it
	// changes (facetrack's hints: no_face, come_closer, look_at_camera, hold_still,
	// more_light; "" when there is nothing to ask). Called from the stream's goroutine.
	OnHint func(hint string)
	// OnState, when set, is told when the camera goes offline (with why) and online again:
	// the stream's reports (StreamState), and offline too while every frame for Stall is
	// skipped (too large, too small, not a JPEG), online at the next frame read.
	OnState func(online bool, err error)
	// Stall is camera.stall (default camera.DefaultStall).
	Stall time.Duration
	// HoldFor is how long after a passage made another way (an ID card at this unit) a face
	// coming into view is taken for that person and not searched (camera.rearm).
	HoldFor time.Duration
	Log     *slog.Logger
}

// Trigger is the pipeline source of face-only passages (camera.trigger detect or presence):
// frames from the stream go to the watcher, which tracks the faces in view; each person it
// decides to search becomes a face credential with the crop, read at the time of the frame
// it was taken from. The crop is the pipeline's from then on (it zeroes it once stored);
// every frame is zeroed here once the watcher has seen it.
type Trigger struct {
	opt TriggerOptions

	frames, undecodable, tooLarge, triggers atomic.Int64
	warnMu                                  sync.Mutex
	warnedAt                                time.Time
	use                                     *usability
}

// NewTrigger returns the trigger; opt.Stream and opt.Watcher are required.
func NewTrigger(opt TriggerOptions) (*Trigger, error) {
	if opt.Stream == nil || opt.Watcher == nil {
		return nil, errors.New("face: a trigger needs a camera stream and a watcher")
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Stall <= 0 {
		opt.Stall = camera.DefaultStall
	}
	use := &usability{stall: opt.Stall, onState: opt.OnState, log: opt.Log.With("camera", opt.Stream.String()), streamUp: true}
	return &Trigger{opt: opt, use: use}, nil
}

// StreamState is the stream's OnState: its reports reach TriggerOptions.OnState, with the
// trigger's own (every frame skipped).
func (t *Trigger) StreamState(online bool, err error) { t.use.stream(online, err) }

// String names the source.
func (t *Trigger) String() string { return "face trigger on " + t.opt.Stream.String() }

// Run reads the stream (and the presence sensor) until ctx ends. The stream reconnects by
// itself; a sensor that stops with an error stops the trigger, since without it no one
// would be searched again.
func (t *Trigger) Run(ctx context.Context, emit func(verify.Credential, time.Time)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var sensorErr error
	if t.opt.Presence != nil {
		wg.Go(func() {
			err := t.opt.Presence.Run(ctx, func(c inputs.Change) { t.opt.Watcher.Presence(c.At, c.Active) })
			if err != nil && ctx.Err() == nil {
				sensorErr = fmt.Errorf("inputs.presence: the presence sensor (%s) stopped: %w", t.opt.Presence, err)
			}
			cancel()
		})
	}
	err := t.opt.Stream.Run(ctx, func(f camera.Frame) { t.frame(f, emit) })
	cancel()
	wg.Wait()
	if sensorErr != nil {
		return sensorErr
	}
	if err != nil {
		return fmt.Errorf("face: %s: %w", t.opt.Stream, err)
	}
	return nil
}

// frame gives one frame to the watcher and emits what it triggers.
func (t *Trigger) frame(f camera.Frame, emit func(verify.Credential, time.Time)) {
	defer clear(f.JPEG)
	t.frames.Add(1)
	st, err := t.opt.Watcher.Frame(f.Time, f.JPEG)
	if err != nil {
		t.undecodable.Add(1)
		t.use.skip(f.Time, f.Seq, err)
		return
	}
	t.use.read()
	if st.HintChanged && t.opt.OnHint != nil {
		t.opt.OnHint(string(st.Hint))
	}
	if st.Trigger == nil {
		return
	}
	if len(st.Trigger.JPEG) > verify.MaxFaceJPEG {
		clear(st.Trigger.JPEG)
		t.tooLarge.Add(1)
		t.warnRarely("face crop larger than the platform takes; not searched", "camera", t.opt.Stream.String(), "max", verify.MaxFaceJPEG)
		return
	}
	t.triggers.Add(1)
	t.opt.Log.Info("face to search", "mode", string(st.Trigger.Mode), "track", st.Trigger.Track,
		"sharpness", fmt.Sprintf("%.0f", st.Trigger.Quality.Sharpness), "frame_seq", f.Seq)
	emit(verify.Credential{Kind: verify.KindFace, FaceJPEG: st.Trigger.JPEG}, st.Trigger.At)
}

// warnRarely logs at WARN at most once a minute (a broken camera sends 30 bad frames a
// second); the counters count them all.
func (t *Trigger) warnRarely(msg string, args ...any) {
	t.warnMu.Lock()
	now := time.Now()
	ok := now.Sub(t.warnedAt) >= time.Minute
	if ok {
		t.warnedAt = now
	}
	t.warnMu.Unlock()
	if ok {
		t.opt.Log.Warn(msg, args...)
	}
}

// Hold says that a passage was just made another way (an ID card at this unit): the faces in
// view now, and those coming into view within HoldFor, are taken for that person and not
// searched (else one person makes two records and two openings).
func (t *Trigger) Hold() { t.opt.Watcher.Hold(time.Now(), t.opt.HoldFor) }

// TriggerStats counts what the trigger did.
type TriggerStats struct {
	Frames      int64 // frames given to the watcher
	Undecodable int64 // frames the watcher could not read
	TooLarge    int64 // faces not searched: the picture is larger than the platform takes
	Triggers    int64 // faces emitted for search
}

// Stats returns the counters.
func (t *Trigger) Stats() TriggerStats {
	return TriggerStats{t.frames.Load(), t.undecodable.Load(), t.tooLarge.Load(), t.triggers.Load()}
}
