package idcard

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// sample is a synthetic card with a valid ID number (GB 11643 check character).
func sample() Info {
	return Info{
		Name: "张三丰", Sex: "1", Nation: "01", Birth: "19900307",
		Address: "福建省晋江市青阳街道模拟路1号", IDNumber: "350582199003071234",
		Issuer: "晋江市公安局", ValidFrom: "20200101", ValidTo: "长期",
	}
}

func init() {
	// Make the sample's check character right whatever the digits above.
	s := sample().IDNumber[:17]
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(s[i]-'0') * idWeights[i]
	}
	sampleID = s + string(idCheck[sum%11])
}

var sampleID string

func sampleValid() Info {
	i := sample()
	i.IDNumber = sampleID
	return i
}

func TestTextRoundTrip(t *testing.T) {
	in := sampleValid()
	b, err := EncodeText(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != TextSize {
		t.Fatalf("text block of %d bytes", len(b))
	}
	// The name field is UCS-2LE: 张 is U+5F20.
	if binary.LittleEndian.Uint16(b) != 0x5F20 {
		t.Errorf("first unit %04X, want 5F20", binary.LittleEndian.Uint16(b))
	}
	out, err := ParseText(b)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("round trip changed the card: %v -> %v", in, out) // Info masks itself
	}
	if s := out.String(); strings.Contains(s, in.IDNumber) || strings.Contains(s, in.Name) {
		t.Errorf("String leaks personal data")
	}
}

func TestTextErrors(t *testing.T) {
	good, _ := EncodeText(sampleValid())
	mut := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"short", good[:255], ErrTextSize},
		{"surrogate in name", mut(func(b []byte) { b[0], b[1] = 0x00, 0xD8 }), ErrTextChar},
		{"control char in address", mut(func(b []byte) { b[52], b[53] = 0x07, 0x00 }), ErrTextChar},
		{"empty name", mut(func(b []byte) {
			for i := 0; i < 30; i += 2 {
				b[i], b[i+1] = 0x20, 0
			}
		}), ErrMissingKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseText(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
	long := sampleValid()
	long.Name = strings.Repeat("名", 16)
	if _, err := EncodeText(long); !errors.Is(err, ErrTextField) {
		t.Errorf("16-character name: %v, want ErrTextField", err)
	}
}

// TestBadCheckCharParses: a card whose ID number fails its check character parses to that
// number (the verifier denies it); the read was not damaged.
func TestBadCheckCharParses(t *testing.T) {
	good, _ := EncodeText(sampleValid())
	b := append([]byte(nil), good...)
	b[122+34] ^= 1 // the check character's low bits
	info, err := ParseText(b)
	if err != nil {
		t.Fatalf("ParseText: %v", err)
	}
	if info.IDNumber == sampleID || info.IDNumber[:17] != sampleID[:17] || validID(info.IDNumber) {
		t.Errorf("parsed ID number is not the card's, with its wrong check character")
	}
}

func TestParseRead(t *testing.T) {
	photo := make([]byte, PhotoSize)
	photo[0] = 0x57
	data, err := EncodeRead(sampleValid(), photo)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseRead(data)
	if err != nil {
		t.Fatal(err)
	}
	if c.IDNumber != sampleID || c.Photo.Len() != PhotoSize {
		t.Errorf("read parsed to %v, %v", c.Info, c.Photo)
	}
	if _, err := ParseRead(data[:300]); !errors.Is(err, ErrLength) {
		t.Errorf("truncated read: %v, want ErrLength", err)
	}
}

func FuzzText(f *testing.F) {
	good, _ := EncodeText(sampleValid())
	f.Add(good)
	f.Add(make([]byte, TextSize))
	f.Add([]byte(strings.Repeat("\xff", TextSize)))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ParseText(b)
		if err != nil {
			return
		}
		if info.Name == "" {
			t.Fatal("accepted a card without a name")
		}
		// What parses re-encodes and parses to the same card.
		again, err := EncodeText(info)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if back, err := ParseText(again); err != nil || back != info {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}
