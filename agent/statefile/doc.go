// Package statefile keeps a unit's small state files (the gate mode, the command nonces, the
// last selftest): each lives in the state directory beside the queue's database, is written
// atomically (temp file, fsync, rename, fsync of the directory) so that a crash leaves the old
// file or the new, never a torn one, and a corrupt one is moved aside for a post-mortem, never
// overwritten.
package statefile
