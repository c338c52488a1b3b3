package facedetect_test

import (
	"bytes"
	"image"
	"image/jpeg"
)

func decodeJPEG(b []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(b)) }
