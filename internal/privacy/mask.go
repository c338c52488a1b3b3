package privacy

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaskID keeps the first 4 and last 4 characters of an ID number and puts one '*' for each
// character between: 350582199001011237 → 3505**********1237. Shorter inputs are masked whole.
func MaskID(id string) string {
	r := []rune(id)
	if len(r) <= 8 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:4]) + strings.Repeat("*", len(r)-8) + string(r[len(r)-4:])
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
