// Package facedetect finds frontal faces in camera frames with OpenCV's cascade classifier
// (Debian 12's OpenCV 4.6), using the LBP frontal-face cascade that Debian's opencv-data ships
// (/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml; the Haar cascades
// beside it work too).
//
// OpenCV is a shared C++ library, so the detector is behind the build tag `opencv`: the
// pillar build links it (make build-pillar), and every other build stays static and free of
// it. Without the tag, New returns ErrNoDetector ("no detector in this build") and Available
// is false; the rest of the package (options, the cascade file check) is the same. With the
// tag, the classifier is bound through a few lines of C++ (cascade.cpp) that link objdetect,
// imgproc and core only and catch OpenCV's exceptions; with the tags `opencv,gocv` it is bound
// through gocv.io/x/gocv v0.25.0 instead, whose package links every OpenCV module (about
// 60 MB more resident memory; docs/BENCHMARKS.md).
//
// The detector takes grayscale frames (image.Gray; a decoded JPEG's Y plane is one) and
// returns face boxes in frame pixels, largest first. It keeps no frame: a face is personal
// data. Command facebench (./facebench) measures it on a live stream.
package facedetect
