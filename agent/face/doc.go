// Package face is the face side of a passage, in two parts:
//
//   - Trigger, a pipeline source for face-only passages (camera.trigger detect or presence):
//     the camera's stream goes frame by frame to facetrack's watcher, and each person it
//     takes becomes a face credential without an ID number, which the platform's 1:N face
//     search decides (docking interface v3). Frames are zeroed once seen.
//   - CardCheck, the face check of an ID-card read (camera.verify): a snapshot goes to the
//     platform's 1:1 face verification with the card's ID number, and the face decides.
//
// A face picture lives for the passage only; the pipeline zeroes it once the record is
// stored, and it is stored at all only with camera.keep: sealed, inside the record's sealed
// subject (docs/drivers.md, "Face-only passages" and "Face verification").
package face
