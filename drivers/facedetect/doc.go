// Package facedetect finds frontal faces in camera frames with OpenCV's cascade classifier
// (through gocv.io/x/gocv v0.25.0, against Debian 12's OpenCV 4.6), using the LBP
// frontal-face cascade that Debian's opencv-data ships
// (/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml).
//
// OpenCV is a shared C++ library, so the detector is behind the build tag `opencv`: the
// pillar build links it (make build-pillar), and every other build stays static and free of
// it. Without the tag, New returns ErrNoDetector ("no detector in this build") and Available
// is false; the rest of the package (options, the cascade file check) is the same.
//
// The detector takes grayscale frames (image.Gray; a decoded JPEG's Y plane is one) and
// returns face boxes in frame pixels. It keeps no frame: a face is personal data.
package facedetect
