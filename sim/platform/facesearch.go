package platform

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg" // queries and enrolled photos
	_ "image/png"  // enrolled photos may be PNG
	"math"
	"os"
	"sync"

	"github.com/sentinel-edge/sentinel/sim/population"
)

// Face search (docking interface v3): POST a face, get the person it is, with a match score.
const (
	PathFaceSearch  = "/api/v1/face/search"
	IfaceFaceSearch = "face_search"
	// MatchThreshold is the score below which the reference server answers not_found.
	MatchThreshold = 0.80
)

// FaceSearchRequest is the body of POST /api/v1/face/search: a base64 JPEG of a face (the
// unit's crop, or a whole frame).
type FaceSearchRequest struct {
	ImageJPEG string `json:"image_jpeg"`
}

// ErrFaceIndex is an enrolled photo that cannot be read.
var ErrFaceIndex = errors.New("platform: face index")

// How the reference server matches faces. It is a simulator: a template match, not face
// recognition. An enrolled photo is a face photo as for an ID card or an enrolment: the face
// in its middle, the face's box 30% to 95% of the photo's shorter side. The query's centre
// (the face, without the unit's crop margin) is scaled to tpl×tpl gray pixels and compared,
// by normalised cross-correlation, with every window of each enrolled photo at scales where
// the window spans minFace to maxFace of the photo, centred within offCentre of its middle;
// the score is the best correlation (0 to 1). It recognises the same photograph, also cut,
// scaled, shifted a little and re-encoded, not the same person in another picture.
const (
	tpl       = 32
	centre    = 0.62 // the unit crops the face with a margin of 0.3 of the face on each side
	minFace   = 0.30
	maxFace   = 0.95
	faceStep  = 1.06
	offCentre = 0.20
	maxPixels = 4096 * 4096
)

// faceIndex is the enrolled photos, each as a pyramid of gray levels.
type faceIndex struct {
	people []faceEntry
}

type faceEntry struct {
	person population.Person
	levels []*level
}

// level is an enrolled photo at one scale, with the integral images of its pixels and
// squares (window means and energies in constant time).
type level struct {
	w, h     int
	pix      []float32
	sum, sq2 []float64 // (w+1)×(h+1)
}

// LoadFaces reads the enrolled photos (population.Person.FaceImage) for face search; it is
// done by the first face search otherwise. A photo that cannot be read is an error naming
// it (never the person).
func (s *Server) LoadFaces() error {
	s.facesOnce.Do(func() { s.faces, s.facesErr = newFaceIndex(s.pop) })
	return s.facesErr
}

func newFaceIndex(pop *population.Population) (*faceIndex, error) {
	ix := &faceIndex{}
	for _, p := range pop.People() {
		if p.FaceImage == "" {
			continue
		}
		g, err := loadGray(p.FaceImage)
		if err != nil {
			return nil, fmt.Errorf("%w: face_image %s: %v", ErrFaceIndex, p.FaceImage, err)
		}
		ix.people = append(ix.people, faceEntry{person: p, levels: pyramid(g)})
	}
	return ix, nil
}

func loadGray(path string) (*image.Gray, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decodeGray(b)
}

// decodeGray decodes a JPEG or PNG, refusing one that declares more than maxPixels.
func decodeGray(b []byte) (*image.Gray, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if cfg.Width*cfg.Height > maxPixels || cfg.Width < 8 || cfg.Height < 8 {
		return nil, fmt.Errorf("%d×%d pixels", cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	g := image.NewGray(img.Bounds())
	draw.Draw(g, g.Rect, img, g.Rect.Min, draw.Src)
	return g, nil
}

// pyramid scales g so that tpl pixels span minFace to maxFace of its shorter side.
func pyramid(g *image.Gray) []*level {
	short := float64(min(g.Rect.Dx(), g.Rect.Dy()))
	var out []*level
	for f := minFace; f <= maxFace; f *= faceStep {
		k := tpl / (f * short)
		w, h := int(float64(g.Rect.Dx())*k+0.5), int(float64(g.Rect.Dy())*k+0.5)
		if w < tpl || h < tpl {
			break
		}
		if k > 1 {
			continue // a face smaller than the template in this photo: too small to tell
		}
		out = append(out, newLevel(resampleGray(g, w, h)))
	}
	return out
}

func newLevel(pix []float32, w, h int) *level {
	l := &level{w: w, h: h, pix: pix, sum: make([]float64, (w+1)*(h+1)), sq2: make([]float64, (w+1)*(h+1))}
	for y := 0; y < h; y++ {
		var rs, rq float64
		for x := 0; x < w; x++ {
			v := float64(pix[y*w+x])
			rs += v
			rq += v * v
			l.sum[(y+1)*(w+1)+x+1] = l.sum[y*(w+1)+x+1] + rs
			l.sq2[(y+1)*(w+1)+x+1] = l.sq2[y*(w+1)+x+1] + rq
		}
	}
	return l
}

func (l *level) window(t []float64, x, y int) float64 {
	w := l.w + 1
	return t[(y+tpl)*w+x+tpl] - t[y*w+x+tpl] - t[(y+tpl)*w+x] + t[y*w+x]
}

// resampleGray scales g to w×h by area averaging, as float32.
func resampleGray(g *image.Gray, w, h int) ([]float32, int, int) {
	out := make([]float32, w*h)
	gw, gh := g.Rect.Dx(), g.Rect.Dy()
	for oy := 0; oy < h; oy++ {
		y0, y1 := oy*gh/h, max((oy+1)*gh/h, oy*gh/h+1)
		for ox := 0; ox < w; ox++ {
			x0, x1 := ox*gw/w, max((ox+1)*gw/w, ox*gw/w+1)
			var s, n int
			for y := y0; y < y1; y++ {
				row := g.Pix[y*g.Stride:]
				for x := x0; x < x1; x++ {
					s += int(row[x])
					n++
				}
			}
			out[oy*w+ox] = float32(s) / float32(n)
		}
	}
	return out, w, h
}

// query turns a face image into the zero-mean, unit-length template of its centre; ok is
// false for a flat picture.
func query(g *image.Gray) ([]float32, bool) {
	b := g.Rect
	cw, ch := int(float64(b.Dx())*centre), int(float64(b.Dy())*centre)
	c := image.Rect(b.Min.X+(b.Dx()-cw)/2, b.Min.Y+(b.Dy()-ch)/2, 0, 0)
	c.Max = c.Min.Add(image.Pt(cw, ch))
	sub := g.SubImage(c).(*image.Gray)
	sub = &image.Gray{Pix: sub.Pix, Stride: sub.Stride, Rect: image.Rect(0, 0, cw, ch)}
	t, _, _ := resampleGray(sub, tpl, tpl)
	var mean float64
	for _, v := range t {
		mean += float64(v)
	}
	mean /= float64(len(t))
	var norm float64
	for i := range t {
		t[i] -= float32(mean)
		norm += float64(t[i]) * float64(t[i])
	}
	if norm < 1e-3 {
		return nil, false
	}
	inv := float32(1 / math.Sqrt(norm))
	for i := range t {
		t[i] *= inv
	}
	return t, true
}

// best returns the best correlation of template q in l's windows near its middle.
func (l *level) best(q []float32) float64 {
	best := -1.0
	n := float64(tpl * tpl)
	dx, dy := int(offCentre*float64(l.w)), int(offCentre*float64(l.h))
	x0, y0 := max(0, (l.w-tpl)/2-dx), max(0, (l.h-tpl)/2-dy)
	x1, y1 := min(l.w-tpl, (l.w-tpl)/2+dx), min(l.h-tpl, (l.h-tpl)/2+dy)
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			s := l.window(l.sum, x, y)
			e := l.window(l.sq2, x, y) - s*s/n
			if e < 1e-3 {
				continue
			}
			var dot float32
			for ty := 0; ty < tpl; ty++ {
				row := l.pix[(y+ty)*l.w+x : (y+ty)*l.w+x+tpl]
				qr := q[ty*tpl : (ty+1)*tpl]
				for i, v := range row {
					dot += v * qr[i]
				}
			}
			// q is zero-mean, so the window's mean drops out of the numerator.
			if c := float64(dot) / math.Sqrt(e); c > best {
				best = c
			}
		}
	}
	return best
}

// search returns the enrolled person the face is, and the score, or ok false.
func (ix *faceIndex) search(img []byte) (population.Person, float64, bool) {
	g, err := decodeGray(img)
	if err != nil {
		return population.Person{}, 0, false
	}
	q, ok := query(g)
	if !ok {
		return population.Person{}, 0, false
	}
	var who population.Person
	best := 0.0
	for _, e := range ix.people {
		for _, l := range e.levels {
			if s := l.best(q); s > best {
				best, who = s, e.person
			}
		}
	}
	return who, best, best >= MatchThreshold
}

// faceSearch answers a face search: a synthetic face (platform.FaceJPEG) names its person
// (score 1); any other is searched among the enrolled photos.
func (s *Server) faceSearch(req credRequest) (*Data, bool) {
	var p population.Person
	score := 1.0
	if id := FaceID(req.face); id != "" {
		var ok bool
		if p, ok = s.pop.ByID(id); !ok {
			return nil, false
		}
	} else {
		if err := s.LoadFaces(); err != nil {
			s.log.Error("face search without a face index", "err", err)
			return nil, false
		}
		var ok bool
		if p, score, ok = s.faces.search(req.face); !ok {
			return nil, false
		}
	}
	d := s.data(p, Identity{IDNumber: p.IDNumber, Name: p.Name, Match: true})
	score = math.Round(score*1000) / 1000
	d.Score = &score
	return d, true
}

// decode decodes a request of any interface: face search here, the rest by the dialect.
func (s *Server) decode(iface string, in reqInput) (credRequest, error) {
	if iface != IfaceFaceSearch {
		return s.d.decode(iface, in)
	}
	var r FaceSearchRequest
	if err := decodeStrict(in.body, &r); err != nil {
		return credRequest{}, err
	}
	img, err := decodeFace(r.ImageJPEG)
	if err != nil {
		return credRequest{}, err
	}
	return credRequest{face: img}, nil
}

// registerFaceSearch adds the face search path (the reference dialect only, for now).
func (s *Server) registerFaceSearch() {
	if _, ok := s.d.(reference); ok {
		s.ifs[PathFaceSearch] = IfaceFaceSearch
	}
}

// faceState is the Server's face index, loaded once.
type faceState struct {
	facesOnce sync.Once
	faces     *faceIndex
	facesErr  error
}
