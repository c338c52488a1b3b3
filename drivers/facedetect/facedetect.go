package facedetect

import (
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"sort"
)

// DefaultCascade is the LBP frontal-face cascade of Debian's opencv-data.
const DefaultCascade = "/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml"

// Errors.
var (
	ErrNoDetector = errors.New("facedetect: no detector in this build (the pillar build has it: make build-pillar, tag opencv)")
	ErrCascade    = errors.New("facedetect: bad cascade file")
	ErrClosed     = errors.New("facedetect: detector closed")
)

// Options tune a detector. Zero values take the defaults.
type Options struct {
	// Cascade is the cascade file (default DefaultCascade).
	Cascade string
	// MinFace is the smallest face looked for, in frame pixels (default 40). Keep it below
	// the quality gate's camera.min_face, so that a face too far away is still seen and the
	// screen can say "come closer".
	MinFace int
	// ScaleFactor is the step between the cascade's scales (default 1.1).
	ScaleFactor float64
	// MinNeighbors is how many overlapping hits make a face (default 4).
	MinNeighbors int
	// MaxWidth: a wider frame is scaled down to this width to detect (default 640).
	MaxWidth int
}

func (o Options) withDefaults() Options {
	if o.Cascade == "" {
		o.Cascade = DefaultCascade
	}
	if o.MinFace <= 0 {
		o.MinFace = 40
	}
	if o.ScaleFactor <= 1 {
		o.ScaleFactor = 1.1
	}
	if o.MinNeighbors <= 0 {
		o.MinNeighbors = 4
	}
	if o.MaxWidth <= 0 {
		o.MaxWidth = 640
	}
	return o
}

// Detector finds faces in a grayscale frame.
type Detector interface {
	Detect(img *image.Gray) ([]image.Rectangle, error)
	String() string
	Close() error
}

// maxCascadeBytes bounds the cascade file (Debian's are 50 KB to 2 MB).
const maxCascadeBytes = 16 << 20

// CheckCascade checks that path is a regular, bounded, well-formed OpenCV cascade file
// (an XML opencv_storage with a cascade), before OpenCV reads it: OpenCV aborts the process
// on a file it cannot parse, rather than return an error.
func CheckCascade(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w %s: %v", ErrCascade, path, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxCascadeBytes {
		return fmt.Errorf("%w %s: not a regular file of at most %d bytes", ErrCascade, path, maxCascadeBytes)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w %s: %v", ErrCascade, path, err)
	}
	defer f.Close()
	dec := xml.NewDecoder(io.LimitReader(f, maxCascadeBytes))
	depth, root, cascade := 0, "", false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w %s: not well-formed XML: %v", ErrCascade, path, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				root = t.Name.Local
			}
			if depth == 1 && t.Name.Local == "cascade" {
				cascade = true
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	if root != "opencv_storage" || !cascade {
		return fmt.Errorf("%w %s: not an OpenCV cascade (want <opencv_storage><cascade>)", ErrCascade, path)
	}
	return nil
}

// scaleRect maps a box found on a frame scaled by s back to frame pixels, clipped to b.
func scaleRect(r image.Rectangle, s float64, b image.Rectangle) image.Rectangle {
	if s == 1 {
		return r.Add(b.Min).Intersect(b)
	}
	f := func(v int) int { return int(float64(v)/s + 0.5) }
	return image.Rect(f(r.Min.X), f(r.Min.Y), f(r.Max.X), f(r.Max.Y)).Add(b.Min).Intersect(b)
}

// sortLargestFirst orders boxes by area, largest first (ties: top-left first).
func sortLargestFirst(rs []image.Rectangle) {
	sort.SliceStable(rs, func(i, j int) bool {
		ai, aj := rs[i].Dx()*rs[i].Dy(), rs[j].Dx()*rs[j].Dy()
		if ai != aj {
			return ai > aj
		}
		return rs[i].Min.Y < rs[j].Min.Y || (rs[i].Min.Y == rs[j].Min.Y && rs[i].Min.X < rs[j].Min.X)
	})
}
