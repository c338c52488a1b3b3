// Package face is the face side of a passage: the face check of an ID-card read
// (camera.verify: a snapshot goes to the platform's 1:1 face verification with the card's ID
// number, and the face decides). The snapshot lives for the passage only; the pipeline zeroes
// it once the record is stored, and it is stored at all only with camera.keep: sealed, inside
// the record's sealed subject (docs/drivers.md, "Face verification").
package face
