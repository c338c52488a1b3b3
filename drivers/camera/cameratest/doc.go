// Package cameratest has fakes of the camera drivers: Camera serves a fixed JPEG and counts
// snapshots; Stream emits the frames a test sends and plays online/offline reports.
package cameratest
