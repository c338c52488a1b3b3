// Package lane is one entrance lane's barrier and what moves it: the barrier relay, the
// inputs wired to the lane (exit button, door sensor, fire alarm, tamper), and the remote gate
// mode (normal, always_open, locked). Every opening goes through Open — a pass, the exit
// button, a remote open command — so that the door sensor knows each one was authorised and
// every pulse is bounded by barrier.max_pulse. The fire alarm holds the barrier open whatever
// else happens, with the database hung or not: the relay acts first and the event is recorded
// after (docs/drivers.md, docs/operations.md).
package lane
