// Package idcard drives second-generation resident ID-card readers built on the
// public-security SAM module, over their framed serial protocol:
//
//	AA AA AA 96 69 | LEN (2 bytes, big-endian) | CMD PARA | DATA | CHK
//
// where LEN counts every byte after itself and CHK is the XOR of every byte after the
// preamble. The driver polls for a card (find 20 01, select 20 02, read 30 01), parses the
// 256-byte UCS-2LE text block, keeps the 1,024-byte WLT photo opaque (its decoder is
// licensed; see PhotoDecoder), supervises the SAM with a status check (11 FF) and a reset
// (10 FF) on failure, and reopens the port with backoff when the reader is unplugged.
//
// A card carries personal data: the driver never logs it; Info masks itself in logs.
package idcard
