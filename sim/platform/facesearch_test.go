package platform_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/facetrack"
	simcam "github.com/sentinel-edge/sentinel/sim/camera"
	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
)

const (
	idAstronaut = "11010519491231002X"
	idMessi     = "350582199001011231"
	idNoPhoto   = "440305198001010013"
)

// The faces in the portraits (simcam.Portrait), in portrait pixels.
var portraitFace = map[string]image.Rectangle{
	"astronaut": image.Rect(79, 76, 151, 148),
	"messi":     image.Rect(31, 37, 72, 78),
}

func need(t testing.TB, name string) string {
	t.Helper()
	p, ok := simcam.TestImage(name)
	if !ok {
		platform.Missing(t, "test photo %s not installed (scripts/install-deps.sh face)", name)
	}
	return p
}

// unitCrop plays the unit: the person composed before a wall (a 640×480 frame, the portrait
// height tall), the face box found there (shifted by dx, dy and scaled by k, as a detector's
// box is never exact), cropped with the tracker's margin and encoded.
func unitCrop(t testing.TB, name string, height, dx, dy int, k float64) []byte {
	t.Helper()
	pt, ok, err := simcam.Portrait(name)
	if err != nil || !ok {
		platform.Missing(t, "test photo %s not installed (%v)", name, err)
	}
	bg, err := simcam.LoadImage(need(t, "brick"))
	if err != nil {
		t.Fatal(err)
	}
	scene := simcam.Person(bg, pt, 640, 480, height)
	pb := pt.Bounds()
	s := float64(height) / float64(pb.Dy())
	x0, y0 := (640-pb.Dx()*height/pb.Dy())/2, 480-height
	f := portraitFace[name]
	cx, cy := float64(x0)+s*float64(f.Min.X+f.Max.X)/2, float64(y0)+s*float64(f.Min.Y+f.Max.Y)/2
	half := s * float64(f.Dx()) * k / 2
	box := image.Rect(int(cx-half)+dx, int(cy-half)+dy, int(cx+half)+dx, int(cy+half)+dy)
	b, err := simcam.EncodeJPEG(facetrack.Crop(scene, box, 0.3), 90)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// enrol writes the enrolment photo of a named test photo into dir.
func enrol(t testing.TB, dir, name string) string {
	t.Helper()
	img, ok, err := simcam.EnrolPhoto(name)
	if err != nil || !ok {
		platform.Missing(t, "test photo %s not installed (%v)", name, err)
	}
	b, err := simcam.EncodeJPEG(img, 95)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".jpg")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// enrolledPlatform serves a population whose astronaut and messi have their photos enrolled.
func enrolledPlatform(t *testing.T) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	csv := "id_number,name,health_code,nat_result,nat_sampled_at,vaccine_doses,qr_token,face_image\n" +
		idAstronaut + ",张三,green,negative," + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + ",3,HC-A," + enrol(t, dir, "astronaut") + "\n" +
		idMessi + ",李四,yellow,,,0,HC-B," + enrol(t, dir, "messi") + "\n" +
		idNoPhoto + ",王五,green,,,0,HC-C,\n"
	p := filepath.Join(dir, "people.csv")
	if err := os.WriteFile(p, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	pop, err := population.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	srv := platform.NewServer(pop, platform.Options{})
	if err := srv.LoadFaces(); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs
}

type searchAnswer struct {
	status int
	platform.Answer
}

func search(t testing.TB, url string, img []byte) searchAnswer {
	t.Helper()
	body, _ := json.Marshal(platform.FaceSearchRequest{ImageJPEG: base64.StdEncoding.EncodeToString(img)})
	resp, err := http.Post(url+platform.PathFaceSearch, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a searchAnswer
	a.status = resp.StatusCode
	if err := json.NewDecoder(resp.Body).Decode(&a.Answer); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestFaceSearch(t *testing.T) {
	hs := enrolledPlatform(t)
	tests := []struct {
		name   string
		img    func() []byte
		want   string // ID number, or "" for not_found
		status int
	}{
		{"the astronaut at the unit", func() []byte { return unitCrop(t, "astronaut", 400, 0, 0, 1) }, idAstronaut, 200},
		{"the astronaut, box off by a few pixels", func() []byte { return unitCrop(t, "astronaut", 400, 6, -5, 1.1) }, idAstronaut, 200},
		{"the astronaut farther away", func() []byte { return unitCrop(t, "astronaut", 260, -3, 3, 0.92) }, idAstronaut, 200},
		{"messi at the unit", func() []byte { return unitCrop(t, "messi", 400, 2, 2, 1) }, idMessi, 200},
		{"a coffee cup", func() []byte {
			img, _ := simcam.LoadImage(need(t, "coffee"))
			b, _ := simcam.EncodeJPEG(facetrack.Crop(img, image.Rect(200, 100, 400, 300), 0.3), 90)
			return b
		}, "", 404},
		{"a face nobody enrolled", func() []byte {
			img, _ := simcam.LoadImage(need(t, "camera"))
			b, _ := simcam.EncodeJPEG(facetrack.Crop(img, image.Rect(180, 80, 260, 160), 0.3), 90)
			return b
		}, "", 404},
		{"a synthetic face names its person", func() []byte { return platform.FaceJPEG(idNoPhoto) }, idNoPhoto, 200},
		{"a synthetic face of nobody", func() []byte { return platform.FaceJPEG("110101190001010019") }, "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			a := search(t, hs.URL, tt.img())
			took := time.Since(start)
			if a.status != tt.status {
				t.Fatalf("HTTP %d %q, want %d", a.status, a.Code, tt.status)
			}
			if tt.want == "" {
				if a.Code != platform.CodeNotFound || a.Data != nil {
					t.Errorf("answer %+v, want not_found", a.Answer)
				}
				return
			}
			d := a.Data
			if d == nil || d.Identity.IDNumber != tt.want || !d.Identity.Match || d.Score == nil || *d.Score < platform.MatchThreshold || *d.Score > 1 {
				t.Fatalf("answer %+v, want %s with a score", a.Answer, tt.want)
			}
			t.Logf("score %.3f in %v", *d.Score, took)
		})
	}
}

// The scores: the same photograph scores high; another person's face stays below the
// threshold against every enrolled photo.
func TestFaceSearchScores(t *testing.T) {
	hs := enrolledPlatform(t)
	a := search(t, hs.URL, unitCrop(t, "astronaut", 400, 0, 0, 1))
	if a.Data == nil || *a.Data.Score < 0.9 {
		t.Errorf("the astronaut scores %v, want at least 0.9", a.Data)
	}
}

func TestFaceSearchBadRequests(t *testing.T) {
	hs := enrolledPlatform(t)
	for name, body := range map[string]string{
		"not JSON":        "{",
		"no image":        `{}`,
		"not base64":      `{"image_jpeg":"%%%"}`,
		"not a JPEG":      fmt.Sprintf(`{"image_jpeg":%q}`, base64.StdEncoding.EncodeToString([]byte("GIF89a"))),
		"an unknown type": `{"image_jpeg":5}`,
	} {
		resp, err := http.Post(hs.URL+platform.PathFaceSearch, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", name, resp.StatusCode)
		}
	}
	// A JPEG that is not a picture of anything decodable: not found, not a crash.
	if a := search(t, hs.URL, []byte{0xFF, 0xD8, 0xFF, 0xD9}); a.status != http.StatusNotFound {
		t.Errorf("an empty JPEG: HTTP %d", a.status)
	}
}

// A face_image that cannot be read fails LoadFaces, naming the file.
func TestFaceIndexBadPhoto(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "people.csv")
	_ = os.WriteFile(p, []byte("id_number,name,health_code,nat_result,nat_sampled_at,vaccine_doses,qr_token,face_image\n"+
		idAstronaut+",张三,green,,,0,,missing.png\n"), 0o600)
	pop, err := population.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	err = platform.NewServer(pop, platform.Options{}).LoadFaces()
	if err == nil || !strings.Contains(err.Error(), "missing.png") || strings.Contains(err.Error(), idAstronaut) {
		t.Errorf("LoadFaces: %v", err)
	}
}
