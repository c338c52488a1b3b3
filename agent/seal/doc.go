// Package seal adds to a record's subject what only the platform may read: the full ID
// number and name (and, with camera.keep: sealed, the deciding face) sealed to the platform's
// public key, and a keyed look-up hash of the ID number that only this unit's key produces.
// Without a platform key, records carry masked fields only (docs/queue.md, "Personal data").
package seal
