// Command facebench measures the pillar unit's face side as its own process: it reads an
// MJPEG stream (camera.MJPEG), detects (facedetect, OpenCV) and tracks (facetrack) every
// frame it can, for a while, then prints the frames processed per second, the detector's
// time per frame, the triggers, and the process's resident memory. It needs the opencv
// build tag; without it, it says so and exits.
//
//	facebench --url http://127.0.0.1:8081/stream --seconds 30
package main
