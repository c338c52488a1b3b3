package camera

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"os"
)

// Public test photos that Debian packages ship (installed by scripts/install-deps.sh face).
var testImages = map[string]string{
	// python3-skimage
	"astronaut": "/usr/lib/python3/dist-packages/skimage/data/astronaut.png", // a face (Eileen Collins)
	"camera":    "/usr/lib/python3/dist-packages/skimage/data/camera.png",    // a face in profile
	"coffee":    "/usr/lib/python3/dist-packages/skimage/data/coffee.png",    // no face
	"chelsea":   "/usr/lib/python3/dist-packages/skimage/data/chelsea.png",   // a cat
	"brick":     "/usr/lib/python3/dist-packages/skimage/data/brick.png",     // a wall: a background
	"grass":     "/usr/lib/python3/dist-packages/skimage/data/grass.png",     // a background
	// opencv-doc
	"messi": "/usr/share/doc/opencv-doc/examples/data/messi5.jpg", // a small face, looking down
}

// TestImage returns the path of a named public test photo (astronaut, camera, coffee,
// chelsea, brick, grass, messi), and whether it is installed.
func TestImage(name string) (string, bool) {
	p, ok := testImages[name]
	if !ok {
		return "", false
	}
	_, err := os.Stat(p)
	return p, err == nil
}

// LoadImage decodes a PNG or JPEG file.
func LoadImage(path string) (image.Image, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// Scene returns a w×h picture of bg, scaled to cover it.
func Scene(bg image.Image, w, h int) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	Compose(out, bg, out.Rect)
	return out
}

// Compose draws src scaled into dst's rectangle r (bilinear; src's aspect is not kept).
func Compose(dst *image.RGBA, src image.Image, r image.Rectangle) {
	sb := src.Bounds()
	rgba := image.NewRGBA(sb)
	draw.Draw(rgba, sb, src, sb.Min, draw.Src)
	r = r.Intersect(dst.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		fy := (float64(y-r.Min.Y)+0.5)*float64(sb.Dy())/float64(r.Dy()) - 0.5
		for x := r.Min.X; x < r.Max.X; x++ {
			fx := (float64(x-r.Min.X)+0.5)*float64(sb.Dx())/float64(r.Dx()) - 0.5
			c := bilinear(rgba, fx, fy)
			copy(dst.Pix[dst.PixOffset(x, y):], c[:])
		}
	}
}

func bilinear(m *image.RGBA, fx, fy float64) [4]uint8 {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	x0, y0 := int(fx), int(fy)
	if fx < 0 {
		x0 = -1
	}
	if fy < 0 {
		y0 = -1
	}
	ax, ay := fx-float64(x0), fy-float64(y0)
	clamp := func(v, n int) int { return min(max(v, 0), n-1) }
	px := func(x, y int) []uint8 {
		o := clamp(y, h)*m.Stride + 4*clamp(x, w)
		return m.Pix[o : o+4]
	}
	p00, p10, p01, p11 := px(x0, y0), px(x0+1, y0), px(x0, y0+1), px(x0+1, y0+1)
	var out [4]uint8
	for i := range 4 {
		v := (1-ay)*((1-ax)*float64(p00[i])+ax*float64(p10[i])) + ay*((1-ax)*float64(p01[i])+ax*float64(p11[i]))
		out[i] = uint8(v + 0.5)
	}
	return out
}

// EncodeJPEG encodes img at quality.
func EncodeJPEG(img image.Image, quality int) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// portraits are head-and-shoulders regions of the test photos with a face.
var portraits = map[string]image.Rectangle{
	"astronaut": image.Rect(110, 10, 340, 300),
	"messi":     image.Rect(195, 55, 300, 175),
}

// Portrait returns the head-and-shoulders region of a named test photo with a face
// (astronaut, messi), and whether the photo is installed.
func Portrait(name string) (image.Image, bool, error) {
	r, ok := portraits[name]
	p, installed := TestImage(name)
	if !ok || !installed {
		return nil, false, nil
	}
	img, err := LoadImage(p)
	if err != nil {
		return nil, true, err
	}
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok {
		return nil, true, fmt.Errorf("%s: cannot crop a %T", p, img)
	}
	return sub.SubImage(r), true, nil
}

// Person returns a w×h scene: bg, and fg scaled to height pixels tall (its aspect kept),
// centred, standing on the bottom edge (as a person in front of a pillar camera).
func Person(bg, fg image.Image, w, h, height int) *image.RGBA {
	out := Scene(bg, w, h)
	fb := fg.Bounds()
	fw := fb.Dx() * height / fb.Dy()
	x0 := (w - fw) / 2
	Compose(out, fg, image.Rect(x0, h-height, x0+fw, h))
	return out
}

// faces are the face boxes in the test photos (as the LBP cascade finds them).
var faces = map[string]image.Rectangle{
	"astronaut": image.Rect(189, 86, 261, 158),
	"messi":     image.Rect(226, 92, 267, 133),
}

// EnrolPhoto returns an enrolment photo made from a named test photo with a face (astronaut,
// messi): the face with a margin of 0.4 of its size on every side, as on an ID card; and
// whether the photo is installed.
func EnrolPhoto(name string) (*image.RGBA, bool, error) {
	f, ok := faces[name]
	p, installed := TestImage(name)
	if !ok || !installed {
		return nil, false, nil
	}
	img, err := LoadImage(p)
	if err != nil {
		return nil, true, err
	}
	m := f.Dx() * 4 / 10
	r := image.Rect(f.Min.X-m, f.Min.Y-m, f.Max.X+m, f.Max.Y+m).Intersect(img.Bounds())
	out := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	draw.Draw(out, out.Rect, img, r.Min, draw.Src)
	return out, true, nil
}
