// Package privacy holds the rules for personal data: the masks (what of an ID number, a name
// or a QR token may appear in a record, a log line or an error), the sealing of the full
// identity to the platform's X25519 public key (an anonymous NaCl box that only the platform
// opens), and the keyed look-up hash under a device-local key. Everything that leaves the
// process goes through it.
package privacy
