package face

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/facetrack"
)

// ErrFramesSkipped is why a camera that sends frames is offline: the watcher could read none
// of them for camera.stall.
var ErrFramesSkipped = errors.New("face: every frame skipped")

// usability is the camera's state as the face trigger sees it: the stream's own (online, or
// offline with why), and offline too while every frame given to the watcher for camera.stall
// was skipped (a 12 MP main stream over the watcher's limit: frames come, none is read).
// Time is the frames'. Its reports are serialised.
type usability struct {
	stall   time.Duration
	onState func(online bool, err error)
	log     *slog.Logger

	mu        sync.Mutex
	streamUp  bool
	streamErr error
	skipSince time.Time // the first frame of the run of skipped ones; zero after a read one
	skipped   int64     // in the run
	unusable  error     // set once the run has lasted stall
	reported  bool      // a state was reported
	online    bool      // the state last reported
}

// stream takes the stream's report.
func (u *usability) stream(online bool, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.streamUp, u.streamErr = online, err
	u.report()
}

// skip notes a frame taken at at that the watcher could not read (err). The first of a run
// is a WARN; the run lasting stall makes the camera offline.
func (u *usability) skip(at time.Time, seq uint64, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.skipped++
	if u.skipSince.IsZero() {
		u.skipSince = at
		u.log.Warn("camera frame skipped", "seq", seq, "err", err,
			"note", "said once until a frame is read again; camera.stall of them makes the camera offline")
	}
	if u.unusable == nil && at.Sub(u.skipSince) >= u.stall {
		u.unusable = fmt.Errorf("%w for camera.stall (%s), the last: %w; %s", ErrFramesSkipped, u.stall, err, facetrack.SkipFix(err))
		u.report()
	}
}

// read notes a frame the watcher read: a run of skipped frames is over.
func (u *usability) read() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.skipSince.IsZero() {
		return
	}
	u.log.Info("camera frames read again", "skipped", u.skipped)
	u.skipSince, u.skipped, u.unusable = time.Time{}, 0, nil
	u.report()
}

// report tells onState the camera's state when it changed: online when the stream is and
// its frames are read. Called with mu held.
func (u *usability) report() {
	online, err := u.streamUp && u.unusable == nil, u.streamErr
	if u.streamUp {
		err = u.unusable
	}
	if u.reported && online == u.online {
		return
	}
	u.reported, u.online = true, online
	if u.unusable != nil && err == u.unusable {
		u.log.Warn("camera offline", "err", err)
	}
	if u.onState != nil {
		u.onState(online, err)
	}
}
