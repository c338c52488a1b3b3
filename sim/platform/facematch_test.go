package platform

import (
	"image"
	"os"
	"testing"

	"github.com/sentinel-edge/sentinel/drivers/facetrack"
	simcam "github.com/sentinel-edge/sentinel/sim/camera"
)

// The matcher's margins on Debian's test photos: a crop of the same photograph (composed
// before a wall, cropped as the unit does) scores at least 0.85 against its person; another
// person's face, a face nobody enrolled and pictures without a face stay below 0.6 against
// everyone.
func TestFaceMatchMargins(t *testing.T) {
	levels := map[string][]*level{}
	for _, n := range []string{"astronaut", "messi"} {
		img, ok, err := simcam.EnrolPhoto(n)
		if err != nil || !ok {
			missing(t, "test photo %s not installed (scripts/install-deps.sh face)", n)
		}
		b, _ := simcam.EncodeJPEG(img, 95)
		g, err := decodeGray(b)
		if err != nil {
			t.Fatal(err)
		}
		levels[n] = pyramid(g)
	}
	crop := func(name string, r image.Rectangle) []byte {
		p, ok := simcam.TestImage(name)
		if !ok {
			missing(t, "test photo %s not installed", name)
		}
		img, err := simcam.LoadImage(p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := simcam.EncodeJPEG(facetrack.Crop(img, r, 0.3), 90)
		return b
	}
	score := func(q []byte, who string) float64 {
		g, err := decodeGray(q)
		if err != nil {
			t.Fatal(err)
		}
		tq, ok := query(g)
		if !ok {
			return 0
		}
		best := 0.0
		for _, l := range levels[who] {
			best = max(best, l.best(tq))
		}
		return best
	}
	astro, messi := crop("astronaut", image.Rect(189, 86, 261, 158)), crop("messi", image.Rect(226, 92, 267, 133))
	others := map[string][]byte{
		"a face in profile": crop("camera", image.Rect(180, 80, 260, 160)),
		"a coffee cup":      crop("coffee", image.Rect(200, 100, 400, 300)),
		"a wall":            crop("brick", image.Rect(200, 100, 300, 200)),
		"a cat":             crop("chelsea", image.Rect(150, 50, 300, 200)),
	}
	if s := score(astro, "astronaut"); s < 0.85 {
		t.Errorf("astronaut vs astronaut: %.3f", s)
	}
	if s := score(messi, "messi"); s < 0.85 {
		t.Errorf("messi vs messi: %.3f", s)
	}
	if s := score(astro, "messi"); s > 0.6 {
		t.Errorf("astronaut vs messi: %.3f", s)
	}
	if s := score(messi, "astronaut"); s > 0.6 {
		t.Errorf("messi vs astronaut: %.3f", s)
	}
	for name, q := range others {
		for _, who := range []string{"astronaut", "messi"} {
			if s := score(q, who); s > 0.6 {
				t.Errorf("%s vs %s: %.3f", name, who, s)
			}
		}
	}
}

// missing skips a test whose test photos or cascade are not installed, or fails it when
// SENTINEL_REQUIRE_FACE is set (make test installs them: they must be there).
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("SENTINEL_REQUIRE_FACE") != "" {
		t.Fatalf(format+" (SENTINEL_REQUIRE_FACE is set)", args...)
	}
	t.Skipf(format, args...)
}
