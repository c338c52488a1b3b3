//go:build !opencv

package facedetect_test

import (
	"errors"
	"image"
	"strings"
	"testing"

	"github.com/sentinel-edge/sentinel/drivers/facedetect"
)

// A build without the opencv tag compiles and says plainly that it has no detector.
func TestNoDetectorInThisBuild(t *testing.T) {
	if facedetect.Available {
		t.Fatal("Available without the opencv tag")
	}
	d, err := facedetect.New(facedetect.Options{})
	if !errors.Is(err, facedetect.ErrNoDetector) || !strings.Contains(err.Error(), "no detector in this build") || d != nil {
		t.Fatalf("New: %v, %v", d, err)
	}
	var c facedetect.Cascade
	if _, err := c.Detect(image.NewGray(image.Rect(0, 0, 64, 64))); !errors.Is(err, facedetect.ErrNoDetector) {
		t.Errorf("Detect: %v", err)
	}
}
