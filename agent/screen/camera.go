package screen

import "slices"

// The notices of a face-only unit (KindFaceAlone) whose camera is offline: it cannot see
// the person, so it stops asking them to look at it.
var (
	// CameraOffline is shown when the face was the only way in.
	CameraOffline = Message{
		Person: Text{"摄像头暂时无法使用，本机看不到您：请找工作人员", "The camera is not working: this unit cannot see you. Please see the staff."},
		Staff:  Text{"摄像头离线：请人工查验，并检查摄像头的连线和设置", "Camera offline: check people by hand, and check the camera's cable and settings."},
	}
	// CameraOfflineOther is shown when the unit has another way in: its Person is followed
	// by the first way left (the prompt keeps them all).
	CameraOfflineOther = Message{
		Person: Text{"摄像头暂时无法使用，不能刷脸通行：", "The camera is not working, so passing by face is not possible: "},
		Staff:  Text{"摄像头离线：刷脸通行暂停，请检查摄像头的连线和设置", "Camera offline: face passages are paused. Check the camera's cable and settings."},
	}
)

// withCamera drops the face-only prompt and sets the camera notice while the camera (the
// reader "camera") is offline on a unit that asks for the face alone.
func (u Unit) withCamera() Unit {
	u.CameraNote = nil
	if u.Readers[readerCamera] != readerOffline || !slices.Contains(u.Accepts, KindFaceAlone) {
		return u
	}
	rest := slices.DeleteFunc(slices.Clone(u.Accepts), func(k string) bool { return k == KindFaceAlone })
	u.Prompt = IdlePrompt(rest)
	m := CameraOffline
	if len(u.Prompt) > 0 {
		// The way left, said to the person: "...: place your ID card on the reader."
		m = CameraOfflineOther
		m.Person = Text{m.Person.ZH + u.Prompt[0].ZH, m.Person.EN + lowerFirst(u.Prompt[0].EN) + "."}
	}
	u.CameraNote = &m
	return u
}

// The status's names for the camera reader and its offline state (record.SourceCamera,
// record.ReaderOffline).
const (
	readerCamera  = "camera"
	readerOffline = "offline"
)
