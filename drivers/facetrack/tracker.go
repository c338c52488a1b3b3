package facetrack

import (
	"image"
	"image/draw"
	"time"
)

// Options tune a Tracker. Zero values take the defaults.
type Options struct {
	Gates
	// Rearm: a face unseen this long has left the view (camera.rearm, default 2s); the
	// next face there is a new person and triggers again.
	Rearm time.Duration
	// Retrigger: a person still in view triggers again this long after the last trigger
	// (camera.retrigger); 0 (the default) never.
	Retrigger time.Duration
	// BestOf is how many good frames are compared before the crop is taken (default 3) ...
	BestOf int
	// ... or how long after the first good frame, whichever comes first (default 400ms).
	BestWithin time.Duration
	// MinIoU is the box overlap (intersection over union) that makes a face in a new frame
	// the same as one in the previous frames (default 0.3).
	MinIoU float64
	// Margin widens the crop by this fraction of the face box on every side (default 0.3).
	Margin float64
	// MaxCrop: a crop larger than this many pixels on its longer side is scaled down
	// (default 480).
	MaxCrop int
	// JPEGQuality of the crop (default 90).
	JPEGQuality int
}

func (o Options) withDefaults() Options {
	o.Gates = o.Gates.withDefaults()
	if o.Rearm <= 0 {
		o.Rearm = 2 * time.Second
	}
	if o.Retrigger < 0 {
		o.Retrigger = 0
	}
	if o.BestOf <= 0 {
		o.BestOf = 3
	}
	if o.BestWithin <= 0 {
		o.BestWithin = 400 * time.Millisecond
	}
	if o.MinIoU <= 0 || o.MinIoU > 1 {
		o.MinIoU = 0.3
	}
	if o.Margin < 0 {
		o.Margin = 0
	} else if o.Margin == 0 {
		o.Margin = 0.3
	}
	if o.MaxCrop <= 0 {
		o.MaxCrop = 480
	}
	if o.JPEGQuality <= 0 || o.JPEGQuality > 100 {
		o.JPEGQuality = 90
	}
	return o
}

// candidate is a good frame of a face, kept (its crop only) until the best one is chosen.
type candidate struct {
	crop    *image.RGBA // the face with its margin, copied out of the frame
	box     image.Rectangle
	quality Quality
	at      time.Time
	score   float64
}

// track is one face followed across frames.
type track struct {
	id        uint64
	box       image.Rectangle
	firstSeen time.Time
	lastSeen  time.Time
	triggered time.Time // zero until it triggered
	window    time.Time // when its first good frame (since the last trigger) came; zero: none yet
	good      int       // good frames since window
	best      *candidate
}

// Tracker follows faces across frames and decides when one triggers a search. Not safe for
// concurrent use: feed it from one goroutine.
type Tracker struct {
	opts   Options
	tracks []*track
	nextID uint64
	// holdUntil: a face first seen before it counts as already searched (Hold).
	holdUntil time.Time
}

// NewTracker returns a tracker with opts.
func NewTracker(opts Options) *Tracker {
	return &Tracker{opts: opts.withDefaults()}
}

// Observation is what the tracker made of one frame.
type Observation struct {
	Hint    Hint
	Faces   int      // faces detected
	Subject *Quality // the largest face's quality; nil when there is none
	// Take, when set, is the chosen frame's crop for a search (Watcher encodes it).
	Take *Chosen
}

// Chosen is the best frame of a face, cropped.
type Chosen struct {
	Track   uint64
	Crop    *image.RGBA     // the face with the margin, in frame coordinates (Crop.Rect)
	Box     image.Rectangle // the face box, frame coordinates
	Quality Quality
	At      time.Time // when the chosen frame was taken
}

// IoU is the intersection over union of two boxes.
func IoU(a, b image.Rectangle) float64 {
	in := a.Intersect(b)
	if in.Empty() {
		return 0
	}
	ia := float64(in.Dx() * in.Dy())
	u := float64(a.Dx()*a.Dy()+b.Dx()*b.Dy()) - ia
	return ia / u
}

// Observe feeds one frame taken at at: the decoded frame, its grayscale view and the faces
// found in it, largest first. Only the largest face (the person at the unit) can trigger.
func (t *Tracker) Observe(at time.Time, img image.Image, gray *image.Gray, faces []image.Rectangle) Observation {
	t.expire(at)
	obs := Observation{Faces: len(faces), Hint: HintNoFace}
	matched := make(map[*track]bool, len(faces))
	var subject *track
	for i, box := range faces {
		tr := t.match(box, matched)
		if tr == nil {
			t.nextID++
			tr = &track{id: t.nextID, firstSeen: at}
			if at.Before(t.holdUntil) {
				tr.triggered = at // held: this person was just let through another way
			}
			t.tracks = append(t.tracks, tr)
		}
		matched[tr] = true
		tr.box, tr.lastSeen = box, at
		if i == 0 {
			subject = tr
		}
	}
	if subject == nil {
		return obs
	}
	q := Measure(gray, subject.box)
	obs.Subject = &q
	obs.Hint = t.opts.Check(q)
	if !subject.triggered.IsZero() {
		if t.opts.Retrigger == 0 || at.Sub(subject.triggered) < t.opts.Retrigger {
			obs.Hint = HintNone // taken; the verdict is on the screen
			return obs
		}
		subject.triggered = time.Time{} // a new chance for a person still in view
	}
	if obs.Hint == HintNone {
		score := q.Sharpness * float64(q.Size)
		if subject.best == nil || score > subject.best.score {
			subject.dropBest() // a face crop: zeroed, not left to the collector
			subject.best = &candidate{crop: Crop(img, subject.box, t.opts.Margin), box: subject.box, quality: q, at: at, score: score}
		}
		if subject.window.IsZero() {
			subject.window = at
		}
		subject.good++
	}
	if subject.window.IsZero() {
		return obs
	}
	if subject.good >= t.opts.BestOf || at.Sub(subject.window) >= t.opts.BestWithin {
		c := subject.best
		subject.triggered, subject.window, subject.good, subject.best = at, time.Time{}, 0, nil
		obs.Take = &Chosen{Track: subject.id, Crop: c.crop, Box: c.box, Quality: c.quality, At: c.at}
		obs.Hint = HintNone
	}
	return obs
}

// dropBest zeroes and forgets the track's candidate crop.
func (tr *track) dropBest() {
	if tr.best != nil {
		clear(tr.best.crop.Pix)
		tr.best = nil
	}
}

// match returns the live, not yet matched track that overlaps box most, if enough.
func (t *Tracker) match(box image.Rectangle, matched map[*track]bool) *track {
	var best *track
	bestIoU := t.opts.MinIoU
	for _, tr := range t.tracks {
		if matched[tr] {
			continue
		}
		if v := IoU(box, tr.box); v >= bestIoU {
			best, bestIoU = tr, v
		}
	}
	return best
}

// expire drops the tracks unseen for Rearm: those people have left.
func (t *Tracker) expire(at time.Time) {
	kept := t.tracks[:0]
	for _, tr := range t.tracks {
		if at.Sub(tr.lastSeen) < t.opts.Rearm {
			kept = append(kept, tr)
		} else {
			tr.dropBest()
		}
	}
	clear(t.tracks[len(kept):])
	t.tracks = kept
}

// Crop copies the face at box out of img, widened by margin (a fraction of the box) on every
// side and clipped to the frame.
func Crop(img image.Image, box image.Rectangle, margin float64) *image.RGBA {
	mx, my := int(float64(box.Dx())*margin+0.5), int(float64(box.Dy())*margin+0.5)
	r := image.Rect(box.Min.X-mx, box.Min.Y-my, box.Max.X+mx, box.Max.Y+my).Intersect(img.Bounds())
	out := image.NewRGBA(r)
	draw.Draw(out, r, img, r.Min, draw.Src)
	return out
}

// Reset forgets every face in view: the next face triggers as a new person (for example
// once the barrier let the person through).
func (t *Tracker) Reset() {
	for _, tr := range t.tracks {
		tr.dropBest()
	}
	clear(t.tracks)
	t.tracks = t.tracks[:0]
}

// Hold counts every face in view at at, and every face that comes into view within d after,
// as already searched: they trigger again only after leaving the view for Rearm (or after
// Retrigger). It is for a passage made another way (an ID card read at the same unit), so
// that the person who just passed by card is not searched too.
func (t *Tracker) Hold(at time.Time, d time.Duration) {
	for _, tr := range t.tracks {
		tr.triggered, tr.window, tr.good = at, time.Time{}, 0
		tr.dropBest()
	}
	t.holdUntil = at.Add(d)
}

// InView is the number of faces being followed.
func (t *Tracker) InView() int { return len(t.tracks) }
