//go:build opencv

package facedetect

import (
	"image"
	"image/draw"
	_ "image/jpeg"
	_ "image/png"
	"os"
	"testing"
	"time"
)

func load(t *testing.T, p string) *image.Gray {
	f, err := os.Open(p)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	im, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	g := image.NewGray(im.Bounds())
	draw.Draw(g, g.Bounds(), im, im.Bounds().Min, draw.Src)
	return g
}

func TestScratch(t *testing.T) {
	d, err := New(Options{MinFace: 20, MinNeighbors: 3})
	if err != nil {
		t.Fatal(err)
	}
	sk := "/usr/lib/python3/dist-packages/skimage/data/"
	cv := "/usr/share/doc/opencv-doc/examples/data/"
	for _, p := range []string{sk + "astronaut.png", sk + "camera.png", cv + "messi5.jpg", sk + "coffee.png", sk + "chelsea.png", sk + "brick.png", sk + "grass.png", sk + "rocket.jpg", sk + "motorcycle_left.png", cv + "fruits.jpg", cv + "building.jpg", cv + "baboon.jpg", cv + "home.jpg", cv + "lena.jpg", cv + "starry_night.jpg", cv + "HappyFish.jpg", sk + "hubble_deep_field.jpg", sk + "coins.png", sk+"page.png", sk+"text.png", sk+"retina.jpg", sk+"rocket.jpg", sk+"logo.png", sk+"color.png", sk+"immunohistochemistry.png"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		g := load(t, p)
		st := time.Now()
		r, _ := d.Detect(g)
		t.Logf("%s %v: %v in %v", p, g.Bounds().Size(), r, time.Since(st))
	}
}
