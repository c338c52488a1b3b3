package camera

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNoPhoto is a public test photo the kit needs that is not installed.
var ErrNoPhoto = errors.New("camera: test photo not installed (scripts/install-deps.sh face: python3-skimage, opencv-doc)")

// Kit file names, written by WriteKit.
const (
	KitFace     = "face.jpg"     // the astronaut before a brick wall, 640×480, the face about 100 px
	KitEmpty    = "empty.jpg"    // the wall alone
	KitNoFace   = "coffee.jpg"   // a coffee cup: a picture with no face
	KitEnrolled = "enrolled.jpg" // the enrolment photo of the chosen person (population face_image)
)

// WriteKit writes the pictures of a face-only passage into dir, from Debian's public test
// photos: the scenes a pillar's camera sees (KitFace, KitEmpty, KitNoFace) and the enrolment
// photo of enrol (astronaut: the person in KitFace; messi: someone else).
func WriteKit(dir, enrol string) error {
	load := func(name string) (string, error) {
		p, ok := TestImage(name)
		if !ok {
			return "", fmt.Errorf("%w: %s", ErrNoPhoto, name)
		}
		return p, nil
	}
	brickPath, err := load("brick")
	if err != nil {
		return err
	}
	coffeePath, err := load("coffee")
	if err != nil {
		return err
	}
	brick, err := LoadImage(brickPath)
	if err != nil {
		return err
	}
	coffee, err := LoadImage(coffeePath)
	if err != nil {
		return err
	}
	portrait, ok, err := Portrait("astronaut")
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: astronaut", ErrNoPhoto)
	}
	enrolled, ok, err := EnrolPhoto(enrol)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s (or not a face photo: astronaut, messi)", ErrNoPhoto, enrol)
	}
	pics := []struct {
		name string
		b    func() ([]byte, error)
	}{
		{KitFace, func() ([]byte, error) { return EncodeJPEG(Person(brick, portrait, 640, 480, 400), 85) }},
		{KitEmpty, func() ([]byte, error) { return EncodeJPEG(Scene(brick, 640, 480), 85) }},
		{KitNoFace, func() ([]byte, error) { return EncodeJPEG(Scene(coffee, 640, 480), 85) }},
		{KitEnrolled, func() ([]byte, error) { return EncodeJPEG(enrolled, 95) }},
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("camera: kit: %w", err)
	}
	for _, p := range pics {
		b, err := p.b()
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, p.name), b, 0o600)
		}
		if err != nil {
			return fmt.Errorf("camera: kit %s: %w", p.name, err)
		}
	}
	return nil
}
