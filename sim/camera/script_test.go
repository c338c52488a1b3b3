package camera

import (
	"errors"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseScript(t *testing.T) {
	dir := t.TempDir()
	b, err := EncodeJPEG(image.NewGray(image.Rect(0, 0, 8, 8)), 80)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(dir, "a.jpg"), b, 0o600)
	_ = os.WriteFile(filepath.Join(dir, "bad.jpg"), []byte("\xff\xd8 nope"), 0o600)
	ok := "# scene\na.jpg 1\n\n!drop\n!stall 500ms\n!corrupt\n!huge 1000\n!garbage 0.5\na.jpg 2.5\n"
	s, err := ParseScript(strings.NewReader(ok), "ok", dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Steps) != 7 || s.Total() != 4500*time.Millisecond || s.Steps[4].Bytes != 1000 {
		t.Errorf("steps %+v, total %v", s.Steps, s.Total())
	}
	srv := NewServer(s, Options{})
	if st := srv.at(0); st.Kind != KindImage {
		t.Errorf("at 0: %s", st.Kind)
	}
	if st := srv.at(1200 * time.Millisecond); st.Kind != KindStall {
		t.Errorf("at 1.2 s: %s", st.Kind)
	}
	if st := srv.at(time.Hour); st.Kind != KindImage {
		t.Errorf("after the end: %s, want the last image held", st.Kind)
	}
	if ev := srv.events(900*time.Millisecond, 1100*time.Millisecond); len(ev) != 1 || ev[0].Kind != KindDrop {
		t.Errorf("events around 1 s: %v", ev)
	}
	bad := []struct{ script, want string }{
		{"a.jpg\n", "want IMAGE SECONDS"},
		{"a.jpg zero\n", "want seconds"},
		{"a.jpg -1\n", "must be > 0"},
		{"missing.jpg 1\n", "missing.jpg"},
		{"bad.jpg 1\n", "bad.jpg"},
		{"a.jpg 1\n!explode\n", "unknown directive"},
		{"a.jpg 1\n!huge lots\n", "!huge wants"},
		{"a.jpg 1\n!drop now\n", "takes no argument"},
		{"!drop\n", "no image step"},
	}
	for _, tt := range bad {
		if _, err := ParseScript(strings.NewReader(tt.script), "s.txt", dir); !errors.Is(err, ErrScript) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.script, err, tt.want)
		}
	}
}
