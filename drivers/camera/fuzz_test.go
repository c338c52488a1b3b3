package camera

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzPartReader feeds arbitrary bytes to the MJPEG part parser: it must never panic, must
// end, and must only return frames within the limit that are whole JPEGs.
func FuzzPartReader(f *testing.F) {
	a := jpegOf("A", 200)
	f.Add([]byte(part("f", a, len(a), "image/jpeg")+part("f", a, -1, "")+"--f--\r\n"), "f", uint16(1000))
	f.Add([]byte(part("f", a, 5000, "image/jpeg")), "f", uint16(1000))
	f.Add([]byte("--f\r\nContent-Length: 10\r\n\r\n\xff\xd8\xff\xd9"), "f", uint16(64))
	f.Add([]byte("--f\r\n\xff\xd8\xff..\xff\xd9\r\n--f--"), "f", uint16(64))
	f.Add([]byte(strings.Repeat("\r\n--", 100)), "", uint16(50))
	f.Add([]byte("--f\r\nContent-Type: image/jpeg\r\n\r\n"+string(a)+"\n--f\n"), "--f", uint16(300))
	f.Fuzz(func(t *testing.T, stream []byte, boundary string, max uint16) {
		limit := int(max%4096) + 1
		pr := NewPartReader(bytes.NewReader(stream), boundary, limit)
		for i := 0; ; i++ {
			if i > len(stream)+1 {
				t.Fatalf("no end after %d parts of a %d-byte stream", i, len(stream))
			}
			b, err := pr.Next()
			if err != nil {
				if IsSkippable(err) {
					continue
				}
				return
			}
			if len(b) > limit {
				t.Fatalf("frame of %d bytes, limit %d", len(b), limit)
			}
			if !IsJPEG(b) || !bytes.HasSuffix(b, []byte{0xFF, 0xD9}) {
				t.Fatalf("frame is not a whole JPEG: % x", b[:min(len(b), 16)])
			}
		}
	})
}

// FuzzPartRoundTrip writes frames as a camera would, with and without Content-Length, and
// reads them back unchanged.
func FuzzPartRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), []byte("\r\n--\r\n"), true)
	f.Add([]byte{0xFF, 0xD9, 0xFF, 0xD8}, []byte("x"), false)
	f.Fuzz(func(t *testing.T, x, y []byte, withLength bool) {
		const boundary = "sentinelframe"
		frames := [][]byte{wrapJPEG(x), wrapJPEG(y), wrapJPEG(append(x, y...))}
		var stream strings.Builder
		for _, fr := range frames {
			if !withLength && bytes.Contains(fr, []byte("\n--"+boundary)) {
				return // a body holding the delimiter needs Content-Length
			}
			n := -1
			if withLength {
				n = len(fr)
			}
			stream.WriteString(part(boundary, fr, n, "image/jpeg"))
		}
		stream.WriteString("--" + boundary + "--\r\n")
		got, skipped, _ := readAll(NewPartReader(strings.NewReader(stream.String()), boundary, 1<<20))
		if len(skipped) != 0 || len(got) != len(frames) {
			t.Fatalf("%d frames, %v skipped; want %d", len(got), skipped, len(frames))
		}
		for i := range frames {
			if !bytes.Equal(got[i], frames[i]) {
				t.Fatalf("frame %d changed", i)
			}
		}
	})
}

// wrapJPEG makes b a JPEG-shaped frame that trimFrame leaves alone.
func wrapJPEG(b []byte) []byte {
	return append(append([]byte{0xFF, 0xD8, 0xFF}, b...), 0xFF, 0xD9)
}
