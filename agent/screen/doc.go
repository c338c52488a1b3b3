// Package screen serves the verdict screen: one page, shown full-screen by the unit's kiosk
// browser, that shows each passage's verdict large (pass or deny, the reason in Chinese and
// English, the masked subject, health-code colour, sampling time) and, between passages, an
// idle screen with the venue, the time and the unit's state. Updates are pushed with
// Server-Sent Events.
//
// The server knows only what it is given (Show, SetUnit): it holds no credential, calls
// nothing, and answers only GET on /, /state and /events. It never blocks its caller: a
// browser that cannot keep up is disconnected and counted.
package screen
