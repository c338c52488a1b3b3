// Package secretfile reads the small files that hold a unit's secrets (the platform's signing
// secret, the broker password, TLS and hash keys) and the public material beside them (a
// certificate, the platform's public key), safely:
//
//   - the file is opened without blocking (O_NONBLOCK, O_NOCTTY; Go adds O_CLOEXEC), so a
//     FIFO or a terminal named by mistake cannot hang start-up;
//   - it must be a regular file, checked before and after opening (a device such as
//     /dev/zero, a FIFO, a socket or a directory is refused);
//   - it is bounded: a file larger than Options.MaxSize (DefaultMaxSize) is refused, and at
//     most that many bytes plus one are ever read;
//   - a secret must not be readable, writable or executable by group or others (mode & 0o077,
//     as ssh requires of private keys): the error says which chmod to run. Public material
//     (Options.Public) may be group- or world-readable.
//
// Errors are *Error values that wrap a package sentinel (ErrNotRegular, ErrTooLarge,
// ErrTooOpen, ErrEmpty, ErrRead) and name the config key and the path; they never quote the
// content.
//
// Two readings cover the code base: ReadSecret (the whole file, surrounding white space
// trimmed, as platform.secret_file is read) and ReadLine (the first line without its line
// end, as a user name or password is read); Read returns the bounded bytes as they are.
package secretfile
