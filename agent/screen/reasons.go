package screen

// Text is a message in plain Chinese and English.
type Text struct {
	ZH string `json:"zh"`
	EN string `json:"en"`
}

// Reasons are the screen texts of every reason code (docs/reasons.md). A test checks that
// every code verify knows has one.
var Reasons = map[string]Text{
	"ok":                      {"核验通过，请通行", "Checked. Please go ahead."},
	"malformed_scan":          {"二维码无法识别，请重新扫码", "The code could not be read. Please scan again."},
	"unknown_credential":      {"未查询到该码信息，请联系工作人员", "This code is not known. Please see the staff."},
	"platform_unreachable":    {"平台暂时无法连接，请联系工作人员", "The platform cannot be reached. Please see the staff."},
	"platform_error":          {"平台返回错误，请联系工作人员", "The platform returned an error. Please see the staff."},
	"bad_response":            {"平台应答异常，请联系工作人员", "The platform's answer was not usable. Please see the staff."},
	"identity_mismatch":       {"身份信息核验不一致，请联系工作人员", "The identity could not be confirmed. Please see the staff."},
	"health_code_green":       {"本场所不接受绿码", "This venue does not admit a green code."},
	"health_code_yellow":      {"健康码为黄码，不能通行", "Health code is yellow: entry not allowed."},
	"health_code_red":         {"健康码为红码，不能通行", "Health code is red: entry not allowed."},
	"health_code_unknown":     {"健康码状态未知，请联系工作人员", "Health code status unknown. Please see the staff."},
	"nat_missing":             {"无核酸检测记录", "No nucleic-acid test on record."},
	"nat_positive":            {"核酸检测结果为阳性", "The nucleic-acid test is positive."},
	"nat_unknown":             {"核酸检测结果未知", "The nucleic-acid test result is unknown."},
	"nat_expired":             {"核酸检测已超过有效期", "The nucleic-acid test is too old."},
	"nat_time_invalid":        {"核酸采样时间异常，请联系工作人员", "The sampling time is not valid. Please see the staff."},
	"invalid_id_number":       {"证件号码无效，请核对", "The ID number is not valid. Please check it."},
	"credential_not_accepted": {"本通道不接受此类凭证", "This kind of credential is not accepted here."},
	"vaccine_insufficient":    {"疫苗接种剂次不足", "Not enough vaccine doses on record."},
	"signature_rejected":      {"平台拒绝了本设备的请求，请联系工作人员", "The platform refused this unit's request. Please see the staff."},
	"offline_cached":          {"离线通行：近期已核验通过", "Offline: admitted on a recent check."},
	"offline_not_cached":      {"离线：无近期核验记录，不能通行", "Offline: no recent check on record. Entry not allowed."},
	"offline_flagged":         {"离线通行：待平台复核", "Offline: admitted, to be re-checked by the platform."},
	"nat_time_unverifiable":   {"设备时间未校准，无法核对核酸时效，请联系工作人员", "This unit's clock is not set: the test's age cannot be checked. Please see the staff."},
	"face_unavailable":        {"未能拍摄人脸，请正对摄像头后重试", "No face picture could be taken. Please face the camera and try again."},
}

// ReasonText returns the screen text of a reason code; an unknown code shows itself.
func ReasonText(code string) Text {
	if t, ok := Reasons[code]; ok {
		return t
	}
	return Text{ZH: "请联系工作人员（" + code + "）", EN: "Please see the staff (" + code + ")."}
}
