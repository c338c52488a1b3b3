//go:build opencv

package facedetect_test

import (
	"errors"
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/sentinel-edge/sentinel/drivers/facedetect"
	"github.com/sentinel-edge/sentinel/drivers/facetrack"
	simcam "github.com/sentinel-edge/sentinel/sim/camera"
)

// HaarCascade is the Haar frontal-face cascade beside the LBP one.
const haarCascade = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"

// need returns a named test photo, or skips when it is not installed
// (scripts/install-deps.sh face installs them; make test runs it).
func need(t testing.TB, name string) image.Image {
	t.Helper()
	p, ok := simcam.TestImage(name)
	if !ok {
		missing(t, "test photo %s not installed (scripts/install-deps.sh face)", name)
	}
	img, err := simcam.LoadImage(p)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func portrait(t testing.TB, name string) image.Image {
	t.Helper()
	img, ok, err := simcam.Portrait(name)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		missing(t, "test photo %s not installed (scripts/install-deps.sh face)", name)
	}
	return img
}

func detector(t testing.TB, o facedetect.Options) *facedetect.Cascade {
	t.Helper()
	if o.Cascade == "" {
		o.Cascade = facedetect.DefaultCascade
	}
	if _, err := os.Stat(o.Cascade); err != nil {
		missing(t, "cascade %s not installed (opencv-data)", o.Cascade)
	}
	d, err := facedetect.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// gray encodes a scene as JPEG (as a camera sends it) and decodes its luma back.
func gray(t testing.TB, img image.Image) *image.Gray {
	t.Helper()
	b, err := simcam.EncodeJPEG(img, 85)
	if err != nil {
		t.Fatal(err)
	}
	d, err := decodeJPEG(b)
	if err != nil {
		t.Fatal(err)
	}
	return facetrack.GrayView(d)
}

func TestDetectRealFaces(t *testing.T) {
	brick, grass := need(t, "brick"), need(t, "grass")
	tests := []struct {
		name    string
		scene   func() image.Image
		cascade string
		faces   int
		minSide int
	}{
		{"astronaut before a wall", func() image.Image { return simcam.Person(brick, portrait(t, "astronaut"), 640, 480, 400) }, "", 1, 80},
		{"astronaut on grass, farther", func() image.Image { return simcam.Person(grass, portrait(t, "astronaut"), 640, 480, 260) }, "", 1, 50},
		{"astronaut, the whole photo", func() image.Image { return need(t, "astronaut") }, "", 1, 60},
		// Messi looks down, with a small face: the strict LBP cascade misses him; the Haar
		// cascade (camera.cascade) finds him.
		{"messi before a wall (Haar)", func() image.Image { return simcam.Person(brick, portrait(t, "messi"), 640, 480, 400) }, haarCascade, 1, 80},
		{"an empty wall", func() image.Image { return simcam.Scene(brick, 640, 480) }, "", 0, 0},
		{"empty grass", func() image.Image { return simcam.Scene(grass, 640, 480) }, "", 0, 0},
		{"a coffee cup", func() image.Image { return simcam.Scene(need(t, "coffee"), 640, 480) }, "", 0, 0},
		{"a cat", func() image.Image { return simcam.Scene(need(t, "chelsea"), 640, 480) }, "", 0, 0},
		{"a face in profile", func() image.Image { return simcam.Scene(need(t, "camera"), 640, 480) }, "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := detector(t, facedetect.Options{Cascade: tt.cascade})
			faces, err := d.Detect(gray(t, tt.scene()))
			if err != nil {
				t.Fatal(err)
			}
			if len(faces) != tt.faces {
				t.Fatalf("%d faces %v, want %d", len(faces), faces, tt.faces)
			}
			for _, f := range faces {
				if min(f.Dx(), f.Dy()) < tt.minSide {
					t.Errorf("face %v smaller than %d", f, tt.minSide)
				}
			}
		})
	}
}

// A frame wider than MaxWidth is detected on a scaled copy; the box comes back in frame
// pixels. A frame not at the origin keeps its coordinates.
func TestDetectScaledAndOffset(t *testing.T) {
	brick := need(t, "brick")
	scene := gray(t, simcam.Person(brick, portrait(t, "astronaut"), 1280, 960, 800))
	full := detector(t, facedetect.Options{MaxWidth: 1280})
	half := detector(t, facedetect.Options{MaxWidth: 640})
	a, err := full.Detect(scene)
	if err != nil || len(a) != 1 {
		t.Fatalf("full size: %v %v", a, err)
	}
	b, err := half.Detect(scene)
	if err != nil || len(b) != 1 {
		t.Fatalf("scaled: %v %v", b, err)
	}
	if v := facetrack.IoU(a[0], b[0]); v < 0.6 {
		t.Errorf("scaled detection %v vs full %v: IoU %.2f", b[0], a[0], v)
	}
	sub := scene.SubImage(image.Rect(200, 100, 1100, 960)).(*image.Gray)
	c, err := full.Detect(sub)
	if err != nil || len(c) != 1 || facetrack.IoU(a[0], c[0]) < 0.6 {
		t.Errorf("sub-image: %v (full %v), %v", c, a, err)
	}
}

func TestDetectorEdges(t *testing.T) {
	d := detector(t, facedetect.Options{})
	if f, err := d.Detect(image.NewGray(image.Rect(0, 0, 10, 10))); err != nil || len(f) != 0 {
		t.Errorf("tiny frame: %v %v", f, err)
	}
	if err := d.Close(); err != nil {
		t.Error(err)
	}
	if _, err := d.Detect(image.NewGray(image.Rect(0, 0, 64, 64))); !errors.Is(err, facedetect.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.xml")
	_ = os.WriteFile(bad, []byte("<opencv_storage><x/></opencv_storage>"), 0o600)
	if _, err := facedetect.New(facedetect.Options{Cascade: bad}); !errors.Is(err, facedetect.ErrCascade) {
		t.Errorf("bad cascade: %v", err)
	}
	if !facedetect.Available {
		t.Error("Available is false in the opencv build")
	}
}
