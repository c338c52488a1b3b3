package agent

import (
	"testing"

	"github.com/sentinel-edge/sentinel/agent/record"
)

// The face trigger is held after a passage by card (alone or with its 1:1 face check), not
// after its own face-only passages or a QR scan.
func TestByCard(t *testing.T) {
	for _, tt := range []struct {
		r    record.Passage
		want bool
	}{
		{record.Passage{Credential: "idcard"}, true},
		{record.Passage{Credential: "face", Face: &record.FaceCheck{Check: record.FaceCheckCard}}, true},
		{record.Passage{Credential: "face", Face: &record.FaceCheck{Check: record.FaceCheckSearch}}, false},
		{record.Passage{Credential: "qr"}, false},
	} {
		if got := byCard(tt.r); got != tt.want {
			t.Errorf("byCard(%s, %+v) = %v", tt.r.Credential, tt.r.Face, got)
		}
	}
}
