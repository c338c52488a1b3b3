package screen

import (
	"os"
	"strings"
	"testing"
)

// A face-only unit whose camera is offline says so, instead of asking the person to look at
// a camera that cannot see them: to see the staff, or to use the card where the unit has one.
// Back online, the prompt is the face's again.
func TestUnitCameraOffline(t *testing.T) {
	offline := map[string]string{"camera": "offline"}
	u := Unit{Platform: "online", Accepts: []string{KindFaceAlone}, Readers: offline}.withNotices()
	if u.CameraNote == nil || !strings.Contains(u.CameraNote.Person.EN, "cannot see you") || !strings.Contains(u.CameraNote.Person.EN, "staff") || u.CameraNote.Staff.EN == "" {
		t.Errorf("face-only, camera offline: notice %+v", u.CameraNote)
	}
	if len(u.Prompt) != 0 {
		t.Errorf("face-only, camera offline: still asks %+v", u.Prompt)
	}
	u = Unit{Platform: "online", Accepts: []string{KindFaceAlone, KindIDCard}, Readers: offline}.withNotices()
	if u.CameraNote == nil || !strings.Contains(u.CameraNote.Person.EN, "ID card") {
		t.Errorf("face and card, camera offline: notice %+v", u.CameraNote)
	}
	if len(u.Prompt) != 1 || !strings.Contains(u.Prompt[0].EN, "ID card") {
		t.Errorf("face and card, camera offline: prompt %+v, want the card's alone", u.Prompt)
	}
	u = Unit{Platform: "online", Accepts: []string{KindFaceAlone}, Readers: map[string]string{"camera": "online"}}.withNotices()
	if u.CameraNote != nil || len(u.Prompt) != 1 || !strings.Contains(u.Prompt[0].EN, "pass by face") {
		t.Errorf("camera online: notice %+v, prompt %+v", u.CameraNote, u.Prompt)
	}
	page, err := os.ReadFile("page.html")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "unit.camera_notice") {
		t.Error("the page does not show camera_notice")
	}
}
