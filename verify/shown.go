package verify

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// What a platform sends goes into errors, logs, a tool's output and, for the request id,
// every record and audit row. A hostile or broken platform can put a name or an ID number in
// any field, so values are shown only when they cannot carry personal data.

// maxShown is the longest platform value shown in clear: longer than any result code.
const maxShown = 32

// shown quotes raw, a value a platform sent, for an error or a tool's output when it cannot
// carry personal data: at most maxShown characters of printable ASCII without a run of 15
// or more digits (an ID number, old or new). Anything else is described by its length.
func shown(raw string) string {
	if len(raw) <= maxShown && printableASCII(raw, true) && longestDigitRun(raw) < 15 {
		return fmt.Sprintf("%q", raw)
	}
	return fmt.Sprintf("(%d characters, not shown: it may hold personal data)", len([]rune(raw)))
}

// shownValue is shown for a field's value in a tool's reading of an answer (check, try):
// there a health code or a result may be written in Chinese ("绿色"), and the engineer
// needs to see it to map it, so printable text of any script is shown; it still hides
// anything longer than maxShown characters or with an ID number's run of digits. The
// daemon's own errors and logs use shown.
func shownValue(raw string) string {
	if utf8.RuneCountInString(raw) <= maxShown && longestDigitRun(raw) < 15 && !strings.ContainsFunc(raw, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return fmt.Sprintf("%q", raw)
	}
	return shown(raw)
}

// maxRequestID bounds a platform's request id: longer than any trace or snowflake id.
const maxRequestID = 128

// errRequestID is a request id the unit will not store.
var errRequestID = errors.New("request id refused")

// checkRequestID accepts a platform's request id for the records: at most maxRequestID
// characters of printable ASCII without white space, and no valid resident ID number in it
// (a snowflake id of 18 digits passes: it is not one, but for about one in 16,000).
func checkRequestID(id string) error {
	switch {
	case len(id) > maxRequestID:
		return fmt.Errorf("%w: %d bytes, at most %d", errRequestID, len(id), maxRequestID)
	case !printableASCII(id, false):
		return fmt.Errorf("%w: not printable ASCII without spaces (%d bytes)", errRequestID, len(id))
	case holdsIDNumber(id):
		return fmt.Errorf("%w: it holds a resident ID number", errRequestID)
	}
	return nil
}

// cleanRequestID is checkRequestID for a best-effort read (an error answer, a header): a
// request id the unit will not store is dropped.
func cleanRequestID(id string) string {
	if checkRequestID(id) != nil {
		return ""
	}
	return id
}

// printableASCII reports whether s is printable ASCII; space is allowed when spaces is set.
func printableASCII(s string, spaces bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > '~' || c < ' ' || (c == ' ' && !spaces) {
			return false
		}
	}
	return true
}

func longestDigitRun(s string) int {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// holdsIDNumber reports whether s holds a valid resident ID number (GB 11643) that is not
// part of a longer run of digits.
func holdsIDNumber(s string) bool {
	isDigit := func(i int) bool { return i >= 0 && i < len(s) && s[i] >= '0' && s[i] <= '9' }
	for i := 0; i+18 <= len(s); i++ {
		if isDigit(i-1) || isDigit(i+18) {
			continue
		}
		if CheckIDNumber(s[i:i+18], time.Time{}) == nil {
			return true
		}
	}
	return false
}
