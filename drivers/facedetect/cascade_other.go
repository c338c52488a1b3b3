//go:build !opencv

package facedetect

import "image"

// Available says whether this build has the detector.
const Available = false

// Cascade is OpenCV's cascade classifier; this build has none.
type Cascade struct{}

var _ Detector = (*Cascade)(nil)

// New returns ErrNoDetector: this build has no OpenCV.
func New(Options) (*Cascade, error) { return nil, ErrNoDetector }

func (*Cascade) String() string { return "no face detector" }

// Detect returns ErrNoDetector.
func (*Cascade) Detect(*image.Gray) ([]image.Rectangle, error) { return nil, ErrNoDetector }

// Close does nothing.
func (*Cascade) Close() error { return nil }
