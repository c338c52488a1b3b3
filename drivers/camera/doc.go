// Package camera captures JPEG frames for face verification and face passages: stills
// (Camera: Snapshot) from an IP camera's HTTP snapshot URL or a V4L2 device (a USB or CSI
// camera, through github.com/blackjack/webcam, MJPEG format), and continuous streams (Stream:
// Run) from an IP camera serving MJPEG over HTTP (multipart/x-mixed-replace) or a V4L2 device
// in streaming mode. Streams reconnect with full-jitter backoff, report offline when no frame
// came within the stall time and online at the next frame, skip and count corrupt and
// oversize parts, and refuse redirects. The fakes in cameratest serve fixed frames.
//
// A frame is a face: personal data. This package never stores or logs one; callers send
// it where the device style asks and store it only sealed, when configured.
package camera
