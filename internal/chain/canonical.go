package chain

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects a canonicalisation accepts, so hostile
// input cannot exhaust the stack.
const maxDepth = 64

// Canonical appends to dst the RFC 8785 (JSON Canonicalization Scheme) form of the JSON text
// src: no white space, object members sorted by the UTF-16 code units of their names,
// strings with the minimal escaping of RFC 8785 section 3.2.2.2, numbers as ECMAScript
// writes doubles. src must be I-JSON (RFC 7493): valid UTF-8, no lone surrogates, no
// duplicate member names, numbers within the range of a double; anything else is an error
// wrapping ErrNotCanonicalizable.
func Canonical(dst, src []byte) ([]byte, error) {
	out, _, err := canonical(dst, src, nil)
	return out, err
}

// member is one top-level member of a canonicalised object: where its name and its value
// are in the output.
type member struct {
	at         int // the member's opening quote
	n0, n1     int // its name, inside the quotes (as canonicalised: escaped if it must be)
	start, end int // its value
}

// name returns the member's name (unescaped) in out, the canonical text it was found in.
func (m member) name(out []byte) []byte {
	n := out[m.n0:m.n1]
	if bytes.IndexByte(n, '\\') < 0 {
		return n
	}
	u, err := strconv.Unquote(string(out[m.n0-1 : m.n1+1]))
	if err != nil {
		return n
	}
	return []byte(u)
}

// canonical is Canonical, and, when src is an object, its members as written (sorted),
// appended to top.
func canonical(dst, src []byte, top []member) ([]byte, []member, error) {
	p := parsers.Get().(*parser)
	p.src, p.i, p.top = src, 0, top[:0]
	defer func() {
		p.src, p.top = nil, nil
		parsers.Put(p)
	}()
	p.ws()
	var err error
	if p.i < len(src) && src[p.i] == '{' {
		dst, top, err = p.object(dst, 0, true)
	} else {
		dst, err = p.value(dst, 0)
	}
	if err != nil {
		return nil, nil, err
	}
	p.ws()
	if p.i != len(src) {
		return nil, nil, p.fail("data after the JSON value")
	}
	return dst, top, nil
}

// parsers keeps parsers (and their scratch buffers) for reuse.
var parsers = sync.Pool{New: func() any { return new(parser) }}

type parser struct {
	src []byte
	i   int
	// scratch per depth: the canonical members of the object being read, their names
	// unescaped, and where each is.
	bufs  [][]byte
	names [][]byte
	spans [][]span
	tmp   []byte   // an escaped string, unescaped
	top   []member // where the top-level object's members go
}

func (p *parser) fail(what string) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrNotCanonicalizable, p.i, what)
}

func (p *parser) ws() {
	for p.i < len(p.src) {
		switch p.src[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value(dst []byte, depth int) ([]byte, error) {
	if p.i >= len(p.src) {
		return nil, p.fail("unexpected end")
	}
	switch c := p.src[p.i]; {
	case c == '{':
		out, _, err := p.object(dst, depth, false)
		return out, err
	case c == '[':
		return p.array(dst, depth)
	case c == '"':
		if end, ok := p.plainString(); ok {
			// No escapes, no control characters, valid UTF-8: already canonical.
			dst = append(dst, p.src[p.i:end]...)
			p.i = end
			return dst, nil
		}
		s, err := p.str(p.tmp[:0])
		if err != nil {
			return nil, err
		}
		p.tmp = s
		return appendString(dst, s), nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(dst)
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if len(p.src)-p.i >= len(lit) && string(p.src[p.i:p.i+len(lit)]) == lit {
				p.i += len(lit)
				return append(dst, lit...), nil
			}
		}
		return nil, p.fail(fmt.Sprintf("unexpected %q", c))
	}
}

func (p *parser) array(dst []byte, depth int) ([]byte, error) {
	if depth >= maxDepth {
		return nil, p.fail("nested too deeply")
	}
	p.i++ // [
	dst = append(dst, '[')
	p.ws()
	if p.i < len(p.src) && p.src[p.i] == ']' {
		p.i++
		return append(dst, ']'), nil
	}
	for n := 0; ; n++ {
		if n > 0 {
			dst = append(dst, ',')
		}
		p.ws()
		var err error
		if dst, err = p.value(dst, depth+1); err != nil {
			return nil, err
		}
		p.ws()
		if p.i >= len(p.src) {
			return nil, p.fail("unterminated array")
		}
		switch p.src[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return append(dst, ']'), nil
		default:
			return nil, p.fail("expected , or ] in array")
		}
	}
}

// span is one member of an object being read: offsets into the depth's scratch buffers.
type span struct{ name0, name1, mem0, mem1, qlen int } // qlen: the quoted canonical name's length

func (p *parser) object(dst []byte, depth int, wantTop bool) ([]byte, []member, error) {
	if depth >= maxDepth {
		return nil, nil, p.fail("nested too deeply")
	}
	for len(p.bufs) <= depth {
		p.bufs, p.names, p.spans = append(p.bufs, nil), append(p.names, nil), append(p.spans, nil)
	}
	buf, names, spans := p.bufs[depth][:0], p.names[depth][:0], p.spans[depth][:0]
	p.i++ // {
	p.ws()
	if p.i < len(p.src) && p.src[p.i] == '}' {
		p.i++
		return append(dst, '{', '}'), nil, nil
	}
	for {
		p.ws()
		if p.i >= len(p.src) || p.src[p.i] != '"' {
			return nil, nil, p.fail("expected a member name")
		}
		var s span
		s.name0 = len(names)
		s.mem0 = len(buf)
		if end, ok := p.plainString(); ok {
			names = append(names, p.src[p.i+1:end-1]...)
			buf = append(buf, p.src[p.i:end]...)
			p.i = end
		} else {
			var err error
			if names, err = p.str(names); err != nil {
				return nil, nil, err
			}
			buf = appendString(buf, names[s.name0:])
		}
		s.name1, s.qlen = len(names), len(buf)-s.mem0
		p.ws()
		if p.i >= len(p.src) || p.src[p.i] != ':' {
			return nil, nil, p.fail("expected : after a member name")
		}
		p.i++
		p.ws()
		buf = append(buf, ':')
		// The value is written into this depth's buffer; a nested object uses the next
		// depth's scratch for its own members.
		var err error
		if buf, err = p.value(buf, depth+1); err != nil {
			return nil, nil, err
		}
		s.mem1 = len(buf)
		spans = append(spans, s)
		p.ws()
		if p.i >= len(p.src) {
			return nil, nil, p.fail("unterminated object")
		}
		if p.src[p.i] == ',' {
			p.i++
			continue
		}
		if p.src[p.i] != '}' {
			return nil, nil, p.fail("expected , or } in object")
		}
		p.i++
		break
	}
	p.bufs[depth], p.names[depth], p.spans[depth] = buf, names, spans
	name := func(s span) []byte { return names[s.name0:s.name1] }
	slices.SortFunc(spans, func(a, b span) int { return compareUTF16(name(a), name(b)) })
	for k := 1; k < len(spans); k++ {
		if compareUTF16(name(spans[k-1]), name(spans[k])) == 0 {
			return nil, nil, p.fail(fmt.Sprintf("duplicate member name %q", name(spans[k])))
		}
	}
	var top []member
	if wantTop {
		top = p.top
	}
	dst = append(dst, '{')
	for k, s := range spans {
		if k > 0 {
			dst = append(dst, ',')
		}
		at := len(dst)
		dst = append(dst, buf[s.mem0:s.mem1]...)
		if wantTop {
			top = append(top, member{at: at, n0: at + 1, n1: at + s.qlen - 1, start: at + s.qlen + 1, end: len(dst)})
		}
	}
	return append(dst, '}'), top, nil
}

// plainString reports whether the string at p.i needs no work: no escape, no control
// character, valid UTF-8; end is just past its closing quote.
func (p *parser) plainString() (end int, ok bool) {
	rest := p.src[p.i+1:]
	q := bytes.IndexByte(rest, '"')
	if q < 0 {
		return 0, false
	}
	s := rest[:q]
	ascii := true
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return 0, false
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	if !ascii && !utf8.Valid(s) {
		return 0, false
	}
	return p.i + 1 + q + 1, true
}

// str reads a JSON string at p.i and appends its unescaped UTF-8 to dst.
func (p *parser) str(dst []byte) ([]byte, error) {
	p.i++ // "
	for {
		start := p.i
		for p.i < len(p.src) {
			c := p.src[p.i]
			if c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
				break
			}
			p.i++
		}
		dst = append(dst, p.src[start:p.i]...)
		if p.i >= len(p.src) {
			return nil, p.fail("unterminated string")
		}
		switch c := p.src[p.i]; {
		case c == '"':
			p.i++
			return dst, nil
		case c < 0x20:
			return nil, p.fail("control character in a string")
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(p.src[p.i:])
			if r == utf8.RuneError && n <= 1 {
				return nil, p.fail("invalid UTF-8")
			}
			dst = append(dst, p.src[p.i:p.i+n]...)
			p.i += n
		default: // backslash
			var err error
			if dst, err = p.escape(dst); err != nil {
				return nil, err
			}
		}
	}
}

func (p *parser) escape(dst []byte) ([]byte, error) {
	if p.i+1 >= len(p.src) {
		return nil, p.fail("unterminated escape")
	}
	c := p.src[p.i+1]
	p.i += 2
	switch c {
	case '"', '\\', '/':
		return append(dst, c), nil
	case 'b':
		return append(dst, '\b'), nil
	case 'f':
		return append(dst, '\f'), nil
	case 'n':
		return append(dst, '\n'), nil
	case 'r':
		return append(dst, '\r'), nil
	case 't':
		return append(dst, '\t'), nil
	case 'u':
	default:
		return nil, p.fail(fmt.Sprintf("unknown escape \\%c", c))
	}
	r, ok := p.hex4()
	if !ok {
		return nil, p.fail("bad \\u escape")
	}
	if utf16.IsSurrogate(r) {
		if r >= 0xDC00 || p.i+1 >= len(p.src) || p.src[p.i] != '\\' || p.src[p.i+1] != 'u' {
			return nil, p.fail("lone surrogate in a \\u escape")
		}
		p.i += 2
		r2, ok := p.hex4()
		if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
			return nil, p.fail("lone surrogate in a \\u escape")
		}
		r = utf16.DecodeRune(r, r2)
	}
	return utf8.AppendRune(dst, r), nil
}

func (p *parser) hex4() (rune, bool) {
	if p.i+4 > len(p.src) {
		return 0, false
	}
	var r rune
	for _, c := range p.src[p.i : p.i+4] {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	p.i += 4
	return r, true
}

// number reads a JSON number (RFC 8259 grammar) and appends its canonical form.
func (p *parser) number(dst []byte) ([]byte, error) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.src) && p.src[p.i] >= '0' && p.src[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.src[p.i] == '-' {
		p.i++
	}
	intStart := p.i
	if n := digits(); n == 0 || (n > 1 && p.src[intStart] == '0') {
		return nil, p.fail("bad number")
	}
	integer := true
	if p.i < len(p.src) && p.src[p.i] == '.' {
		p.i++
		integer = false
		if digits() == 0 {
			return nil, p.fail("bad number: no digits after the point")
		}
	}
	if p.i < len(p.src) && (p.src[p.i] == 'e' || p.src[p.i] == 'E') {
		p.i++
		integer = false
		if p.i < len(p.src) && (p.src[p.i] == '+' || p.src[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.fail("bad number: no digits in the exponent")
		}
	}
	text := p.src[start:p.i]
	if integer && p.i-intStart <= 15 {
		// Small integers (seq, counts, milliseconds) are exact as doubles and written as
		// they are, without the float round trip; "-0" is 0.
		if string(text) == "-0" {
			return append(dst, '0'), nil
		}
		return append(dst, text...), nil
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, p.fail(fmt.Sprintf("number %s is out of the range of a double", text))
	}
	return AppendNumber(dst, f), nil
}

// AppendNumber appends f as ECMAScript's Number.prototype.toString writes it (RFC 8785
// section 3.2.2.3): the shortest digits that read back as f, in plain notation for
// magnitudes from 1e-6 up to 1e21 and in exponent notation ("1e+21", "5e-7") beyond. NaN
// and infinities have no JSON form; they are written as "null" (callers never pass them).
func AppendNumber(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return append(dst, "null"...)
	case f == 0:
		return append(dst, '0') // and -0
	case f < 0:
		dst = append(dst, '-')
		f = -f
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // d[.ddd]e±XX
	x := 0
	for e[x] != 'e' {
		x++
	}
	exp, _ := strconv.Atoi(string(e[x+1:]))
	mant := e[:x]
	var digs [20]byte
	d := append(digs[:0], mant[0])
	if len(mant) > 2 {
		d = append(d, mant[2:]...)
	}
	k, n := len(d), exp+1 // f = 0.d × 10^n
	switch {
	case k <= n && n <= 21:
		dst = append(dst, d...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, d[:n]...)
		dst = append(dst, '.')
		dst = append(dst, d[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, d...)
	default:
		dst = append(dst, d[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}

// appendString appends s (valid UTF-8) as an RFC 8785 string: only the quote, the
// backslash and the control characters are escaped, the six with short forms short,
// the others as \u00xx in lower-case hex.
func appendString(dst, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		start = i + 1
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// compareUTF16 orders two UTF-8 strings by their UTF-16 code units (RFC 8785 section
// 3.2.3). It differs from byte order only where a character above U+FFFF meets one in
// U+E000–U+FFFF.
func compareUTF16(a, b []byte) int {
	for len(a) > 0 && len(b) > 0 {
		if a[0] < utf8.RuneSelf && b[0] < utf8.RuneSelf {
			if a[0] != b[0] {
				return int(a[0]) - int(b[0])
			}
			a, b = a[1:], b[1:]
			continue
		}
		ra, na := utf8.DecodeRune(a)
		rb, nb := utf8.DecodeRune(b)
		if ra != rb {
			ua, ub := firstUnit(ra), firstUnit(rb)
			if ua != ub {
				return int(ua) - int(ub)
			}
			// Both above U+FFFF with the same high surrogate: the low ones decide, in
			// code point order.
			return int(ra) - int(rb)
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

func firstUnit(r rune) rune {
	if r < 0x10000 {
		return r
	}
	hi, _ := utf16.EncodeRune(r)
	return hi
}
