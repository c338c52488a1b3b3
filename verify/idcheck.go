package verify

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidID is returned by CheckIDNumber. Its messages give positions and lengths, never
// the digits.
var ErrInvalidID = errors.New("verify: invalid ID number")

// idWeights are the GB 11643-1999 weights of the first 17 digits: 2^(17-i) mod 11.
var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// idCheckChars maps the weighted sum mod 11 to the check character.
const idCheckChars = "10X98765432"

// idEarliestBirth bounds the birth date of an ID number from below.
var idEarliestBirth = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

// CheckIDNumber checks a resident ID number (GB 11643-1999) before any call: 18 characters,
// 17 digits then a digit or 'X' ('x' is accepted and means 'X'), a first digit that is not 0,
// a birth date (characters 7-14) that exists and is not after now, and the check character.
// The error names what is wrong by position, never by value.
func CheckIDNumber(id string, now time.Time) error {
	if len(id) != 18 {
		return fmt.Errorf("%w: want 18 characters, got %d bytes", ErrInvalidID, len(id))
	}
	sum := 0
	for i := 0; i < 17; i++ {
		c := id[i]
		if c < '0' || c > '9' {
			return fmt.Errorf("%w: character %d is not a digit", ErrInvalidID, i+1)
		}
		sum += int(c-'0') * idWeights[i]
	}
	if id[0] == '0' {
		return fmt.Errorf("%w: the area code starts with 0", ErrInvalidID)
	}
	last := id[17]
	if last == 'x' {
		last = 'X'
	}
	if (last < '0' || last > '9') && last != 'X' {
		return fmt.Errorf("%w: character 18 is neither a digit nor X", ErrInvalidID)
	}
	birth, err := time.Parse("20060102", id[6:14])
	if err != nil {
		return fmt.Errorf("%w: characters 7-14 are not a date", ErrInvalidID)
	}
	if birth.Before(idEarliestBirth) || (!now.IsZero() && birth.After(now)) {
		return fmt.Errorf("%w: the birth date is out of range", ErrInvalidID)
	}
	if idCheckChars[sum%11] != last {
		return fmt.Errorf("%w: the check character does not match", ErrInvalidID)
	}
	return nil
}

// NormalizeIDNumber returns id with a final 'x' written 'X'.
func NormalizeIDNumber(id string) string {
	if len(id) == 18 && id[17] == 'x' {
		return id[:17] + "X"
	}
	return id
}
