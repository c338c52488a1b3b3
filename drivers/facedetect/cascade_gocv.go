//go:build opencv && gocv

package facedetect

import (
	"fmt"
	"image"
	"sync"

	"gocv.io/x/gocv"
)

// Available says whether this build has the detector.
const Available = true

// Cascade is OpenCV's cascade classifier. It is safe for concurrent use (one detection at a
// time).
type Cascade struct {
	opts Options
	mu   sync.Mutex
	c    gocv.CascadeClassifier
	open bool
}

var _ Detector = (*Cascade)(nil)

// New loads the cascade. A missing or malformed file is an error naming it.
func New(opts Options) (*Cascade, error) {
	opts = opts.withDefaults()
	if err := CheckCascade(opts.Cascade); err != nil {
		return nil, err
	}
	c := gocv.NewCascadeClassifier()
	if !c.Load(opts.Cascade) {
		_ = c.Close()
		return nil, fmt.Errorf("%w %s: OpenCV could not load it", ErrCascade, opts.Cascade)
	}
	return &Cascade{opts: opts, c: c, open: true}, nil
}

func (d *Cascade) String() string { return "OpenCV cascade " + d.opts.Cascade }

// Detect returns the faces in img, in img's coordinates, largest first.
func (d *Cascade) Detect(img *image.Gray) ([]image.Rectangle, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < 24 || h < 24 {
		return nil, nil // smaller than the cascade's window
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.open {
		return nil, ErrClosed
	}
	src := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8U)
	defer src.Close()
	pix := src.DataPtrUint8()
	for y := 0; y < h; y++ {
		off := (y) * img.Stride
		copy(pix[y*w:(y+1)*w], img.Pix[off:off+w])
	}
	scale := 1.0
	work := src
	if w > d.opts.MaxWidth {
		scale = float64(d.opts.MaxWidth) / float64(w)
		small := gocv.NewMat()
		defer small.Close()
		gocv.Resize(src, &small, image.Pt(d.opts.MaxWidth, int(float64(h)*scale+0.5)), 0, 0, gocv.InterpolationArea)
		work = small
	}
	eq := gocv.NewMat()
	defer eq.Close()
	gocv.EqualizeHist(work, &eq)
	minSide := max(24, int(float64(d.opts.MinFace)*scale))
	found := d.c.DetectMultiScaleWithParams(eq, d.opts.ScaleFactor, d.opts.MinNeighbors, 0,
		image.Pt(minSide, minSide), image.Pt(0, 0))
	out := make([]image.Rectangle, 0, len(found))
	for _, r := range found {
		if r = scaleRect(r, scale, b); !r.Empty() {
			out = append(out, r)
		}
	}
	sortLargestFirst(out)
	return out, nil
}

// Close frees the classifier.
func (d *Cascade) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.open {
		return nil
	}
	d.open = false
	return d.c.Close()
}
