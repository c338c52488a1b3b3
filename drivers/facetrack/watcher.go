package facetrack

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"sync"
	"time"
)

// Detector finds the faces in a grayscale frame, largest first (drivers/facedetect's
// Cascade with the opencv build tag).
type Detector interface {
	Detect(img *image.Gray) ([]image.Rectangle, error)
}

// Errors.
var (
	ErrDecode     = errors.New("facetrack: frame is not a decodable JPEG")
	ErrTooBig     = errors.New("facetrack: frame too large")
	ErrTooSmall   = errors.New("facetrack: frame too small")
	ErrNoDetector = errors.New("facetrack: the detect mode needs a face detector")
)

// DefaultMaxPixels bounds a frame's declared size (4K), checked before decoding: a small
// JPEG may declare an enormous picture.
const DefaultMaxPixels = 3840 * 2160

// CheckSize says whether the watcher made with these options reads a frame of w×h pixels:
// ErrTooBig over MaxPixels, ErrTooSmall when a side is shorter than MinFace (no face that
// passes the gate fits in it). Both skip the frame; selftest asks the same question.
func (o WatcherOptions) CheckSize(w, h int) error {
	maxPx := o.MaxPixels
	if maxPx <= 0 {
		maxPx = DefaultMaxPixels
	}
	minSide := o.Gates.withDefaults().MinFace
	switch {
	case w <= 0 || h <= 0:
		return fmt.Errorf("%w: it declares %dx%d pixels", ErrDecode, w, h)
	case w > maxPx/h:
		return fmt.Errorf("%w: %dx%d is over the %.1f MP limit (%d pixels)", ErrTooBig, w, h, float64(maxPx)/1e6, maxPx)
	case w < minSide || h < minSide:
		return fmt.Errorf("%w: %dx%d is smaller than camera.min_face (%d pixels a side)", ErrTooSmall, w, h, minSide)
	}
	return nil
}

// SkipFix is what to do about frames a watcher skips with err (the daemon's offline reason
// and selftest say it).
func SkipFix(err error) string {
	switch {
	case errors.Is(err, ErrTooBig):
		return fmt.Sprintf("set the camera's sub-stream or a lower resolution (at most %.1f MP, e.g. 3840x2160)", float64(DefaultMaxPixels)/1e6)
	case errors.Is(err, ErrTooSmall):
		return "set a higher resolution on the camera"
	case errors.Is(err, ErrDecode):
		return "set the camera's stream to MJPEG (baseline JPEG)"
	}
	return "report it with the unit's log"
}

// Mode is how a Watcher decides to search: camera.trigger.
type Mode string

// Modes.
const (
	ModeDetect   Mode = "detect"   // a face detector sees a face that passes the gates
	ModePresence Mode = "presence" // a presence sensor (inputs.presence) fires
)

// Trigger is one face to search.
type Trigger struct {
	Mode Mode
	// JPEG is the face crop (detect) or the whole frame (presence). It is personal data:
	// the receiver zeroes it once searched.
	JPEG    []byte
	At      time.Time       // when the chosen frame was taken
	Track   uint64          // detect: the tracked face it belongs to
	Box     image.Rectangle // detect: the face box in the frame
	Quality Quality         // detect: the face's; presence: the frame's
}

// Step is what one frame gave.
type Step struct {
	Hint        Hint
	HintChanged bool // Hint differs from the previous step's
	Faces       int
	Trigger     *Trigger
}

// Stats counts what a Watcher saw.
type Stats struct {
	Frames, Undecodable, DetectErrors, Triggers uint64
}

// Watcher turns frames into triggers and screen hints. It is safe for concurrent use: frames
// come from the stream's emit, Presence from the sensor's goroutine, Reset from the lane's
// (each waits for a frame being processed).
type Watcher struct {
	mu    sync.Mutex
	mode  Mode
	det   Detector
	opts  Options
	tr    *Tracker
	pres  presence
	last  Hint
	stats Stats
	wopts WatcherOptions // for CheckSize
}

// WatcherOptions add the frame bound to Options.
type WatcherOptions struct {
	Options
	// MaxPixels bounds a frame's width × height (default DefaultMaxPixels).
	MaxPixels int
}

// NewWatcher returns a watcher in detect mode over det.
func NewWatcher(det Detector, opts WatcherOptions) (*Watcher, error) {
	if det == nil {
		return nil, ErrNoDetector
	}
	w := newWatcher(ModeDetect, opts)
	w.det = det
	return w, nil
}

// NewPresenceWatcher returns a watcher in presence mode: after Presence(at, true), the best
// of the next few frames is the trigger.
func NewPresenceWatcher(opts WatcherOptions) *Watcher {
	return newWatcher(ModePresence, opts)
}

func newWatcher(m Mode, opts WatcherOptions) *Watcher {
	if opts.MaxPixels <= 0 {
		opts.MaxPixels = DefaultMaxPixels
	}
	o := opts.Options.withDefaults()
	return &Watcher{mode: m, opts: o, tr: NewTracker(o), wopts: opts, last: HintNone}
}

// Mode is the watcher's mode.
func (w *Watcher) Mode() Mode { return w.mode }

// Stats returns the counters.
func (w *Watcher) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Reset forgets the faces in view (detect) or the presence so far: the next face, or the
// next presence, triggers as a new person.
func (w *Watcher) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tr.Reset()
	w.pres = presence{}
}

// Hold says that a passage was just made another way (an ID card at the same unit): the faces
// in view at at, and those that come into view within d, are not searched (Tracker.Hold);
// in presence mode the presence in progress is taken as searched.
func (w *Watcher) Hold(at time.Time, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tr.Hold(at, d)
	if w.pres.active {
		w.pres.armed = false
		w.pres.triggered = at
		w.pres.dropBest()
		w.pres.window, w.pres.good = time.Time{}, 0
	}
}

// Frame feeds one JPEG frame taken at at. A frame that does not decode is an error (ErrDecode,
// ErrTooBig, ErrTooSmall: see CheckSize) and changes nothing else.
func (w *Watcher) Frame(at time.Time, frame []byte) (Step, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stats.Frames++
	var st Step
	var err error
	if w.mode == ModePresence {
		st, err = w.presenceFrame(at, frame)
	} else {
		st, err = w.detectFrame(at, frame)
	}
	if err != nil {
		return Step{Hint: w.last}, err
	}
	st.HintChanged = st.Hint != w.last
	w.last = st.Hint
	if st.Trigger != nil {
		w.stats.Triggers++
	}
	return st, nil
}

func (w *Watcher) detectFrame(at time.Time, frame []byte) (Step, error) {
	img, gray, err := w.decode(frame)
	if err != nil {
		return Step{}, err
	}
	defer zeroImage(img)
	faces, err := w.det.Detect(gray)
	if err != nil {
		w.stats.DetectErrors++
		return Step{}, fmt.Errorf("facetrack: detect: %w", err)
	}
	obs := w.tr.Observe(at, img, gray, faces)
	st := Step{Hint: obs.Hint, Faces: obs.Faces}
	if c := obs.Take; c != nil {
		b, err := encodeCrop(c.Crop, w.opts.MaxCrop, w.opts.JPEGQuality)
		zeroImage(c.Crop)
		if err != nil {
			return Step{}, err
		}
		st.Trigger = &Trigger{Mode: ModeDetect, JPEG: b, At: c.At, Track: c.Track, Box: c.Box, Quality: c.Quality}
	}
	return st, nil
}

// decode decodes a JPEG frame after checking its declared size, and returns it with its
// grayscale view (the Y plane: no copy).
func (w *Watcher) decode(frame []byte) (image.Image, *image.Gray, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(frame))
	if err != nil {
		w.stats.Undecodable++
		return nil, nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	if err := w.wopts.CheckSize(cfg.Width, cfg.Height); err != nil {
		w.stats.Undecodable++
		return nil, nil, err
	}
	img, err := jpeg.Decode(bytes.NewReader(frame))
	if err != nil {
		w.stats.Undecodable++
		return nil, nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	return img, GrayView(img), nil
}

// GrayView returns img's luma as an image.Gray: the Y plane itself for a YCbCr picture (what
// a JPEG decodes to), img itself for a gray one, a converted copy otherwise.
func GrayView(img image.Image) *image.Gray {
	switch m := img.(type) {
	case *image.Gray:
		return m
	case *image.YCbCr:
		return &image.Gray{Pix: m.Y, Stride: m.YStride, Rect: m.Rect}
	}
	g := image.NewGray(img.Bounds())
	draw.Draw(g, g.Rect, img, g.Rect.Min, draw.Src)
	return g
}

// zeroImage overwrites a decoded picture's pixels.
func zeroImage(img image.Image) {
	switch m := img.(type) {
	case *image.YCbCr:
		clear(m.Y)
		clear(m.Cb)
		clear(m.Cr)
	case *image.Gray:
		clear(m.Pix)
	case *image.RGBA:
		clear(m.Pix)
	case *image.CMYK:
		clear(m.Pix)
	}
}

// encodeCrop scales the crop down to maxSide when larger and encodes it as JPEG.
func encodeCrop(crop *image.RGBA, maxSide, quality int) ([]byte, error) {
	var img image.Image = crop
	if r := crop.Rect; max(r.Dx(), r.Dy()) > maxSide {
		w, h := r.Dx()*maxSide/max(r.Dx(), r.Dy()), r.Dy()*maxSide/max(r.Dx(), r.Dy())
		small := resampleRGBA(crop, max(w, 1), max(h, 1))
		defer clear(small.Pix)
		img = small
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("facetrack: encode the crop: %w", err)
	}
	return buf.Bytes(), nil
}

// resampleRGBA scales src to w×h by area averaging.
func resampleRGBA(src *image.RGBA, w, h int) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	r := src.Rect
	rw, rh := r.Dx(), r.Dy()
	for oy := 0; oy < h; oy++ {
		y0, y1 := oy*rh/h, max((oy+1)*rh/h, oy*rh/h+1)
		for ox := 0; ox < w; ox++ {
			x0, x1 := ox*rw/w, max((ox+1)*rw/w, ox*rw/w+1)
			var s [4]int
			n := 0
			for y := y0; y < y1; y++ {
				row := src.Pix[y*src.Stride:]
				for x := x0; x < x1; x++ {
					p := row[4*x : 4*x+4]
					s[0], s[1], s[2], s[3] = s[0]+int(p[0]), s[1]+int(p[1]), s[2]+int(p[2]), s[3]+int(p[3])
					n++
				}
			}
			o := out.Pix[oy*out.Stride+4*ox:]
			for i := range 4 {
				o[i] = uint8((s[i] + n/2) / n)
			}
		}
	}
	return out
}
