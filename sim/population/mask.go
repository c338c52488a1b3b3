package population

import (
	"fmt"
	"unicode/utf8"
)

// Mask returns a form of a piece of personal data (an ID number, a name, a QR
// token) that is safe to log: the first two characters followed by "***" for
// values of more than four characters, and only "***" for shorter ones, so a
// two- or three-character Chinese name is never revealed. The empty string
// masks to "".
func Mask(s string) string {
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0:
		return ""
	case n <= 4:
		return "***"
	}
	_, a := utf8.DecodeRuneInString(s)
	_, b := utf8.DecodeRuneInString(s[a:])
	return s[:a+b] + "***"
}

// MaskLen returns Mask(s) with the value's length in characters, e.g.
// "HC***(len 11)", for logs that need to tell values apart.
func MaskLen(s string) string {
	return fmt.Sprintf("%s(len %d)", Mask(s), utf8.RuneCountInString(s))
}
