package idcard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/sentinel-edge/sentinel/internal/privacy"
)

// Sizes of the blocks a read returns.
const (
	TextSize  = 256
	PhotoSize = 1024
)

// field is one field of the text block: its name and size in bytes.
type field struct {
	name string
	size int
}

// layout is the text block, in order; the sizes add up to TextSize.
var layout = []field{
	{"name", 30}, {"sex", 2}, {"nation", 4}, {"birth", 16}, {"address", 70},
	{"id_number", 36}, {"issuer", 30}, {"valid_from", 16}, {"valid_to", 16}, {"reserved", 36},
}

// Errors of text parsing.
var (
	ErrTextSize   = errors.New("idcard: text block is not 256 bytes")
	ErrTextChar   = errors.New("idcard: text block holds a character that is not text")
	ErrTextField  = errors.New("idcard: text field too long")
	ErrMissingKey = errors.New("idcard: required text field is empty")
)

// Info is the text block of a card. It holds personal data: its String and LogValue mask
// it; never log the fields.
type Info struct {
	Name      string
	Sex       string // "1" male, "2" female
	Nation    string // two-digit code, "01" Han
	Birth     string // YYYYMMDD
	Address   string
	IDNumber  string
	Issuer    string
	ValidFrom string // YYYYMMDD
	ValidTo   string // YYYYMMDD or 长期 (long-term)
}

func (i *Info) fields() []*string {
	return []*string{&i.Name, &i.Sex, &i.Nation, &i.Birth, &i.Address, &i.IDNumber, &i.Issuer, &i.ValidFrom, &i.ValidTo, nil}
}

// String masks the personal data.
func (i Info) String() string {
	return fmt.Sprintf("card{id:%s name:%s}", privacy.MaskID(i.IDNumber), privacy.MaskName(i.Name))
}

// LogValue masks the personal data.
func (i Info) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", privacy.MaskID(i.IDNumber)), slog.String("name", privacy.MaskName(i.Name)))
}

// ParseText decodes the 256-byte UCS-2LE text block. Fields are padded with spaces; a field
// holding a control character or a UTF-16 surrogate (not UCS-2) is an error (the read was
// damaged), and so is an empty name. The ID number is returned as the card holds it, even
// when it fails its check character: the read was fine, and a forged or damaged card is the
// verifier's to deny (invalid_id_number), not a failed exchange to retry. Errors name the
// field, never its content.
func ParseText(b []byte) (Info, error) {
	if len(b) != TextSize {
		return Info{}, fmt.Errorf("%w: %d bytes", ErrTextSize, len(b))
	}
	var info Info
	dst := info.fields()
	off := 0
	for i, f := range layout {
		s, err := decodeUCS2(b[off : off+f.size])
		off += f.size
		if err != nil {
			return Info{}, fmt.Errorf("%w: field %s", err, f.name)
		}
		if dst[i] != nil {
			*dst[i] = s
		}
	}
	if info.Name == "" {
		return Info{}, fmt.Errorf("%w: name", ErrMissingKey)
	}
	return info, nil
}

func decodeUCS2(b []byte) (string, error) {
	var sb strings.Builder
	for i := 0; i+1 < len(b); i += 2 {
		u := binary.LittleEndian.Uint16(b[i:])
		switch {
		case u == 0:
			// NUL padding: some readers pad with it instead of spaces.
			u = ' '
		case u >= 0xD800 && u <= 0xDFFF, u < 0x20, u >= 0x7F && u < 0xA0, u == 0xFFFE, u == 0xFFFF:
			return "", fmt.Errorf("%w: U+%04X at byte %d", ErrTextChar, u, i)
		}
		sb.WriteRune(rune(u))
	}
	return strings.TrimRight(sb.String(), " "), nil
}

// EncodeText builds the text block of info (the simulator's side). A field longer than its
// space is an error.
func EncodeText(info Info) ([]byte, error) {
	out := make([]byte, 0, TextSize)
	src := info.fields()
	for i, f := range layout {
		s := ""
		if src[i] != nil {
			s = *src[i]
		}
		if utf8.RuneCountInString(s)*2 > f.size {
			return nil, fmt.Errorf("%w: %s holds at most %d characters", ErrTextField, f.name, f.size/2)
		}
		start := len(out)
		for _, r := range s {
			if r > 0xFFFF {
				return nil, fmt.Errorf("%w: %s has a character outside UCS-2", ErrTextChar, f.name)
			}
			out = binary.LittleEndian.AppendUint16(out, uint16(r))
		}
		for len(out)-start < f.size {
			out = append(out, 0x20, 0x00)
		}
	}
	return out, nil
}

// idWeights are the GB 11643-1999 weights of the first 17 characters.
var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

const idCheck = "10X98765432"

// validID checks the form and check character of an 18-character ID number (for the
// driver's count of invalid cards; the verifier makes the decision).
func validID(id string) bool {
	if len(id) != 18 {
		return false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		c := id[i]
		if c < '0' || c > '9' {
			return false
		}
		sum += int(c-'0') * idWeights[i]
	}
	return id[17] == idCheck[sum%11]
}

// Photo is the card's WLT-encoded photo, kept opaque: decoding it needs a licensed native
// library, which Sentinel does not ship. Hand it to a PhotoDecoder.
type Photo struct{ wlt []byte }

// NewPhoto wraps a WLT block.
func NewPhoto(wlt []byte) Photo { return Photo{wlt: append([]byte(nil), wlt...)} }

// Len is the size of the encoded photo; 0 when the read returned none.
func (p Photo) Len() int { return len(p.wlt) }

// Decode hands the photo to dec.
func (p Photo) Decode(dec PhotoDecoder) (image.Image, error) {
	if len(p.wlt) == 0 {
		return nil, errors.New("idcard: no photo")
	}
	return dec.Decode(p.wlt)
}

// String never shows the photo.
func (p Photo) String() string { return fmt.Sprintf("photo(%d bytes, WLT)", len(p.wlt)) }

// PhotoDecoder decodes a WLT photo (102×126) with the licensed library a deployment
// provides.
type PhotoDecoder interface {
	Decode(wlt []byte) (image.Image, error)
}

// Card is one card read.
type Card struct {
	Info
	Photo Photo
}

// ParseRead splits the data of a successful read (30 01): text length, photo length (2
// bytes each, big-endian), text, photo.
func ParseRead(data []byte) (Card, error) {
	if len(data) < 4 {
		return Card{}, fmt.Errorf("%w: read data of %d bytes", ErrLength, len(data))
	}
	tl := int(binary.BigEndian.Uint16(data[0:]))
	pl := int(binary.BigEndian.Uint16(data[2:]))
	if tl != TextSize || 4+tl+pl > len(data) {
		return Card{}, fmt.Errorf("%w: text %d and photo %d bytes in %d bytes of data", ErrLength, tl, pl, len(data)-4)
	}
	info, err := ParseText(data[4 : 4+tl])
	if err != nil {
		return Card{}, err
	}
	return Card{Info: info, Photo: NewPhoto(data[4+tl : 4+tl+pl])}, nil
}

// EncodeRead builds the data of a read reply (the simulator's side).
func EncodeRead(info Info, photo []byte) ([]byte, error) {
	text, err := EncodeText(info)
	if err != nil {
		return nil, err
	}
	out := binary.BigEndian.AppendUint16(nil, TextSize)
	out = binary.BigEndian.AppendUint16(out, uint16(len(photo)))
	out = append(out, text...)
	return append(out, photo...), nil
}
