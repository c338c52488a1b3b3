//go:build opencv

package main

import "image"

type (
	imageGray = image.Gray
	imageRect = image.Rectangle
)
