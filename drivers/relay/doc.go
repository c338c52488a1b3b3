// Package relay drives the barrier relay on a GPIO line (periph's gpio.PinOut). The relay is
// de-energised when it is created, when a pulse ends, on Halt and on every error path: a
// pulse-driven barrier closes by itself when the agent stops, and an agent that never started
// never opens it.
package relay
