package platform

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Dialects the server speaks: the reference interface of docs/docking-spec.md, a provincial
// gateway of a different shape (configs/mappings/province-gateway.yaml maps the client to
// it), and one per signing scheme of docs/docking-spec.md, "Signing" (dialect_vendor.go;
// configs/mappings/vendor-*.yaml). The simulator writes each by hand, independently of the
// client's mapping code, so that a test against each proves the mapping.
const (
	DialectReference    = "reference"
	DialectProvince     = "province"
	DialectVendorSorted = "vendor-sorted" // sorted k=v&…&key=secret, SHA-256 upper hex, form bodies
	DialectVendorMD5    = "vendor-md5"    // MD5(app key + timestamp + secret + body) in a header
	DialectVendorSHA256 = "vendor-sha256" // SHA-256(app id + secret + timestamp) in the query, GET
	DialectVendorSM2    = "vendor-sm2"    // sorted string signed with SM2, base64 in the body
)

// Dialects lists the dialects.
var Dialects = []string{DialectReference, DialectProvince, DialectVendorSorted, DialectVendorMD5, DialectVendorSHA256, DialectVendorSM2}

// Interfaces (operations) of the docking interface, as the request log names them.
const (
	IfacePing   = "ping"
	IfaceQR     = "qr"
	IfaceIDCard = "idcard"
	IfaceFace   = "face"
)

// Paths of the province dialect.
const (
	ProvincePathPing   = "/gateway/health/ping"
	ProvincePathQR     = "/gateway/health/qrcode"
	ProvincePathIDCard = "/gateway/health/idcard"
	ProvincePathFace   = "/gateway/health/face"
)

// failure kinds an answer can carry.
type failure int

const (
	failBadRequest failure = iota
	failNotFound
	failInternal
	failBadSignature
	failReplay
	failMethod
	failNoEndpoint
)

// credRequest is what a verification request asked about. It holds personal data.
type credRequest struct {
	token, idNumber, name string
	face                  []byte
}

// SignHeaders names the signing headers of a dialect.
type SignHeaders struct {
	AppKey, Timestamp, Nonce, Signature, Method string
	TimestampSeconds                            bool
}

// reqInput is what a verification request carried.
type reqInput struct {
	method, path string
	header       http.Header
	query        url.Values
	body         []byte
}

type dialect interface {
	paths() map[string]string // interface → path
	method(iface string) string
	unitHeaders() (device, venue, passage string)
	requestIDHeader() string
	// checkSig verifies the request's signature by the dialect's scheme: a Sig* result.
	checkSig(sg *Signing, in reqInput, now time.Time) string
	decode(iface string, in reqInput) (credRequest, error)
	ping(now time.Time) any
	ok(d *Data, rid string, now time.Time) (int, any)
	fail(f failure, msg, rid string) (int, any)
	code(body any) string
}

func newDialect(name string) (dialect, error) {
	switch name {
	case "", DialectReference:
		return reference{}, nil
	case DialectProvince:
		return province{}, nil
	case DialectVendorSorted:
		return vendorSorted{}, nil
	case DialectVendorMD5:
		return vendorMD5{}, nil
	case DialectVendorSHA256:
		return vendorSHA256{}, nil
	case DialectVendorSM2:
		return vendorSM2{}, nil
	}
	return nil, fmt.Errorf("platform: unknown dialect %q (known: %s)", name, strings.Join(Dialects, ", "))
}

// decodeStrict decodes exactly one JSON object into v. Its errors never quote the body.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("field %s has the wrong type", te.Field)
		}
		return errors.New("body is not a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("body has data after the JSON object")
	}
	return nil
}

func decodeFace(b64 string) ([]byte, error) {
	if b64 == "" {
		return nil, errors.New("the face image is missing")
	}
	img, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("the face image is not base64")
	}
	if len(img) < 4 || img[0] != 0xFF || img[1] != 0xD8 {
		return nil, errors.New("the face image is not a JPEG")
	}
	return img, nil
}

// ---- reference dialect ----

type reference struct{}

func (reference) paths() map[string]string {
	return map[string]string{IfacePing: PathPing, IfaceQR: PathQR, IfaceIDCard: PathIDCard, IfaceFace: PathFace}
}
func (reference) method(string) string { return http.MethodPost }
func (reference) unitHeaders() (string, string, string) {
	return HeaderDevice, HeaderVenue, HeaderPassage
}
func (reference) signHeaders() SignHeaders {
	return SignHeaders{AppKey: "X-App-Key", Timestamp: "X-Timestamp", Nonce: "X-Nonce", Signature: "X-Signature", Method: "X-Sign-Method"}
}
func (d reference) checkSig(sg *Signing, in reqInput, now time.Time) string {
	return sg.check(d.signHeaders(), in.header.Get, in.method, in.path, in.body, now)
}
func (reference) requestIDHeader() string { return HeaderRequestID }
func (reference) ping(now time.Time) any {
	return Ping{Code: CodeOK, ServerTime: now.UTC().Format(time.RFC3339)}
}

func (reference) decode(iface string, in reqInput) (credRequest, error) {
	raw := in.body
	switch iface {
	case IfaceQR:
		var r QRRequest
		if err := decodeStrict(raw, &r); err != nil {
			return credRequest{}, err
		}
		if r.QRToken == "" {
			return credRequest{}, errors.New("qr_token is missing")
		}
		return credRequest{token: r.QRToken}, nil
	case IfaceIDCard:
		var r IDCardRequest
		if err := decodeStrict(raw, &r); err != nil {
			return credRequest{}, err
		}
		if r.IDNumber == "" || r.Name == "" {
			return credRequest{}, errors.New("id_number and name are required")
		}
		return credRequest{idNumber: r.IDNumber, name: r.Name}, nil
	case IfaceFace:
		var r FaceRequest
		if err := decodeStrict(raw, &r); err != nil {
			return credRequest{}, err
		}
		img, err := decodeFace(r.ImageJPEG)
		if err != nil {
			return credRequest{}, err
		}
		return credRequest{face: img, idNumber: r.IDNumber}, nil
	}
	return credRequest{}, errors.New("not a verification")
}

func (reference) ok(d *Data, rid string, _ time.Time) (int, any) {
	return http.StatusOK, Answer{Code: CodeOK, RequestID: rid, Data: d}
}

func (reference) fail(f failure, msg, rid string) (int, any) {
	status, code := map[failure]int{
		failBadRequest: 400, failNotFound: 404, failInternal: 500, failBadSignature: 401, failReplay: 401,
		failMethod: 405, failNoEndpoint: 404,
	}[f], map[failure]string{
		failBadRequest: CodeBadRequest, failNotFound: CodeNotFound, failInternal: CodeInternal,
		failBadSignature: CodeBadSignature, failReplay: CodeReplay, failMethod: CodeMethodNotAllowed, failNoEndpoint: CodeNotFound,
	}[f]
	return status, Answer{Code: code, Message: msg, RequestID: rid}
}

func (reference) code(body any) string {
	if a, ok := body.(Answer); ok {
		return a.Code
	}
	return ""
}

// ---- province dialect ----

// ProvinceTimeLayout is the province's time format, in China Standard Time (UTC+8).
const ProvinceTimeLayout = "2006-01-02 15:04:05"

var cst = time.FixedZone("CST", 8*3600)

type province struct{}

func (province) paths() map[string]string {
	return map[string]string{IfacePing: ProvincePathPing, IfaceQR: ProvincePathQR, IfaceIDCard: ProvincePathIDCard, IfaceFace: ProvincePathFace}
}
func (province) method(string) string                  { return http.MethodPost }
func (province) unitHeaders() (string, string, string) { return "deviceCode", "areaCode", "bizSn" }
func (province) signHeaders() SignHeaders {
	return SignHeaders{AppKey: "appId", Timestamp: "timestamp", Nonce: "nonce", Signature: "sign", Method: "signMethod", TimestampSeconds: true}
}
func (d province) checkSig(sg *Signing, in reqInput, now time.Time) string {
	return sg.check(d.signHeaders(), in.header.Get, in.method, in.path, in.body, now)
}
func (province) requestIDHeader() string { return "reqSn" }
func (province) ping(now time.Time) any {
	return map[string]string{"resultCode": ProvinceOK, "serverTime": now.In(cst).Format(ProvinceTimeLayout)}
}

type provinceRequest struct {
	BizData *struct {
		QRCode     string `json:"qrCode"`
		CertType   string `json:"certType"`
		CertNo     string `json:"certNo"`
		CertName   string `json:"certName"`
		FaceImage  string `json:"faceImage"`
		DeviceCode string `json:"deviceCode"`
	} `json:"bizData"`
}

func (province) decode(iface string, in reqInput) (credRequest, error) {
	var r provinceRequest
	if err := decodeStrict(in.body, &r); err != nil {
		return credRequest{}, err
	}
	b := r.BizData
	if b == nil {
		return credRequest{}, errors.New("bizData is missing")
	}
	switch iface {
	case IfaceQR:
		if b.QRCode == "" {
			return credRequest{}, errors.New("bizData.qrCode is missing")
		}
		return credRequest{token: b.QRCode}, nil
	case IfaceIDCard:
		if b.CertType != "10" {
			return credRequest{}, errors.New("bizData.certType must be 10 (resident ID card)")
		}
		if b.CertNo == "" || b.CertName == "" {
			return credRequest{}, errors.New("bizData.certNo and bizData.certName are required")
		}
		return credRequest{idNumber: b.CertNo, name: b.CertName}, nil
	case IfaceFace:
		img, err := decodeFace(b.FaceImage)
		if err != nil {
			return credRequest{}, err
		}
		return credRequest{face: img, idNumber: b.CertNo}, nil
	}
	return credRequest{}, errors.New("not a verification")
}

// ProvinceAnswer is the province's envelope.
type ProvinceAnswer struct {
	ResultCode string          `json:"resultCode"`
	ResultMsg  string          `json:"resultMsg"`
	ReqSn      string          `json:"reqSn"`
	Result     *ProvinceResult `json:"result,omitempty"`
}

// ProvinceResult is the body of a successful province answer.
type ProvinceResult struct {
	PersonMatch string              `json:"personMatch"` // "1" or "0"
	CertNo      string              `json:"certNo"`
	CertName    string              `json:"certName"`
	CodeColor   string              `json:"codeColor"` // "1" green, "2" yellow, "3" red
	NucleicInfo []ProvinceNucleic   `json:"nucleicInfo"`
	VaccineInfo *ProvinceVaccineRec `json:"vaccineInfo"`
}

// ProvinceNucleic is one nucleic-acid test, newest first.
type ProvinceNucleic struct {
	AcidResult   string `json:"acidResult"` // 阴性 or 阳性
	SamplingTime string `json:"samplingTime"`
	ReportTime   string `json:"reportTime"`
}

// ProvinceVaccineRec is the vaccination record; counts are strings.
type ProvinceVaccineRec struct {
	VaccinateCount    string `json:"vaccinateCount"`
	LastVaccinateDate string `json:"lastVaccinateDate"`
}

func provinceTime(rfc string) string {
	t, err := time.Parse(time.RFC3339, rfc)
	if err != nil {
		return ""
	}
	return t.In(cst).Format(ProvinceTimeLayout)
}

func (province) ok(d *Data, rid string, _ time.Time) (int, any) {
	r := &ProvinceResult{
		PersonMatch: map[bool]string{true: "1", false: "0"}[d.Identity.Match],
		CertNo:      d.Identity.IDNumber, CertName: d.Identity.Name,
		CodeColor:   map[string]string{"green": "1", "yellow": "2", "red": "3"}[d.HealthCode],
		NucleicInfo: []ProvinceNucleic{},
	}
	if d.NAT != nil {
		r.NucleicInfo = append(r.NucleicInfo, ProvinceNucleic{
			AcidResult:   map[string]string{"negative": "阴性", "positive": "阳性"}[d.NAT.Result],
			SamplingTime: provinceTime(d.NAT.SampledAt), ReportTime: provinceTime(d.NAT.ReportedAt),
		})
	}
	if d.Vaccine != nil {
		r.VaccineInfo = &ProvinceVaccineRec{VaccinateCount: fmt.Sprint(d.Vaccine.Doses), LastVaccinateDate: d.Vaccine.LastDate}
	}
	return http.StatusOK, ProvinceAnswer{ResultCode: "0000", ResultMsg: "成功", ReqSn: rid, Result: r}
}

// Province result codes.
const (
	ProvinceOK           = "0000"
	ProvinceNotFound     = "1004"
	ProvinceBadRequest   = "4000"
	ProvinceBadSignature = "4010"
	ProvinceReplay       = "4011"
	ProvinceNoEndpoint   = "4040"
	ProvinceMethod       = "4050"
	ProvinceInternal     = "5000"
)

func (province) fail(f failure, msg, rid string) (int, any) {
	var status int
	var code string
	switch f {
	case failBadRequest:
		status, code = 400, ProvinceBadRequest
	case failNotFound:
		status, code = 200, ProvinceNotFound // the gateway answers an unknown person with 200
	case failInternal:
		status, code = 500, ProvinceInternal
	case failBadSignature:
		status, code = 401, ProvinceBadSignature
	case failReplay:
		status, code = 401, ProvinceReplay
	case failMethod:
		status, code = 405, ProvinceMethod
	default:
		status, code = 404, ProvinceNoEndpoint
	}
	return status, ProvinceAnswer{ResultCode: code, ResultMsg: msg, ReqSn: rid}
}

func (province) code(body any) string {
	if a, ok := body.(ProvinceAnswer); ok {
		return a.ResultCode
	}
	return ""
}
