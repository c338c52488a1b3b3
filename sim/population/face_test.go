package population

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const headerFace = "id_number,name,health_code,nat_result,nat_sampled_at,vaccine_doses,qr_token,face_image\n"

// The face_image column is optional; with it, Load makes relative paths relative to the
// file's folder, and WriteCSV writes it back.
func TestFaceImageColumn(t *testing.T) {
	dir := t.TempDir()
	in := headerFace +
		strings.TrimSuffix(rowA, "\n") + ",faces/a.png\n" +
		strings.TrimSuffix(rowB, "\n") + ",\n" +
		strings.TrimSuffix(rowC, "\n") + ",/abs/c.jpg\n"
	p := filepath.Join(dir, "people.csv")
	if err := os.WriteFile(p, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	pop, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	people := pop.People()
	if got := people[0].FaceImage; got != filepath.Join(dir, "faces/a.png") {
		t.Errorf("relative face_image: %q", got)
	}
	if people[1].FaceImage != "" || people[2].FaceImage != "/abs/c.jpg" {
		t.Errorf("face images %q, %q", people[1].FaceImage, people[2].FaceImage)
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, people); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), headerFace) {
		t.Errorf("written header %q", strings.SplitN(buf.String(), "\n", 2)[0])
	}
	again, err := Parse(&buf, "again.csv")
	if err != nil || again.People()[2].FaceImage != "/abs/c.jpg" {
		t.Fatalf("round trip: %v", err)
	}
	// Without anyone's face the old seven columns are written, as before.
	buf.Reset()
	for i := range people {
		people[i].FaceImage = ""
	}
	if err := WriteCSV(&buf, people); err != nil || !strings.HasPrefix(buf.String(), header) {
		t.Errorf("header without faces %q (%v)", strings.SplitN(buf.String(), "\n", 2)[0], err)
	}
	// A row must have as many fields as the header says.
	if _, err := Parse(strings.NewReader(headerFace+rowA), "short.csv"); !errors.Is(err, ErrBadCSV) {
		t.Errorf("a seven-field row under an eight-column header: %v", err)
	}
	if _, err := Parse(strings.NewReader(strings.Replace(headerFace, "face_image", "photo", 1)+rowA), "bad.csv"); !errors.Is(err, ErrBadHeader) {
		t.Errorf("a wrong eighth column: %v", err)
	}
}
