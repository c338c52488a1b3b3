// Package inputs reads the safety and control inputs of a lane: the exit button, the door or
// barrier-position sensor, the fire-alarm contact and the tamper switch. Each is a GPIO line
// (periph's gpio.PinIn) watched with edge detection and debounced; a change is reported only
// once the line has been quiet for the debounce time. A line that chatters (a loose wire, a
// flood of edges) is counted and logged once per burst, never per edge.
package inputs
