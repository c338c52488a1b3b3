package idcard

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWorkedExamples checks the encoder and decoder against the frames of the protocol notes
// (shared/protocols/idcard-sam.md).
func TestWorkedExamples(t *testing.T) {
	for _, tt := range []struct {
		name string
		cmd  [2]byte
		want string
	}{
		{"find", CmdFind, "AA AA AA 96 69 00 03 20 01 22"},
		{"select", CmdSelect, "AA AA AA 96 69 00 03 20 02 21"},
		{"read", CmdRead, "AA AA AA 96 69 00 03 30 01 32"},
	} {
		if got := EncodeCommand(tt.cmd, nil); !bytes.Equal(got, unhex(t, tt.want)) {
			t.Errorf("%s: % X, want %s", tt.name, got, tt.want)
		}
	}
	var d Decoder
	frames := d.Feed(unhex(t, "AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97"+"AA AA AA 96 69 00 0C 00 00 90 00 00 00 00 00 00 00 00 9C"))
	if len(frames) != 2 {
		t.Fatalf("%d frames, want 2 (noise %d, chk %d, len %d)", len(frames), d.Noise, d.BadChecksum, d.BadLength)
	}
	r, err := ParseResponse(frames[0])
	if err != nil || r.SW3 != StatusFound || len(r.Data) != 4 {
		t.Errorf("find reply %+v %v", r, err)
	}
	r, err = ParseResponse(frames[1])
	if err != nil || r.SW3 != StatusOK || len(r.Data) != 8 {
		t.Errorf("select reply %+v %v", r, err)
	}
	// A read reply: LEN 05 08, 1,295 bytes in all.
	data, err := EncodeRead(sample(), make([]byte, PhotoSize))
	if err != nil {
		t.Fatal(err)
	}
	f, err := EncodeResponse(StatusOK, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != 1295 || f[5] != 0x05 || f[6] != 0x08 {
		t.Errorf("read reply: %d bytes, LEN % X; want 1295 bytes, LEN 05 08", len(f), f[5:7])
	}
}

func TestDecoderResync(t *testing.T) {
	good := EncodeCommand(CmdFind, nil)
	badChk := append([]byte(nil), good...)
	badChk[len(badChk)-1] ^= 1
	badLen := append([]byte(nil), Preamble...)
	badLen = append(badLen, 0xFF, 0xFF) // LEN far past MaxLen
	tests := []struct {
		name                   string
		chunks                 [][]byte
		frames                 int
		noise, chk, length, pn int
	}{
		{"one", [][]byte{good}, 1, 0, 0, 0, 0},
		{"byte by byte", splitBytes(good), 1, 0, 0, 0, 0},
		{"noise before", [][]byte{[]byte("\x01\x02\xAA\x03"), good}, 1, 4, 0, 0, 0},
		{"bad checksum then good", [][]byte{badChk, good}, 1, 9, 1, 0, 0},
		{"bad length then good", [][]byte{badLen, good}, 1, 6, 0, 1, 0},
		{"partial", [][]byte{good[:7]}, 0, 0, 0, 0, 7},
		{"preamble split over reads", [][]byte{good[:3], good[3:]}, 1, 0, 0, 0, 0},
		{"noise ending in AA AA", [][]byte{[]byte{0x11, 0xAA, 0xAA}, good[2:]}, 1, 1, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			n := 0
			for _, c := range tt.chunks {
				for _, f := range d.Feed(c) {
					n++
					if !bytes.Equal(f, []byte{0x20, 0x01}) {
						t.Errorf("payload % X, want 20 01", f)
					}
				}
			}
			if n != tt.frames || d.Noise != tt.noise || d.BadChecksum != tt.chk || d.BadLength != tt.length || d.Pending() != tt.pn {
				t.Errorf("frames=%d noise=%d chk=%d len=%d pending=%d, want %d %d %d %d %d", n, d.Noise, d.BadChecksum, d.BadLength, d.Pending(), tt.frames, tt.noise, tt.chk, tt.length, tt.pn)
			}
		})
	}
}

func splitBytes(b []byte) [][]byte {
	var out [][]byte
	for i := range b {
		out = append(out, b[i:i+1])
	}
	return out
}

func FuzzDecoder(f *testing.F) {
	f.Add(EncodeCommand(CmdFind, nil), 3)
	f.Add(unhex(f, "AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97"), 1)
	f.Add(unhex(f, "00 AA AA AA 96 69 FF FF AA AA AA 96 69 00 03 20 02 21 AA AA"), 5)
	f.Add([]byte{0xAA, 0xAA, 0xAA, 0x96, 0x69, 0x00, 0x02, 0x00}, 2)
	f.Fuzz(func(t *testing.T, b []byte, chunk int) {
		if chunk < 1 {
			chunk = 1
		}
		var d Decoder
		total := 0
		for i := 0; i < len(b); i += chunk {
			for _, p := range d.Feed(b[i:min(i+chunk, len(b))]) {
				total += len(p)
				if len(p) < minLen-1 || len(p) > MaxLen {
					t.Fatalf("payload of %d bytes", len(p))
				}
				// Every payload re-encodes to a frame that decodes to itself.
				var d2 Decoder
				f, err := Encode(p)
				if err != nil {
					t.Fatal(err)
				}
				if got := d2.Feed(f); len(got) != 1 || !bytes.Equal(got[0], p) {
					t.Fatalf("re-encoded payload did not round-trip")
				}
				_, _ = ParseResponse(p)
			}
		}
		if d.Pending() > len(b) || d.Noise > len(b) {
			t.Fatalf("pending %d, noise %d of %d bytes", d.Pending(), d.Noise, len(b))
		}
	})
}
