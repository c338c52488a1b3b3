package platform

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The vendor dialects: one per signing scheme of docs/docking-spec.md, "Signing", each with
// the encodings and answer forms seen in public material (health-code-platforms.md), so
// that configs/mappings/vendor-*.yaml is proven against a shape the client's code never saw.
// Each answers a person with a test on record with several tests, the newest not first, so
// that a mapping that reads the wrong element decides wrongly.

// Paths of the vendor dialects.
const (
	SortedPathPing, SortedPathQR, SortedPathIDCard, SortedPathFace = "/health/ping", "/health/decode", "/health/code", "/health/face"
	MD5PathPing, MD5PathQR, MD5PathIDCard, MD5PathFace             = "/openapi/ping", "/openapi/health/qrcode", "/openapi/health/idcard", "/openapi/health/face"
	SHA256PathPing, SHA256PathQR, SHA256PathIDCard, SHA256PathFace = "/api/hc/ping", "/api/hc/qrcode", "/api/hc/person", "/api/hc/face"
	SM2PathPing, SM2PathQR, SM2PathIDCard, SM2PathFace             = "/mi/ping", "/mi/hc/qr", "/mi/hc/psn", "/mi/hc/face"
)

// olderTests are the earlier tests a vendor answer lists beside the newest: days before it.
var olderTests = []int{7, 14}

// natTime reads one of Data's RFC 3339 times.
func natTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

// test is one nucleic-acid test, for the vendor answers.
type test struct {
	sampled, reported time.Time
	positive          bool
}

// tests are the person's tests: the newest (d.NAT) and older negative ones, newest first.
func tests(d *Data) []test {
	if d.NAT == nil {
		return nil
	}
	s, r := natTime(d.NAT.SampledAt), natTime(d.NAT.ReportedAt)
	out := []test{{s, r, d.NAT.Result == "positive"}}
	for _, days := range olderTests {
		out = append(out, test{s.AddDate(0, 0, -days), r.AddDate(0, 0, -days), false})
	}
	return out
}

// failStatus is the HTTP status of a failure for the dialects that answer errors with 200
// and a code, except for what HTTP itself says (a method, a path, an internal failure).
func failStatus(f failure) int {
	switch f {
	case failInternal:
		return 500
	case failMethod:
		return 405
	case failNoEndpoint:
		return 404
	case failBadRequest:
		return 400
	}
	return 200
}

func requireFields(kind string, vals map[string]string, names ...string) error {
	for _, n := range names {
		if vals[n] == "" {
			return errors.New(kind + ": " + n + " is required")
		}
	}
	return nil
}

// credFrom reads a credential request from flat fields named qr, id, name and face.
func credFrom(iface string, v map[string]string, qr, id, name, face string) (credRequest, error) {
	switch iface {
	case IfaceQR:
		if err := requireFields("qr", v, qr); err != nil {
			return credRequest{}, err
		}
		return credRequest{token: v[qr]}, nil
	case IfaceIDCard:
		if err := requireFields("idcard", v, id, name); err != nil {
			return credRequest{}, err
		}
		return credRequest{idNumber: v[id], name: v[name]}, nil
	case IfaceFace:
		img, err := decodeFace(v[face])
		if err != nil {
			return credRequest{}, err
		}
		return credRequest{face: img, idNumber: v[id]}, nil
	}
	return credRequest{}, errors.New("not a verification")
}

// ---- vendor-sorted: the gate vendor ----

type vendorSorted struct{}

func (vendorSorted) paths() map[string]string {
	return map[string]string{IfacePing: SortedPathPing, IfaceQR: SortedPathQR, IfaceIDCard: SortedPathIDCard, IfaceFace: SortedPathFace}
}
func (vendorSorted) method(string) string { return http.MethodPost }
func (vendorSorted) unitHeaders() (string, string, string) {
	return HeaderDevice, HeaderVenue, HeaderPassage
}
func (vendorSorted) requestIDHeader() string { return HeaderRequestID }

func formOf(in reqInput) url.Values {
	v, err := url.ParseQuery(string(in.body))
	if err != nil {
		return url.Values{}
	}
	return v
}

func (vendorSorted) checkSig(sg *Signing, in reqInput, now time.Time) string {
	return sg.checkSortedSHA256(formOf(in), now)
}

func (vendorSorted) decode(iface string, in reqInput) (credRequest, error) {
	form, err := url.ParseQuery(string(in.body))
	if err != nil {
		return credRequest{}, errors.New("body is not a form")
	}
	v := map[string]string{}
	for k := range form {
		v[k] = form.Get(k)
	}
	if iface == IfaceIDCard && v["certType"] != "10" {
		return credRequest{}, errors.New("certType must be 10 (resident ID card)")
	}
	return credFrom(iface, v, "qrCode", "certNo", "certName", "faceImage")
}

func (vendorSorted) ping(now time.Time) any {
	return map[string]any{"code": 0, "serverTime": now.UnixMilli()}
}

// vendorAnswer is the gate vendor's envelope: a numeric code.
type vendorAnswer struct {
	Code      int    `json:"code"`
	Msg       string `json:"msg"`
	RequestID string `json:"requestId"`
	Data      any    `json:"data,omitempty"`
}

func (vendorSorted) ok(d *Data, rid string, _ time.Time) (int, any) {
	list := []map[string]any{}
	ts := tests(d)
	for i := len(ts) - 1; i >= 0; i-- { // oldest first
		res := "阴性"
		if ts[i].positive {
			res = "阳性"
		}
		list = append(list, map[string]any{"sampleTime": ts[i].sampled.UnixMilli(), "reportTime": ts[i].reported.UnixMilli(), "result": res})
	}
	data := map[string]any{
		"certNo": d.Identity.IDNumber, "certName": d.Identity.Name,
		"match":       map[bool]int{true: 1, false: 0}[d.Identity.Match],
		"healthColor": map[string]string{"green": "绿码", "yellow": "黄码", "red": "红码"}[d.HealthCode],
		"nucleicList": list, "vaccine": nil,
	}
	if d.Vaccine != nil {
		data["vaccine"] = map[string]any{"doses": d.Vaccine.Doses, "lastDate": d.Vaccine.LastDate}
	}
	return http.StatusOK, vendorAnswer{Code: 0, Msg: "success", RequestID: rid, Data: data}
}

// Gate vendor codes.
const (
	SortedNotFound, SortedBadSign, SortedReplay, SortedBadRequest, SortedInternal = 1001, 4001, 4002, 4000, 5000
)

func (vendorSorted) fail(f failure, msg, rid string) (int, any) {
	code := map[failure]int{failBadRequest: SortedBadRequest, failNotFound: SortedNotFound, failInternal: SortedInternal,
		failBadSignature: SortedBadSign, failReplay: SortedReplay, failMethod: 4050, failNoEndpoint: 4040}[f]
	return failStatus(f), vendorAnswer{Code: code, Msg: msg, RequestID: rid}
}

func (vendorSorted) code(body any) string {
	if a, ok := body.(vendorAnswer); ok {
		return strconv.Itoa(a.Code)
	}
	return ""
}

// ---- vendor-md5: the provincial gateway demo ----

type vendorMD5 struct{}

func (vendorMD5) paths() map[string]string {
	return map[string]string{IfacePing: MD5PathPing, IfaceQR: MD5PathQR, IfaceIDCard: MD5PathIDCard, IfaceFace: MD5PathFace}
}
func (vendorMD5) method(string) string                  { return http.MethodPost }
func (vendorMD5) unitHeaders() (string, string, string) { return "deptCode", "areaCode", HeaderPassage }
func (vendorMD5) requestIDHeader() string               { return "X-Trace-Id" }
func (vendorMD5) checkSig(sg *Signing, in reqInput, now time.Time) string {
	return sg.checkMD5(in.header, in.body, now)
}

func (vendorMD5) decode(iface string, in reqInput) (credRequest, error) {
	var v map[string]string
	if err := decodeStrict(in.body, &v); err != nil {
		return credRequest{}, err
	}
	return credFrom(iface, v, "qrcode", "idcardNo", "name", "image")
}

func (vendorMD5) ping(now time.Time) any {
	return map[string]string{"status": "200", "time": strconv.FormatInt(now.Unix(), 10)}
}

// md5Answer is the provincial gateway's envelope: a string status.
type md5Answer struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	TraceID string `json:"traceId"`
	Data    any    `json:"data,omitempty"`
}

func (vendorMD5) ok(d *Data, rid string, _ time.Time) (int, any) {
	data := map[string]any{
		"idcardNo": d.Identity.IDNumber, "name": d.Identity.Name, "verified": d.Identity.Match,
		"colorCode": map[string]int{"green": 0, "yellow": 1, "red": 2}[d.HealthCode], "nat": nil,
		"vaccineCount": "0",
	}
	if ts := tests(d); len(ts) > 0 {
		data["nat"] = map[string]any{"result": map[bool]int{false: 0, true: 1}[ts[0].positive],
			"samplingTime": strconv.FormatInt(ts[0].sampled.Unix(), 10), "reportTime": strconv.FormatInt(ts[0].reported.Unix(), 10)}
	}
	if d.Vaccine != nil {
		data["vaccineCount"] = strconv.Itoa(d.Vaccine.Doses)
	}
	return http.StatusOK, md5Answer{Status: "200", Message: "OK", TraceID: rid, Data: data}
}

func (vendorMD5) fail(f failure, msg, rid string) (int, any) {
	status := map[failure]int{failBadRequest: 400, failNotFound: 404, failInternal: 500, failBadSignature: 401, failReplay: 401, failMethod: 405, failNoEndpoint: 404}[f]
	return status, md5Answer{Status: strconv.Itoa(status), Message: msg, TraceID: rid}
}

func (vendorMD5) code(body any) string {
	if a, ok := body.(md5Answer); ok {
		return a.Status
	}
	return ""
}

// ---- vendor-sha256: a city platform with GET queries ----

type vendorSHA256 struct{}

// SHA256TimeLayout is the city platform's time format (yyyyMMddHHmmss), in China Standard
// Time.
const SHA256TimeLayout = "20060102150405"

func (vendorSHA256) paths() map[string]string {
	return map[string]string{IfacePing: SHA256PathPing, IfaceQR: SHA256PathQR, IfaceIDCard: SHA256PathIDCard, IfaceFace: SHA256PathFace}
}
func (vendorSHA256) method(iface string) string {
	if iface == IfaceFace {
		return http.MethodPost
	}
	return http.MethodGet
}
func (vendorSHA256) unitHeaders() (string, string, string) {
	return HeaderDevice, HeaderVenue, HeaderPassage
}
func (vendorSHA256) requestIDHeader() string { return HeaderRequestID }
func (vendorSHA256) checkSig(sg *Signing, in reqInput, now time.Time) string {
	return sg.checkSHA256Query(in.query, now)
}

func (vendorSHA256) decode(iface string, in reqInput) (credRequest, error) {
	v := map[string]string{}
	if iface == IfaceFace {
		if err := decodeStrict(in.body, &v); err != nil {
			return credRequest{}, err
		}
	} else {
		for k := range in.query {
			v[k] = in.query.Get(k)
		}
	}
	return credFrom(iface, v, "code", "idcardNo", "name", "photo")
}

func (vendorSHA256) ping(now time.Time) any {
	return map[string]string{"retCode": SHA256OK, "serverTime": now.In(cst).Format(SHA256TimeLayout)}
}

// City platform codes.
const (
	SHA256OK, SHA256NotFound, SHA256BadSign, SHA256Stale = "000000", "100004", "400003", "400004"
)

type sha256Answer struct {
	RetCode  string `json:"retCode"`
	RetMsg   string `json:"retMsg"`
	SerialNo string `json:"serialNo"`
	Result   any    `json:"result,omitempty"`
}

func (vendorSHA256) ok(d *Data, rid string, _ time.Time) (int, any) {
	list := []map[string]any{}
	ts := tests(d)
	order := []int{1, 0, 2} // the newest in the middle
	for _, i := range order {
		if i >= len(ts) {
			continue
		}
		res := "阴性"
		if ts[i].positive {
			res = "阳性"
		}
		list = append(list, map[string]any{"cysj": ts[i].sampled.In(cst).Format(SHA256TimeLayout), "bgsj": ts[i].reported.In(cst).Format(SHA256TimeLayout), "jcjg": res})
	}
	res := map[string]any{
		"idcardNo": d.Identity.IDNumber, "name": d.Identity.Name, "nameMatch": map[bool]string{true: "Y", false: "N"}[d.Identity.Match],
		"hmColor": map[string]string{"green": "GREEN", "yellow": "YELLOW", "red": "RED"}[d.HealthCode], "hsjcList": list, "ymjzcs": 0,
	}
	if d.Vaccine != nil {
		res["ymjzcs"] = d.Vaccine.Doses
	}
	return http.StatusOK, sha256Answer{RetCode: SHA256OK, RetMsg: "成功", SerialNo: rid, Result: res}
}

func (vendorSHA256) fail(f failure, msg, rid string) (int, any) {
	status, code := failStatus(f), map[failure]string{failBadRequest: "400000", failNotFound: SHA256NotFound, failInternal: "500000",
		failBadSignature: SHA256BadSign, failReplay: SHA256Stale, failMethod: "405000", failNoEndpoint: "404000"}[f]
	if f == failBadSignature || f == failReplay {
		status = http.StatusForbidden
	}
	return status, sha256Answer{RetCode: code, RetMsg: msg, SerialNo: rid}
}

func (vendorSHA256) code(body any) string {
	if a, ok := body.(sha256Answer); ok {
		return a.RetCode
	}
	return ""
}

// ---- vendor-sm2: the insurance platform's national-crypto scheme ----

type vendorSM2 struct{}

func (vendorSM2) paths() map[string]string {
	return map[string]string{IfacePing: SM2PathPing, IfaceQR: SM2PathQR, IfaceIDCard: SM2PathIDCard, IfaceFace: SM2PathFace}
}
func (vendorSM2) method(string) string { return http.MethodPost }
func (vendorSM2) unitHeaders() (string, string, string) {
	return HeaderDevice, HeaderVenue, HeaderPassage
}
func (vendorSM2) requestIDHeader() string { return HeaderRequestID }

// sm2Params reads the top-level fields: strings as they are, other values as their JSON as
// sent; null and absent alike.
func sm2Params(body []byte) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := decodeStrict(body, &raw); err != nil {
		return nil, err
	}
	p := map[string]string{}
	for k, v := range raw {
		var s string
		switch {
		case string(v) == "null":
		case json.Unmarshal(v, &s) == nil:
			p[k] = s
		default:
			p[k] = string(v)
		}
	}
	return p, nil
}

func (vendorSM2) checkSig(sg *Signing, in reqInput, now time.Time) string {
	p, err := sm2Params(in.body)
	if err != nil {
		return SigMissing
	}
	return sg.checkSM2(p, now)
}

func (vendorSM2) decode(iface string, in reqInput) (credRequest, error) {
	var r struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(in.body, &r); err != nil || r.Data == nil {
		return credRequest{}, errors.New("data is missing or not an object of strings")
	}
	return credFrom(iface, r.Data, "qrCode", "certno", "psn_name", "photo")
}

func (vendorSM2) ping(now time.Time) any {
	return map[string]any{"infcode": 0, "svr_time": strconv.FormatInt(now.UnixMilli(), 10)}
}

// Insurance platform codes.
const (
	SM2NotFound, SM2BadSign, SM2Replay = -2, -401, -402
)

type sm2Answer struct {
	Infcode    int    `json:"infcode"`
	ErrMsg     string `json:"err_msg"`
	RefMsgID   string `json:"inf_refmsgid"`
	ServerTime string `json:"svr_time"`
	Output     any    `json:"output,omitempty"`
}

func (vendorSM2) ok(d *Data, rid string, now time.Time) (int, any) {
	list := []map[string]any{}
	ts := tests(d)
	for i := len(ts) - 1; i >= 0; i-- {
		list = append(list, map[string]any{"smpl_time": ts[i].sampled.In(cst).Format(time.RFC3339), "rpt_time": ts[i].reported.In(cst).Format(time.RFC3339),
			"rslt": map[bool]string{false: "1", true: "2"}[ts[i].positive]})
	}
	out := map[string]any{
		"psn": map[string]string{"certno": d.Identity.IDNumber, "psn_name": d.Identity.Name, "match": map[bool]string{true: "1", false: "0"}[d.Identity.Match]},
		"hc":  map[string]int{"color": map[string]int{"green": 1, "yellow": 2, "red": 3}[d.HealthCode]}, "nat_list": list, "vacc": nil,
	}
	if d.Vaccine != nil {
		out["vacc"] = map[string]any{"cnt": d.Vaccine.Doses, "last": d.Vaccine.LastDate}
	}
	return http.StatusOK, sm2Answer{Infcode: 0, RefMsgID: rid, ServerTime: strconv.FormatInt(now.UnixMilli(), 10), Output: out}
}

func (vendorSM2) fail(f failure, msg, rid string) (int, any) {
	code := map[failure]int{failBadRequest: -400, failNotFound: SM2NotFound, failInternal: -500,
		failBadSignature: SM2BadSign, failReplay: SM2Replay, failMethod: -405, failNoEndpoint: -404}[f]
	return failStatus(f), sm2Answer{Infcode: code, ErrMsg: msg, RefMsgID: rid}
}

func (vendorSM2) code(body any) string {
	if a, ok := body.(sm2Answer); ok {
		return strconv.Itoa(a.Infcode)
	}
	return ""
}
