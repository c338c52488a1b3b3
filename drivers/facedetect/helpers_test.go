package facedetect_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"testing"
)

func decodeJPEG(b []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(b)) }

// missing skips a test whose test photos or cascade are not installed, or fails it when
// SENTINEL_REQUIRE_FACE is set (make test installs them: they must be there).
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("SENTINEL_REQUIRE_FACE") != "" {
		t.Fatalf(format+" (SENTINEL_REQUIRE_FACE is set)", args...)
	}
	t.Skipf(format, args...)
}
