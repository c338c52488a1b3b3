package facedetect_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentinel-edge/sentinel/drivers/facedetect"
)

func TestCheckCascade(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "none.xml"), "no such file"},
		{"a directory", dir, "not a regular file"},
		{"not XML", write("garbage.xml", "\x00\x01 not xml <<<"), "not well-formed"},
		{"cut XML", write("cut.xml", "<opencv_storage><cascade><stageType>LBP</stage"), "not well-formed"},
		{"other XML", write("other.xml", "<opencv_storage><svm></svm></opencv_storage>"), "not an OpenCV cascade"},
		{"HTML", write("page.xml", "<html><body>hi</body></html>"), "not an OpenCV cascade"},
	}
	for _, tt := range tests {
		err := facedetect.CheckCascade(tt.path)
		if !errors.Is(err, facedetect.ErrCascade) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
			t.Errorf("%s: %v, want %q naming the file", tt.name, err, tt.want)
		}
	}
	ok := write("ok.xml", `<?xml version="1.0"?><opencv_storage><cascade><stageType>LBP</stageType></cascade></opencv_storage>`)
	if err := facedetect.CheckCascade(ok); err != nil {
		t.Errorf("a cascade-shaped file: %v", err)
	}
	if _, err := os.Stat(facedetect.DefaultCascade); err == nil {
		if err := facedetect.CheckCascade(facedetect.DefaultCascade); err != nil {
			t.Errorf("Debian's cascade: %v", err)
		}
	}
}
