// Package secretfiletest makes the hostile files that tests of secret-file readers need (a
// FIFO, a file of a given mode) and runs a read under a deadline, so that a reader that
// blocks fails its test instead of hanging it.
package secretfiletest
