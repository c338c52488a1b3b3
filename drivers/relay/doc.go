// Package relay drives the barrier relay on a GPIO line (periph's gpio.PinOut). The relay is
// de-energised when it is created, when a pulse ends, on Halt and on every error path: a
// pulse-driven barrier closes by itself when the agent stops, and an agent that never started
// never opens it.
//
// Besides pulses, the relay can be held energised without a time bound (Hold/Release, counted,
// for the fire alarm and the always-open mode) and a pulse can be ended early (EndPulse, for
// barrier.mode hold once the door sensor saw the person through).
package relay
