package idcard

import (
	"bytes"
	"errors"
	"fmt"
)

// Preamble starts every frame.
var Preamble = []byte{0xAA, 0xAA, 0xAA, 0x96, 0x69}

// Commands (CMD, PARA).
var (
	CmdReset  = [2]byte{0x10, 0xFF}
	CmdStatus = [2]byte{0x11, 0xFF}
	CmdSAMID  = [2]byte{0x12, 0xFF}
	CmdFind   = [2]byte{0x20, 0x01}
	CmdSelect = [2]byte{0x20, 0x02}
	CmdRead   = [2]byte{0x30, 0x01}
)

// MaxLen is the largest LEN accepted: a read with fingerprint is about 2,300 bytes.
const MaxLen = 4096

// minLen is the smallest LEN: two bytes (CMD PARA, or a response's SW1 SW2) and CHK; a
// response has SW3 too, which ParseResponse checks.
const minLen = 3

// Errors of frame parsing.
var (
	ErrShort    = errors.New("idcard: response too short")
	ErrTooLong  = errors.New("idcard: frame data too long")
	ErrChecksum = errors.New("idcard: bad checksum")
	ErrLength   = errors.New("idcard: bad frame length")
)

// Encode builds a frame around payload (CMD PARA DATA for a request, SW1 SW2 SW3 DATA for a
// response).
func Encode(payload []byte) ([]byte, error) {
	n := len(payload) + 1
	if n > MaxLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLong, n)
	}
	f := make([]byte, 0, len(Preamble)+2+n)
	f = append(f, Preamble...)
	f = append(f, byte(n>>8), byte(n))
	f = append(f, payload...)
	return append(f, xor(f[len(Preamble):])), nil
}

// EncodeCommand builds a request frame.
func EncodeCommand(cmd [2]byte, data []byte) []byte {
	f, err := Encode(append(cmd[:], data...))
	if err != nil {
		panic(err) // only with data longer than MaxLen, which no command sends
	}
	return f
}

func xor(b []byte) byte {
	var x byte
	for _, c := range b {
		x ^= c
	}
	return x
}

// Decoder finds frames in a byte stream: it skips noise before a preamble, drops frames
// with a bad length or checksum and resynchronises on the next preamble. Each dropped byte
// or frame is counted. It is not safe for concurrent use.
type Decoder struct {
	buf []byte
	// Counters of what was dropped.
	Noise       int // bytes skipped outside any frame
	BadChecksum int // frames with a wrong CHK
	BadLength   int // frames whose LEN is out of range
}

// Feed consumes b and returns the payloads (what lies between LEN and CHK) of the frames
// it completed.
func (d *Decoder) Feed(b []byte) [][]byte {
	d.buf = append(d.buf, b...)
	var out [][]byte
	for {
		i := bytes.Index(d.buf, Preamble)
		if i < 0 {
			// Keep a tail that may be the start of a preamble.
			keep := min(len(d.buf), len(Preamble)-1)
			for keep > 0 && !bytes.HasPrefix(Preamble, d.buf[len(d.buf)-keep:]) {
				keep--
			}
			d.Noise += len(d.buf) - keep
			d.buf = append(d.buf[:0], d.buf[len(d.buf)-keep:]...)
			return out
		}
		d.Noise += i
		d.buf = d.buf[i:]
		h := len(Preamble) + 2
		if len(d.buf) < h {
			return out
		}
		n := int(d.buf[len(Preamble)])<<8 | int(d.buf[len(Preamble)+1])
		if n < minLen || n > MaxLen {
			d.BadLength++
			d.buf = d.buf[1:]
			continue
		}
		if len(d.buf) < h+n {
			return out
		}
		frame := d.buf[:h+n]
		if xor(frame[len(Preamble):h+n-1]) != frame[h+n-1] {
			d.BadChecksum++
			d.buf = d.buf[1:]
			continue
		}
		out = append(out, append([]byte(nil), frame[h:h+n-1]...))
		d.buf = d.buf[h+n:]
	}
}

// Pending is how many bytes wait for the rest of a frame.
func (d *Decoder) Pending() int { return len(d.buf) }

// Reset drops what is buffered (a stale partial reply) and returns how many bytes it was.
func (d *Decoder) Reset() int {
	n := len(d.buf)
	d.buf = d.buf[:0]
	return n
}

// Response is a reader's reply.
type Response struct {
	SW1, SW2 byte
	SW3      Status
	Data     []byte
}

// ParseResponse splits a response payload.
func ParseResponse(p []byte) (Response, error) {
	if len(p) < 3 {
		return Response{}, fmt.Errorf("%w: %d bytes", ErrShort, len(p))
	}
	return Response{SW1: p[0], SW2: p[1], SW3: Status(p[2]), Data: p[3:]}, nil
}

// EncodeResponse builds a response frame (the simulator's side).
func EncodeResponse(sw3 Status, data []byte) ([]byte, error) {
	return Encode(append([]byte{0x00, 0x00, byte(sw3)}, data...))
}
