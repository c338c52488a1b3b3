// Package camera is the simulator's IP camera (sentinel-sim camera): it serves MJPEG at
// /stream (multipart/x-mixed-replace, one part per frame) and the current frame at
// /snapshot.jpg, playing a script of (image, seconds) steps: an empty scene, a face entering,
// standing, leaving. Script directives inject the faults a unit must survive: a dropped
// connection, a stall, a corrupt part, a huge part, bytes without a boundary.
//
// It also has the helpers the tests use to make scenes from the public test photos that
// Debian packages ship (TestImage, Compose, EncodeJPEG).
package camera
