// Package signing computes the request signatures of health-code platforms: the string that
// is signed (the canonical six lines, the sorted k=v& parameters, or a template), the digest
// or signature over it (HMAC-SHA256, HMAC-SM3, MD5, SHA-256, SM3, SM2 with SM3) and its
// encoding (hex, upper-case hex, base64). It holds no state and does no I/O; verify's
// mapping says which pieces a platform uses (docs/docking-spec.md, "Signing").
package signing
