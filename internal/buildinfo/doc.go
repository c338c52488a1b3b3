// Package buildinfo says which build of Sentinel is running. The Makefile stamps Version,
// Commit and BuildTime with -ldflags -X; an unstamped build falls back to what the Go
// toolchain recorded.
package buildinfo
