//go:build opencv && !gocv

package facedetect

// The detector binds OpenCV's CascadeClassifier through the few lines of cascade.cpp and
// links only the modules it uses (objdetect, imgproc, core): gocv v0.25.0's package links
// every module it wraps (video I/O with FFmpeg and GStreamer, image codecs with GDAL, GTK),
// 264 shared libraries and about 60 MB more resident memory (docs/BENCHMARKS.md). The gocv
// binding is kept behind the tags opencv,gocv (cascade_gocv.go).

/*
#cgo CXXFLAGS: --std=c++11
#cgo CPPFLAGS: -I/usr/include/opencv4
#cgo LDFLAGS: -lopencv_objdetect -lopencv_imgproc -lopencv_core
#include <stdlib.h>
#include "cascade.h"
*/
import "C"

import (
	"fmt"
	"image"
	"sync"
	"unsafe"
)

// Available says whether this build has the detector.
const Available = true

// maxFaces bounds the boxes one detection returns.
const maxFaces = 64

// Cascade is OpenCV's cascade classifier. It is safe for concurrent use (one detection at a
// time).
type Cascade struct {
	opts Options
	mu   sync.Mutex
	c    C.sentinel_cascade
}

var _ Detector = (*Cascade)(nil)

// New loads the cascade. A missing or malformed file is an error naming it.
func New(opts Options) (*Cascade, error) {
	opts = opts.withDefaults()
	if err := CheckCascade(opts.Cascade); err != nil {
		return nil, err
	}
	path := C.CString(opts.Cascade)
	defer C.free(unsafe.Pointer(path))
	var msg [256]C.char
	c := C.sentinel_cascade_load(path, &msg[0], C.int(len(msg)))
	if c == nil {
		return nil, fmt.Errorf("%w %s: %s", ErrCascade, opts.Cascade, C.GoString(&msg[0]))
	}
	return &Cascade{opts: opts, c: c}, nil
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
	if d.c == nil {
		return nil, ErrClosed
	}
	var out [4 * maxFaces]C.int
	var scale C.double
	var msg [256]C.char
	minSide := max(24, int(float64(d.opts.MinFace)*min(1, float64(d.opts.MaxWidth)/float64(w))))
	n := C.sentinel_cascade_detect(d.c, (*C.uchar)(unsafe.Pointer(&img.Pix[0])), C.int(w), C.int(h), C.int(img.Stride),
		C.int(d.opts.MaxWidth), C.double(d.opts.ScaleFactor), C.int(d.opts.MinNeighbors), C.int(minSide),
		&out[0], C.int(maxFaces), &scale, &msg[0], C.int(len(msg)))
	if n < 0 {
		return nil, fmt.Errorf("facedetect: OpenCV: %s", C.GoString(&msg[0]))
	}
	faces := make([]image.Rectangle, 0, min(int(n), maxFaces))
	for i := 0; i < min(int(n), maxFaces); i++ {
		r := image.Rect(int(out[4*i]), int(out[4*i+1]), int(out[4*i]+out[4*i+2]), int(out[4*i+1]+out[4*i+3]))
		if r = scaleRect(r, float64(scale), b); !r.Empty() {
			faces = append(faces, r)
		}
	}
	sortLargestFirst(faces)
	return faces, nil
}

// Close frees the classifier.
func (d *Cascade) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c != nil {
		C.sentinel_cascade_free(d.c)
		d.c = nil
	}
	return nil
}
