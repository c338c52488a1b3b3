package screen

import "strings"

// Text is a message in plain Chinese and English.
type Text struct {
	ZH string `json:"zh"`
	EN string `json:"en"`
}

// Message is what the screen says about one outcome, to each of its two readers: the person
// at the lane (what happened, what to do now) and the staff beside it (what to check or do;
// empty when there is nothing for them to do). The page labels the staff's line "工作人员
// Staff", so a staff text never tells the staff to see the staff.
type Message struct {
	Person Text `json:"person"`
	Staff  Text `json:"staff"`
}

// Staff instructions several outcomes share.
var (
	staffCheckByHand    = Text{"请人工查验此人的健康码和身份证件", "Check this person's health code and ID by hand."}
	staffPlatformRetry  = Text{"若反复出现，请人工查验并报修", "If it happens again, check by hand and report the fault."}
	staffCheckCamera    = Text{"若反复出现，请检查摄像头的角度、光线和连线", "If it happens again, check the camera's angle, light and cable."}
	staffFollowRules    = Text{"请按本场所防疫规定处置", "Follow the venue's health rules for this person."}
	personWait          = "请稍候，工作人员将为您核验"
	personWaitEN        = "Please wait: the staff will check you."
	personCardAgainZH   = "，然后重新刷身份证"
	personCardAgainEN   = ", then place your ID card again."
	personFaceCameraZH  = "请正对摄像头"
	personFaceCameraEN  = "Face the camera"
	personDenyEntryZH   = "，不能通行"
	personDenyEntryEN   = ": entry not allowed."
	personCannotCheckZH = "本机暂时无法核验。"
	personCannotCheckEN = "This unit cannot check you now. "
)

func wait(zh, en string) Text { return Text{zh + "，" + personWait, en + " " + personWaitEN} }
func deny(zh, en string) Text { return Text{zh + personDenyEntryZH, en + personDenyEntryEN} }

// Reasons are the screen messages of every reason code (docs/reasons.md), for a passage by
// QR code or ID card. A test checks that every code verify knows has one. FaceReasons
// override them for a passage the face decided (credential face).
var Reasons = map[string]Message{
	"ok":                 {Person: Text{"核验通过，请通行", "Checked. Please go ahead."}},
	"malformed_scan":     {Person: Text{"二维码无法识别，请重新扫码", "The code could not be read. Please scan it again."}},
	"unknown_credential": {Person: wait("未查询到此码或证件的记录", "This code or ID is not on record."), Staff: staffCheckByHand},
	"platform_unreachable": {Person: wait("平台暂时无法连接", "The platform cannot be reached."),
		Staff: Text{"平台无法连接：请人工查验此人的健康码和身份证件", "The platform is offline: check this person's health code and ID by hand."}},
	"platform_error": {Person: wait("平台返回错误", "The platform returned an error."), Staff: staffPlatformRetry},
	"bad_response":   {Person: wait("平台应答无法使用", "The platform's answer could not be used."), Staff: staffPlatformRetry},
	"identity_mismatch": {Person: wait("姓名与证件号码不一致", "The name does not match the ID number on record."),
		Staff: Text{"请核对此人的身份证件", "Check this person's ID document."}},
	"health_code_green": {Person: deny("本场所当前不接受绿码", "This venue does not admit a green code now"),
		Staff: Text{"本场所策略不接受绿码：请确认 policy.health_codes 的设置", "The venue policy refuses green codes: check policy.health_codes."}},
	"health_code_yellow":  {Person: deny("健康码为黄码", "Health code is yellow"), Staff: staffFollowRules},
	"health_code_red":     {Person: deny("健康码为红码", "Health code is red"), Staff: staffFollowRules},
	"health_code_unknown": {Person: wait("健康码状态未知", "Health code status unknown."), Staff: Text{"请人工查验此人的健康码", "Check this person's health code by hand."}},
	"nat_missing":         {Person: deny("无核酸检测记录", "No nucleic-acid test on record")},
	"nat_positive":        {Person: deny("核酸检测结果为阳性", "The nucleic-acid test is positive"), Staff: staffFollowRules},
	"nat_unknown":         {Person: deny("核酸检测结果未知", "The nucleic-acid test result is unknown")},
	"nat_expired":         {Person: deny("核酸检测已超过有效期", "The nucleic-acid test is too old")},
	"nat_time_invalid": {Person: wait("核酸采样时间异常", "The test's sampling time is not valid."),
		Staff: Text{"请人工查验此人的核酸检测记录", "Check this person's nucleic-acid test by hand."}},
	"invalid_id_number":       {Person: Text{"证件号码无效，请核对证件", "The ID number is not valid. Please check your ID."}, Staff: Text{"请核对此人的身份证件", "Check this person's ID document."}},
	"credential_not_accepted": {Person: Text{"本通道不接受此类凭证，请按屏幕提示操作", "This kind of credential is not accepted here. Please do as the screen asks."}},
	"vaccine_insufficient":    {Person: deny("疫苗接种剂次不足", "Not enough vaccine doses on record")},
	"signature_rejected": {Person: Text{personCannotCheckZH + personWait, personCannotCheckEN + personWaitEN},
		Staff: Text{"平台拒绝了本机的签名：请人工查验，并报修（检查应用密钥和设备时钟）", "The platform refused this unit's signature: check by hand and report it (app key, secret, clock)."}},
	"offline_cached":     {Person: Text{"离线通行：近期已核验通过，请通行", "Offline: admitted on a recent check. Please go ahead."}},
	"offline_not_cached": {Person: wait("离线：无近期核验记录", "Offline: no recent check on record."), Staff: staffCheckByHand},
	"offline_flagged":    {Person: Text{"离线通行：请通行，平台稍后复核", "Offline: please go ahead; the platform will re-check this later."}},
	"nat_time_unverifiable": {Person: wait("本机时间未校准，无法核对核酸时效", "This unit's clock is not set: the test's age cannot be checked."),
		Staff: Text{"请人工查验核酸采样时间，并报修设备时钟", "Check the test's date by hand and report the unit's clock."}},
	"face_unavailable": {Person: Text{"未能拍摄人脸。" + personFaceCameraZH + personCardAgainZH, "No face picture could be taken. " + personFaceCameraEN + personCardAgainEN}, Staff: staffCheckCamera},
	// A face-only passage (camera.trigger): the platform's 1:N search found nobody, or only
	// someone below policy.face_min_score.
	"face_not_found": {Person: Text{"未能识别您的人脸，请出示健康码或刷身份证", "Your face was not recognised. Please show your health code or place your ID card."}, Staff: staffCheckByHand},
	"face_low_score": {Person: Text{"人脸比对不够可靠。请摘下帽子和口罩，正对摄像头，或刷身份证", "The face match is not certain enough. Take off hat and mask and face the camera, or place your ID card."}, Staff: staffCheckCamera},
}

// FaceReasons are the messages that differ when the face decided the passage (an ID card
// confirmed by the camera): the answer is about the face, not the name.
var FaceReasons = map[string]Message{
	"identity_mismatch": {Person: wait("人脸与身份证不符", "The face does not match the ID card."),
		Staff: Text{"请核对此人是否为身份证本人", "Check that this person is the holder of the ID card."}},
	"unknown_credential": {Person: wait("未查询到此身份证的记录", "This ID card is not on record."), Staff: staffCheckByHand},
}

// Explain returns the screen message of a reason code for a passage by the given credential
// (qr, idcard or face); an unknown code asks the person to wait and gives the staff the code.
func Explain(code, credential string) Message {
	if credential == "face" {
		if m, ok := FaceReasons[code]; ok {
			return m
		}
	}
	if m, ok := Reasons[code]; ok {
		return m
	}
	return Message{
		Person: Text{"暂时无法核验，" + personWait, "This could not be checked. " + personWaitEN},
		Staff:  Text{"请人工查验（原因代码 " + code + "）", "Check by hand (reason code " + code + ")."},
	}
}

// ReasonText returns what the person is told for a reason code (Explain's Person).
func ReasonText(code string) Text { return Explain(code, "").Person }

// Credential kinds as the idle prompt names them (verify.KindQR, KindIDCard, KindFace).
const (
	KindQR     = "qr"
	KindIDCard = "idcard"
	KindFace   = "face" // an ID card confirmed by the camera
	// KindFaceAlone is a face-only passage (camera.trigger detect or presence).
	KindFaceAlone = "face_alone"
)

var prompts = map[string]Text{
	KindQR:        {"请扫描健康码", "Scan your health code"},
	KindIDCard:    {"请刷身份证", "Place your ID card on the reader"},
	KindFace:      {"请刷身份证，并正对摄像头", "Place your ID card on the reader and face the camera"},
	KindFaceAlone: {"请正对摄像头，刷脸通行", "Look at the camera to pass by face"},
}

// IdlePrompt is what the idle screen asks for, one line per way in, in the order given:
// kinds are the credentials this unit takes (KindQR, KindIDCard, KindFace). Unknown kinds
// are left out; with none the screen asks for nothing it cannot take.
func IdlePrompt(kinds []string) []Text {
	var out []Text
	for _, k := range kinds {
		t, ok := prompts[k]
		if !ok {
			continue
		}
		if len(out) > 0 {
			t = Text{"或" + t.ZH, "or " + lowerFirst(t.EN)}
		}
		out = append(out, t)
	}
	return out
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// The unit's alarm and offline states, as the screen says them.
var (
	// FireAlarm takes the whole screen while the fire alarm is active on a unit with a
	// barrier: the lane is held open.
	FireAlarm = Message{
		Person: Text{"火警！通道已打开，请立即有序疏散", "FIRE ALARM. The barrier is held open: leave calmly now."},
		Staff:  Text{"引导所有人员疏散；不要关闭通道", "Guide everyone out; do not close the lane."},
	}
	// FireAlarmNoBarrier is the same on a unit without a barrier.
	FireAlarmNoBarrier = Message{
		Person: Text{"火警！请立即有序疏散", "FIRE ALARM. Leave calmly now."},
		Staff:  Text{"停止查验，引导所有人员疏散", "Stop checking and guide everyone out."},
	}
	// Tamper is shown while the unit's tamper switch says its case is open.
	Tamper = Message{
		Person: Text{"设备维护中，请按工作人员指引通行", "This unit is being serviced. Please follow the staff."},
		Staff:  Text{"防拆报警：机壳被打开。请检查设备后合上机壳", "Tamper alarm: the unit's case is open. Check the unit, then close it."},
	}
	// Offline are the idle screen's notices while the platform cannot be reached, by
	// platform.offline_policy.
	Offline = map[string]Message{
		"deny": {
			Person: Text{"平台无法连接：请向工作人员出示健康码和证件", "The platform cannot be reached: please show your health code and ID to the staff."},
			Staff:  Text{"离线：本机拒绝所有通行，请逐人人工查验", "Offline: this unit admits nobody. Check each person by hand."},
		},
		"allow_cached": {
			Person: Text{"离线模式：仅近期在本机核验通过的人可以通行", "Offline: only people checked here recently can pass."},
			Staff:  Text{"离线：其他人员请人工查验健康码和身份证件", "Offline: check everyone else's code and ID by hand."},
		},
		"allow_and_flag": {
			Person: Text{"离线模式：可以通行，平台恢复后复核", "Offline: you may pass; the platform re-checks later."},
			Staff:  Text{"离线：本机放行所有人并记录待复核；请留意异常", "Offline: this unit admits everyone and flags them for re-checking; watch the lane."},
		},
	}
)
