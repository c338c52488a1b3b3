// Package privacy holds the masking rules for personal data: what of an ID number, a name or a
// QR token may appear in a record, a log line or an error. Everything that leaves the process
// goes through it.
package privacy
