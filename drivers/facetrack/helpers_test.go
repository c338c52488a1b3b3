package facetrack_test

import "image/color"

func grayOf(v uint8) color.Gray { return color.Gray{Y: v} }
