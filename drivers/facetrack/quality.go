package facetrack

import (
	"image"
)

// Hint is what the screen should tell the person in front of the camera.
type Hint string

// Hints. HintNone: nothing to say (no trigger mode is waiting, or the face was just taken).
const (
	HintNone         Hint = ""
	HintNoFace       Hint = "no_face"        // no face in view
	HintComeCloser   Hint = "come_closer"    // the face is smaller than camera.min_face
	HintLookAtCamera Hint = "look_at_camera" // the face is cut by the frame's edge: step into the middle
	HintHoldStill    Hint = "hold_still"     // the face is blurred
	HintMoreLight    Hint = "more_light"     // the face is too dark (or too bright)
)

// Quality is what was measured of one face in one frame.
type Quality struct {
	Size       int     // the box's shorter side, frame pixels
	Inside     bool    // the box keeps a margin from every edge of the frame
	Sharpness  float64 // variance of the Laplacian over the face, scaled down to 64 pixels
	Brightness float64 // mean luma over the face, 0–255
}

// normSide is the side the face region is resampled to before the Laplacian, so that the
// sharpness does not depend on the face's size in pixels.
const normSide = 64

// Measure measures the face at box (in img's coordinates) in img.
func Measure(img *image.Gray, box image.Rectangle) Quality {
	b := img.Bounds()
	box = box.Intersect(b)
	q := Quality{Size: min(box.Dx(), box.Dy())}
	if box.Empty() {
		return q
	}
	edge := max(2, q.Size/20)
	q.Inside = box.Min.X-b.Min.X >= edge && box.Min.Y-b.Min.Y >= edge && b.Max.X-box.Max.X >= edge && b.Max.Y-box.Max.Y >= edge
	n := img.SubImage(box).(*image.Gray)
	if q.Size > normSide {
		n = Resample(img, box, box.Dx()*normSide/q.Size, box.Dy()*normSide/q.Size)
	}
	var sum float64
	for _, p := range n.Pix {
		sum += float64(p)
	}
	q.Brightness = sum / float64(len(n.Pix))
	q.Sharpness = LaplacianVariance(n)
	return q
}

// LaplacianVariance is the variance of the 4-neighbour Laplacian over img's interior: low
// for a blurred picture, high for a sharp one.
func LaplacianVariance(img *image.Gray) float64 {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	if w < 3 || h < 3 {
		return 0
	}
	var sum, sum2 float64
	for y := 1; y < h-1; y++ {
		row := img.Pix[y*img.Stride:]
		up, down := img.Pix[(y-1)*img.Stride:], img.Pix[(y+1)*img.Stride:]
		for x := 1; x < w-1; x++ {
			l := float64(int(up[x]) + int(down[x]) + int(row[x-1]) + int(row[x+1]) - 4*int(row[x]))
			sum += l
			sum2 += l * l
		}
	}
	n := float64((w - 2) * (h - 2))
	mean := sum / n
	return sum2/n - mean*mean
}

// Resample returns the region r of img scaled to w×h by area averaging (each output pixel is
// the mean of the input pixels it covers, so small outputs do not alias).
func Resample(img *image.Gray, r image.Rectangle, w, h int) *image.Gray {
	out := image.NewGray(image.Rect(0, 0, w, h))
	r = r.Intersect(img.Bounds())
	if r.Empty() || w <= 0 || h <= 0 {
		return out
	}
	rw, rh := r.Dx(), r.Dy()
	for oy := 0; oy < h; oy++ {
		y0, y1 := r.Min.Y+oy*rh/h, r.Min.Y+max((oy+1)*rh/h, oy*rh/h+1)
		for ox := 0; ox < w; ox++ {
			x0, x1 := r.Min.X+ox*rw/w, r.Min.X+max((ox+1)*rw/w, ox*rw/w+1)
			var s, n int
			for y := y0; y < y1; y++ {
				base := (y-img.Rect.Min.Y)*img.Stride - img.Rect.Min.X
				for x := x0; x < x1; x++ {
					s += int(img.Pix[base+x])
					n++
				}
			}
			out.Pix[oy*out.Stride+ox] = uint8((s + n/2) / n)
		}
	}
	return out
}

// Gates are the quality a face must have to be searched. Zero values take the defaults.
type Gates struct {
	MinFace       int     // camera.min_face: the smallest face side, pixels (default 80)
	MinSharpness  float64 // default 60 (see Quality.Sharpness; a sharp face measures hundreds)
	MinBrightness float64 // default 45
	MaxBrightness float64 // default 225
}

func (g Gates) withDefaults() Gates {
	if g.MinFace <= 0 {
		g.MinFace = 80
	}
	if g.MinSharpness <= 0 {
		g.MinSharpness = 60
	}
	if g.MinBrightness <= 0 {
		g.MinBrightness = 45
	}
	if g.MaxBrightness <= 0 {
		g.MaxBrightness = 225
	}
	return g
}

// Check returns HintNone when q passes every gate, else what the person should do, in this
// order: come closer, step into the middle, more light, hold still.
func (g Gates) Check(q Quality) Hint {
	g = g.withDefaults()
	switch {
	case q.Size < g.MinFace:
		return HintComeCloser
	case !q.Inside:
		return HintLookAtCamera
	case q.Brightness < g.MinBrightness || q.Brightness > g.MaxBrightness:
		return HintMoreLight
	case q.Sharpness < g.MinSharpness:
		return HintHoldStill
	}
	return HintNone
}
