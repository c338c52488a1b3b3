package privacy

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaskID keeps the first 4 and last 4 characters of a resident ID number (15 or 18
// characters) and puts one '*' for each character between: 350582199001011237 →
// 3505**********1237. A shorter document number (a passport, a permit) keeps only 2 at each
// end, so that most of it stays hidden: E12345678 → E1*****78; fewer than 8 characters are
// masked whole.
func MaskID(id string) string {
	r := []rune(id)
	keep := 4
	switch {
	case len(r) < 8:
		return strings.Repeat("*", len(r))
	case len(r) < 15:
		keep = 2
	}
	return string(r[:keep]) + strings.Repeat("*", len(r)-2*keep) + string(r[len(r)-keep:])
}

// MaskName keeps the first character of a name and replaces the rest by a single '*':
// 张三丰 → 张*. An empty name stays empty.
func MaskName(name string) string {
	if name == "" {
		return ""
	}
	r, _ := utf8.DecodeRuneInString(name)
	return string(r) + "*"
}

// MaskToken shows only the length of a QR token, which is a bearer credential: tok(12).
func MaskToken(tok string) string {
	return "tok(" + strconv.Itoa(len(tok)) + ")"
}
