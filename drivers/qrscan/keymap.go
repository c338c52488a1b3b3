package qrscan

import "encoding/binary"

// Linux input event types and key codes (linux/input-event-codes.h) that a keyboard-wedge
// scanner sends.
const (
	evSyn = 0x00
	evKey = 0x01

	keyLeftShift  = 42
	keyRightShift = 54
	keyCapsLock   = 58
	keyEnter      = 28
	keyKPEnter    = 96
)

// usKeys maps key codes to their US-layout characters, unshifted and shifted.
var usKeys = map[uint16][2]byte{
	2: {'1', '!'}, 3: {'2', '@'}, 4: {'3', '#'}, 5: {'4', '$'}, 6: {'5', '%'},
	7: {'6', '^'}, 8: {'7', '&'}, 9: {'8', '*'}, 10: {'9', '('}, 11: {'0', ')'},
	12: {'-', '_'}, 13: {'=', '+'},
	16: {'q', 'Q'}, 17: {'w', 'W'}, 18: {'e', 'E'}, 19: {'r', 'R'}, 20: {'t', 'T'},
	21: {'y', 'Y'}, 22: {'u', 'U'}, 23: {'i', 'I'}, 24: {'o', 'O'}, 25: {'p', 'P'},
	26: {'[', '{'}, 27: {']', '}'},
	30: {'a', 'A'}, 31: {'s', 'S'}, 32: {'d', 'D'}, 33: {'f', 'F'}, 34: {'g', 'G'},
	35: {'h', 'H'}, 36: {'j', 'J'}, 37: {'k', 'K'}, 38: {'l', 'L'},
	39: {';', ':'}, 40: {'\'', '"'}, 41: {'`', '~'}, 43: {'\\', '|'},
	44: {'z', 'Z'}, 45: {'x', 'X'}, 46: {'c', 'C'}, 47: {'v', 'V'}, 48: {'b', 'B'},
	49: {'n', 'N'}, 50: {'m', 'M'},
	51: {',', '<'}, 52: {'.', '>'}, 53: {'/', '?'}, 57: {' ', ' '},
	// Keypad (scanners in "numeric keypad" mode).
	55: {'*', '*'}, 71: {'7', '7'}, 72: {'8', '8'}, 73: {'9', '9'}, 74: {'-', '-'},
	75: {'4', '4'}, 76: {'5', '5'}, 77: {'6', '6'}, 78: {'+', '+'}, 79: {'1', '1'},
	80: {'2', '2'}, 81: {'3', '3'}, 82: {'0', '0'}, 83: {'.', '.'}, 98: {'/', '/'},
}

// modifierKeys change nothing by themselves and are not garbage.
var modifierKeys = map[uint16]bool{29: true, 97: true, 56: true, 100: true, 125: true, 126: true, keyLeftShift: true, keyRightShift: true, keyCapsLock: true}

// KeyDecoder turns a stream of Linux input_event records from a keyboard-wedge scanner into
// bytes for a Splitter: characters by the US layout, '\r' for Enter, and 0x00 for a key that
// has no character (so the Splitter drops that line as garbage). Partial records are kept
// for the next Feed. It is not safe for concurrent use.
type KeyDecoder struct {
	// WordSize is the size of the kernel's long: 8 on 64-bit (24-byte events), 4 on 32-bit
	// ARM (16-byte events).
	WordSize int

	buf         []byte
	shift, caps bool
	// Events counts the records decoded.
	Events int
}

func (d *KeyDecoder) size() int { return 2*d.WordSize + 8 }

// Feed consumes raw event bytes and returns the characters typed.
func (d *KeyDecoder) Feed(b []byte) []byte {
	d.buf = append(d.buf, b...)
	sz := d.size()
	var out []byte
	i := 0
	for ; i+sz <= len(d.buf); i += sz {
		ev := d.buf[i+2*d.WordSize : i+sz]
		typ := binary.LittleEndian.Uint16(ev[0:])
		code := binary.LittleEndian.Uint16(ev[2:])
		val := int32(binary.LittleEndian.Uint32(ev[4:]))
		d.Events++
		if c, ok := d.key(typ, code, val); ok {
			out = append(out, c)
		}
	}
	d.buf = append(d.buf[:0], d.buf[i:]...)
	return out
}

// key applies one event and returns the byte it types, if any.
func (d *KeyDecoder) key(typ, code uint16, val int32) (byte, bool) {
	if typ != evKey {
		return 0, false // EV_SYN, EV_MSC scan codes, LEDs...
	}
	switch code {
	case keyLeftShift, keyRightShift:
		d.shift = val != 0
		return 0, false
	case keyCapsLock:
		if val == 1 {
			d.caps = !d.caps
		}
		return 0, false
	}
	if val != 1 {
		return 0, false // releases and autorepeat
	}
	if code == keyEnter || code == keyKPEnter {
		return '\r', true
	}
	if modifierKeys[code] {
		return 0, false
	}
	k, ok := usKeys[code]
	if !ok {
		return 0x00, true
	}
	c := k[0]
	if d.shift {
		c = k[1]
	}
	if d.caps && k[0] >= 'a' && k[0] <= 'z' {
		if d.shift {
			c = k[0]
		} else {
			c = k[1]
		}
	}
	return c, true
}

// Reset drops a partial record and the modifier state (after a reopen).
func (d *KeyDecoder) Reset() {
	d.buf = d.buf[:0]
	d.shift, d.caps = false, false
}

// EncodeKeys is the event stream a US keyboard-wedge scanner sends for s followed by Enter,
// for tests and recordings: press and release of each key, with Shift around shifted ones,
// and an EV_SYN after each event.
func EncodeKeys(s string, wordSize int) []byte {
	rev := map[byte][2]uint16{} // char -> code, shifted
	for code, k := range usKeys {
		if code >= 55 && code != 57 {
			continue // prefer the main block over the keypad
		}
		if _, ok := rev[k[0]]; !ok {
			rev[k[0]] = [2]uint16{code, 0}
		}
		if k[1] != k[0] {
			rev[k[1]] = [2]uint16{code, 1}
		}
	}
	var out []byte
	ev := func(typ, code uint16, val int32) {
		rec := make([]byte, 2*wordSize+8)
		binary.LittleEndian.PutUint16(rec[2*wordSize:], typ)
		binary.LittleEndian.PutUint16(rec[2*wordSize+2:], code)
		binary.LittleEndian.PutUint32(rec[2*wordSize+4:], uint32(val))
		out = append(out, rec...)
		if typ != evSyn {
			syn := make([]byte, 2*wordSize+8)
			out = append(out, syn...)
		}
	}
	press := func(code uint16) { ev(evKey, code, 1); ev(evKey, code, 0) }
	for i := 0; i < len(s); i++ {
		k, ok := rev[s[i]]
		if !ok {
			press(87) // F11: no character
			continue
		}
		if k[1] == 1 {
			ev(evKey, keyLeftShift, 1)
			press(k[0])
			ev(evKey, keyLeftShift, 0)
		} else {
			press(k[0])
		}
	}
	press(keyEnter)
	return out
}
