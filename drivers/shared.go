package drivers

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.bug.st/serial"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// Errors shared by the drivers.
var (
	// ErrDisconnected is returned when a device went away (unplugged, port closed).
	ErrDisconnected = errors.New("drivers: device disconnected")
	// ErrNoPin is returned for a GPIO line this machine does not have.
	ErrNoPin = errors.New("drivers: no such GPIO line")
)

// OpenSerial opens a serial device at baud, 8N1. A port that is missing or closed maps to
// ErrDisconnected, so drivers treat it as unplugged and retry.
func OpenSerial(path string, baud int) (serial.Port, error) {
	p, err := serial.Open(path, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		return nil, MapSerialErr(err)
	}
	return p, nil
}

// MapSerialErr maps go.bug.st/serial's "not found" and "closed" to ErrDisconnected.
func MapSerialErr(err error) error {
	var pe *serial.PortError
	if errors.As(err, &pe) && (pe.Code() == serial.PortNotFound || pe.Code() == serial.PortClosed) {
		return fmt.Errorf("%w: %v", ErrDisconnected, err)
	}
	return err
}

// LookupPin initialises periph's host drivers and finds the GPIO line called name (e.g.
// GPIO17). A missing line is ErrNoPin, with the lines the machine has.
func LookupPin(name string) (gpio.PinIO, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("drivers: init GPIO host drivers: %w", err)
	}
	p := gpioreg.ByName(name)
	if p == nil {
		var names []string
		for _, q := range gpioreg.All() {
			names = append(names, q.Name())
		}
		sort.Strings(names)
		avail := "none: this machine has no GPIO lines"
		if len(names) > 0 {
			avail = strings.Join(names, ", ")
		}
		return nil, fmt.Errorf("%w %q (available: %s)", ErrNoPin, name, avail)
	}
	return p, nil
}
