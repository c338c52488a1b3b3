// Package facetrack turns camera frames into face crops to search, one per person: it
// gates each detected face on quality (large enough, inside the frame, lit, sharp), tracks
// faces across frames by the overlap of their boxes so that a person standing in view
// triggers once, takes the best of the first few good frames, crops it with a margin and
// encodes it as JPEG. It also says what the screen should tell the person (no face, come
// closer, look at the camera, hold still, more light).
//
// It is pure Go and knows no detector: the face boxes come from a Detector (drivers/facedetect
// with the opencv build tag). Without a detector, the presence mode takes the best of a few
// frames after a presence sensor fires.
//
// Time is the frames' own: nothing here reads the clock, so tests feed frames with the times
// they want. Frames and crops are personal data: nothing here logs or stores them, and the
// decoded frames are zeroed once used.
package facetrack
