package qrscan

// Splitter turns a serial byte stream into scan lines. A line ends at CR or LF; empty lines
// (the LF of a CRLF) are skipped. A line longer than Max is dropped whole, up to its
// terminator, and counted; so is a line with a control byte in it. It is not safe for
// concurrent use.
type Splitter struct {
	Max int // longest line accepted, in bytes

	buf      []byte
	overlong bool // the current line has passed Max and is being discarded
	// Counters of what was dropped.
	Overlong, Garbage int
}

// Feed consumes b and returns the complete lines it ended.
func (s *Splitter) Feed(b []byte) []string {
	var lines []string
	for _, c := range b {
		switch {
		case c == '\r' || c == '\n':
			if s.overlong {
				s.overlong = false
				s.Overlong++
			} else if len(s.buf) > 0 {
				if clean(s.buf) {
					lines = append(lines, string(s.buf))
				} else {
					s.Garbage++
				}
			}
			s.buf = s.buf[:0]
		case s.overlong:
		case len(s.buf) >= s.Max:
			s.overlong = true
			s.buf = s.buf[:0]
		default:
			s.buf = append(s.buf, c)
		}
	}
	return lines
}

// Pending says whether a partial line is buffered.
func (s *Splitter) Pending() bool { return len(s.buf) > 0 || s.overlong }

// Reset drops a partial line (after an idle gap or a reconnect) and reports whether there was
// one.
func (s *Splitter) Reset() bool {
	had := s.Pending()
	s.buf = s.buf[:0]
	s.overlong = false
	return had
}

// clean rejects control bytes: a scanner sends printable text.
func clean(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
