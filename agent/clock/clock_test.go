package clock

import (
	"testing"
	"time"
)

func TestState(t *testing.T) {
	ks, wn := kernelSynced, wallNow
	t.Cleanup(func() { kernelSynced, wallNow = ks, wn })
	for _, tt := range []struct {
		name   string
		kernel bool
		year   int
		want   string
	}{
		{"synced", true, 2026, Synced},
		{"kernel unsynced", false, 2026, Unsynced},
		{"1970 though the kernel says synced", true, 1970, Unsynced},
		{"first trusted year", true, MinTrustedYear, Synced},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kernelSynced = func() bool { return tt.kernel }
			wallNow = func() time.Time { return time.Date(tt.year, 3, 1, 0, 0, 0, 0, time.UTC) }
			if got := State(); got != tt.want {
				t.Fatalf("State() = %q, want %q", got, tt.want)
			}
			if Trusted() != (tt.want == Synced) {
				t.Fatalf("Trusted() disagrees with State()")
			}
		})
	}
}
