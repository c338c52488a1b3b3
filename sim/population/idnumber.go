package population

import (
	"errors"
	"fmt"
	"time"
)

// ErrBadID reports an ID number that is not a well-formed GB 11643-1999 number.
var ErrBadID = errors.New("population: bad ID number")

// idWeights are the GB 11643-1999 weights of the first 17 digits (2^(18-i) mod 11).
var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// idCheckChars maps the weighted sum mod 11 to the check character.
const idCheckChars = "10X98765432"

// CheckChar returns the GB 11643-1999 check character ('0'-'9' or 'X') for the
// first 17 digits of a citizen ID number. The error never contains the digits.
func CheckChar(first17 string) (byte, error) {
	if len(first17) != 17 {
		return 0, fmt.Errorf("%w: want 17 digits, got %d characters", ErrBadID, len(first17))
	}
	sum := 0
	for i := 0; i < 17; i++ {
		c := first17[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: non-digit at position %d", ErrBadID, i+1)
		}
		sum += int(c-'0') * idWeights[i]
	}
	return idCheckChars[sum%11], nil
}

// ValidID reports whether id is an 18-character ID number whose check
// character is correct. A lower-case 'x' is not accepted.
func ValidID(id string) bool {
	if len(id) != 18 {
		return false
	}
	c, err := CheckChar(id[:17])
	return err == nil && id[17] == c
}

// wellFormedID reports whether id has the shape of an ID number (17 digits
// then a digit or 'X'), without checking the check character.
func wellFormedID(id string) bool {
	if len(id) != 18 {
		return false
	}
	for i := 0; i < 17; i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	last := id[17]
	return (last >= '0' && last <= '9') || last == 'X'
}

// NewID builds a valid ID number from a 6-digit area code, a birth date and a
// 3-digit sequence number (odd for men, even for women).
func NewID(area string, birth time.Time, seq int) (string, error) {
	if len(area) != 6 {
		return "", fmt.Errorf("%w: area code must have 6 digits, got %d characters", ErrBadID, len(area))
	}
	if seq < 0 || seq > 999 {
		return "", fmt.Errorf("%w: sequence must be 0..999, got %d", ErrBadID, seq)
	}
	first17 := fmt.Sprintf("%s%s%03d", area, birth.Format("20060102"), seq)
	c, err := CheckChar(first17)
	if err != nil {
		return "", err
	}
	return first17 + string(c), nil
}
