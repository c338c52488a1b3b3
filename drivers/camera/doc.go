// Package camera captures JPEG stills for face verification: from a V4L2 device (a USB or
// CSI camera, through github.com/blackjack/webcam, MJPEG format) or from an IP camera's HTTP
// snapshot URL. Both sit behind the Camera interface; the fake in cameratest serves fixed
// frames.
//
// A snapshot is a face: personal data. This package never stores or logs one; callers send
// it where the device style asks and store it only sealed, when configured.
package camera
