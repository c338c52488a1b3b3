// Package card simulates a second-generation ID-card reader (a SAM module) on a serial
// port: it reads request frames and answers find, select, read, status and reset as the
// real module does, serving the card that currently lies on the reader. A card is made from
// a population row (ID number and name; sex, birth date from the ID number; a synthetic
// address and issuer).
//
// Faults can be injected into the replies: bad checksums, wrong lengths, fragmented frames,
// noise between frames, a failing SAM, and silence. A script can lay cards on the reader,
// take them off and inject faults over time.
//
// Cards hold personal data: they are logged only masked.
package card
