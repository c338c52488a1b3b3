package facetrack_test

import (
	"image"
	"math"
	"testing"

	"github.com/sentinel-edge/sentinel/drivers/facetrack"
)

func TestGates(t *testing.T) {
	g := facetrack.Gates{MinFace: 80, MinSharpness: 50, MinBrightness: 40, MaxBrightness: 220}
	ok := facetrack.Quality{Size: 100, Inside: true, Sharpness: 200, Brightness: 120}
	tests := []struct {
		name string
		edit func(*facetrack.Quality)
		want facetrack.Hint
	}{
		{"good", func(*facetrack.Quality) {}, facetrack.HintNone},
		{"small", func(q *facetrack.Quality) { q.Size = 79 }, facetrack.HintComeCloser},
		{"at the edge", func(q *facetrack.Quality) { q.Inside = false }, facetrack.HintLookAtCamera},
		{"dark", func(q *facetrack.Quality) { q.Brightness = 39 }, facetrack.HintMoreLight},
		{"glare", func(q *facetrack.Quality) { q.Brightness = 221 }, facetrack.HintMoreLight},
		{"blurred", func(q *facetrack.Quality) { q.Sharpness = 49 }, facetrack.HintHoldStill},
		{"small and blurred: come closer first", func(q *facetrack.Quality) { q.Size, q.Sharpness = 10, 0 }, facetrack.HintComeCloser},
	}
	for _, tt := range tests {
		q := ok
		tt.edit(&q)
		if got := g.Check(q); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := (facetrack.Gates{}).Check(facetrack.Quality{Size: 79, Inside: true, Sharpness: 1e3, Brightness: 100}); got != facetrack.HintComeCloser {
		t.Errorf("default min_face: %q", got)
	}
}

func TestMeasure(t *testing.T) {
	img := image.NewGray(image.Rect(10, 20, 330, 260)) // not at the origin
	for i := range img.Pix {
		img.Pix[i] = 100
	}
	flat := facetrack.Measure(img, image.Rect(100, 100, 200, 200))
	if flat.Sharpness != 0 || math.Abs(flat.Brightness-100) > 0.01 || !flat.Inside || flat.Size != 100 {
		t.Errorf("flat: %+v", flat)
	}
	// A checkerboard is as sharp as it gets.
	for y := 100; y < 200; y++ {
		for x := 100; x < 200; x++ {
			img.SetGray(x, y, grayOf(uint8(255*((x+y)%2))))
		}
	}
	if q := facetrack.Measure(img, image.Rect(100, 100, 200, 200)); q.Sharpness < 1000 {
		t.Errorf("checkerboard: sharpness %.0f", q.Sharpness)
	}
	if q := facetrack.Measure(img, image.Rect(5, 100, 105, 200)); q.Inside {
		t.Error("a box past the left edge counts as inside")
	}
	if q := facetrack.Measure(img, image.Rect(1000, 1000, 1100, 1100)); q.Size != 0 {
		t.Errorf("a box outside the frame: %+v", q)
	}
}

func TestResampleAndIoU(t *testing.T) {
	img := image.NewGray(image.Rect(4, 4, 12, 12))
	for i := range img.Pix {
		img.Pix[i] = uint8(i % 8 * 30)
	}
	r := facetrack.Resample(img, img.Rect, 4, 4)
	// Each output pixel averages two columns: (0+30)/2, (60+90)/2, ...
	if r.Pix[0] != 15 || r.Pix[1] != 75 || r.Pix[3] != 195 {
		t.Errorf("resampled row %v", r.Pix[:4])
	}
	a, b := image.Rect(0, 0, 10, 10), image.Rect(5, 0, 15, 10)
	if v := facetrack.IoU(a, b); math.Abs(v-1.0/3) > 1e-9 {
		t.Errorf("IoU %v, want 1/3", v)
	}
	if facetrack.IoU(a, image.Rect(20, 20, 30, 30)) != 0 || facetrack.IoU(a, a) != 1 {
		t.Error("IoU of disjoint or equal boxes")
	}
}
