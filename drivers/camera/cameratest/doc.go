// Package cameratest is a fake camera that serves a fixed JPEG and counts snapshots.
package cameratest
