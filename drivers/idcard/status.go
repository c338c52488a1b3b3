package idcard

import (
	"errors"
	"fmt"
)

// Status is the SW3 byte of a response.
type Status byte

// SW3 status codes.
const (
	StatusOK            Status = 0x90
	StatusFound         Status = 0x9F
	StatusChecksum      Status = 0x10
	StatusLength        Status = 0x11
	StatusCommand       Status = 0x21
	StatusUnauthorised  Status = 0x23
	StatusUnrecoverable Status = 0x24
	StatusCardAuthSAM   Status = 0x31
	StatusSAMAuthCard   Status = 0x32
	StatusVerify        Status = 0x33
	StatusCardType      Status = 0x40
	StatusReadFailed    Status = 0x41
	StatusAddress       Status = 0x47
	StatusSelfTest      Status = 0x60
	StatusNotAuthorised Status = 0x66
	StatusNoCard        Status = 0x80
	StatusSelectFailed  Status = 0x81
)

var statusText = map[Status]string{
	StatusOK:            "success",
	StatusFound:         "card found",
	StatusChecksum:      "checksum error",
	StatusLength:        "length error",
	StatusCommand:       "command error",
	StatusUnauthorised:  "unauthorised operation",
	StatusUnrecoverable: "cannot recover error",
	StatusCardAuthSAM:   "card authentication of SAM failed",
	StatusSAMAuthCard:   "SAM authentication of card failed",
	StatusVerify:        "information verification error",
	StatusCardType:      "unknown card type",
	StatusReadFailed:    "read card failed",
	StatusAddress:       "address or length error",
	StatusSelfTest:      "SAM self-test failed",
	StatusNotAuthorised: "SAM not authorised",
	StatusNoCard:        "no card",
	StatusSelectFailed:  "select card failed",
}

func (s Status) String() string {
	if t, ok := statusText[s]; ok {
		return fmt.Sprintf("%02X (%s)", byte(s), t)
	}
	return fmt.Sprintf("%02X (unknown status)", byte(s))
}

// ErrStatus is matched by every *StatusError.
var ErrStatus = errors.New("idcard: reader status")

// StatusError is a reply whose SW3 is not the success the command expects.
type StatusError struct {
	Cmd    [2]byte
	Status Status
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("idcard: command %02X %02X: status %s", e.Cmd[0], e.Cmd[1], e.Status)
}

// Is makes errors.Is(err, ErrStatus) true.
func (e *StatusError) Is(target error) bool { return target == ErrStatus }

// samFault says whether a status points at the SAM module rather than the card: the
// supervisor resets the SAM for these.
func samFault(s Status) bool {
	switch s {
	case StatusUnrecoverable, StatusSelfTest, StatusNotAuthorised, StatusCardAuthSAM:
		return true
	}
	return false
}
