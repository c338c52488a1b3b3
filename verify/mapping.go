package verify

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrMapping is wrapped by every problem with a mapping file.
var ErrMapping = errors.New("verify: bad mapping")

//go:embed mappings/reference.yaml
var referenceMapping []byte

// ReferenceMappingYAML is the mapping of docs/docking-spec.md, used when platform.mapping is
// not set. configs/mappings/reference.yaml is a copy of it.
func ReferenceMappingYAML() []byte { return slices.Clone(referenceMapping) }

// Mapping adapts the client to one platform's interface without code: where each request and
// answer field lives (a dotted JSON path like data.nat.sampled_at, with [N] for array items),
// how values translate into Sentinel's words ("1" → green), and the signing headers. See
// docs/docking-spec.md, "Field mapping".
type Mapping struct {
	Name      string    `yaml:"name"`
	Endpoints Endpoints `yaml:"endpoints"`
	Headers   Headers   `yaml:"headers"`
	// Request maps each credential kind to its body: JSON path → value, where a value is a
	// literal or one of ${qr_token}, ${id_number}, ${name}, ${face_jpeg_base64}, ${device},
	// ${venue}.
	Request  map[string]map[string]string `yaml:"request"`
	Response Response                     `yaml:"response"`
	// Sample is an example 200 answer; when set, every response path must resolve in it
	// (sentinel check reports a path that points at nothing).
	Sample string `yaml:"sample"`
}

// Endpoints are the interface's operations.
type Endpoints struct {
	Ping   Endpoint `yaml:"ping"`
	QR     Endpoint `yaml:"qr"`
	IDCard Endpoint `yaml:"idcard"`
	Face   Endpoint `yaml:"face"`
}

// Endpoint is one operation: method and path below platform.url.
type Endpoint struct {
	Method string `yaml:"method"`
	Path   string `yaml:"path"`
}

// Headers names the request headers. Empty names take the reference names.
type Headers struct {
	Device     string `yaml:"device"`
	Venue      string `yaml:"venue"`
	Passage    string `yaml:"passage"`
	AppKey     string `yaml:"app_key"`
	Timestamp  string `yaml:"timestamp"`
	Nonce      string `yaml:"nonce"`
	Signature  string `yaml:"signature"`
	SignMethod string `yaml:"sign_method"`
	// TimestampUnit is ms (default) or s.
	TimestampUnit string `yaml:"timestamp_unit"`
	// RequestID is the answer header that carries the platform's request id, when the body
	// has none.
	RequestID string `yaml:"request_id"`
}

// Response says where the answer's fields are and what their values mean.
type Response struct {
	Code Field `yaml:"code"`
	// OK, NotFound and SignatureRejected list the codes of each outcome.
	OK                []string `yaml:"ok"`
	NotFound          []string `yaml:"not_found"`
	SignatureRejected []string `yaml:"signature_rejected"`
	RequestID         Field    `yaml:"request_id"`
	Match             Field    `yaml:"match"`
	IDNumber          Field    `yaml:"id_number"`
	Name              Field    `yaml:"name"`
	HealthCode        Field    `yaml:"health_code"`
	NATResult         Field    `yaml:"nat_result"`
	NATSampledAt      Field    `yaml:"nat_sampled_at"`
	NATReportedAt     Field    `yaml:"nat_reported_at"`
	VaccineDoses      Field    `yaml:"vaccine_doses"`
	VaccineLastDate   Field    `yaml:"vaccine_last_date"`
	// ServerTime is the platform's clock in the answer (optional; the HTTP Date header
	// serves when it is absent).
	ServerTime Field `yaml:"server_time"`
}

// Field is one answer field: its JSON path, an optional value map (platform value → Sentinel
// value), and for times the layout and the UTC offset of a layout without a zone.
type Field struct {
	Path      string            `yaml:"path"`
	Values    map[string]string `yaml:"values"`
	Layout    string            `yaml:"layout"`     // Go time layout; RFC 3339 when empty
	UTCOffset string            `yaml:"utc_offset"` // e.g. +08:00
}

// Placeholders a request value may use.
var placeholders = []string{"${qr_token}", "${id_number}", "${name}", "${face_jpeg_base64}", "${device}", "${venue}"}

// LoadMapping reads a mapping file; an empty path gives the reference mapping.
func LoadMapping(path string) (*Mapping, error) {
	if path == "" {
		return ParseMapping(referenceMapping)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%w: read %s: %v", ErrMapping, path, err)
	}
	m, err := ParseMapping(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseMapping decodes a mapping strictly, fills default header names and checks it. The
// error lists every problem, each naming its key.
func ParseMapping(b []byte) (*Mapping, error) {
	var m Mapping
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the mapping is empty", ErrMapping)
		}
		return nil, fmt.Errorf("%w: %v", ErrMapping, err)
	}
	m.defaults()
	if probs := m.Problems(); len(probs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrMapping, strings.Join(probs, "; "))
	}
	return &m, nil
}

func (m *Mapping) defaults() {
	h := &m.Headers
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&h.Device, "X-Sentinel-Device")
	def(&h.Venue, "X-Sentinel-Venue")
	def(&h.Passage, "X-Sentinel-Passage")
	def(&h.AppKey, "X-App-Key")
	def(&h.Timestamp, "X-Timestamp")
	def(&h.Nonce, "X-Nonce")
	def(&h.Signature, "X-Signature")
	def(&h.SignMethod, "X-Sign-Method")
	def(&h.TimestampUnit, "ms")
	def(&h.RequestID, "X-Request-Id")
	for _, e := range []*Endpoint{&m.Endpoints.Ping, &m.Endpoints.QR, &m.Endpoints.IDCard, &m.Endpoints.Face} {
		if e.Method == "" && e.Path != "" {
			e.Method = "POST"
			if e == &m.Endpoints.Ping {
				e.Method = "GET"
			}
		}
		e.Method = strings.ToUpper(e.Method)
	}
}

var pathRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_\-]*(\[\d+\])*(\.[A-Za-z_][A-Za-z0-9_\-]*(\[\d+\])*)*$`)

// Problems lists what is wrong with m, each naming its key (e.g. response.health_code.path).
func (m *Mapping) Problems() []string {
	var ps []string
	add := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }
	eps := []struct {
		key string
		e   Endpoint
		req bool
	}{{"ping", m.Endpoints.Ping, true}, {"qr", m.Endpoints.QR, true}, {"idcard", m.Endpoints.IDCard, true}, {"face", m.Endpoints.Face, false}}
	for _, e := range eps {
		switch {
		case e.e.Path == "" && e.req:
			add("endpoints.%s.path is required", e.key)
		case e.e.Path != "" && !strings.HasPrefix(e.e.Path, "/"):
			add("endpoints.%s.path must start with /, got %q", e.key, e.e.Path)
		case e.e.Path != "" && e.e.Method != "GET" && e.e.Method != "POST":
			add("endpoints.%s.method must be GET or POST, got %q", e.key, e.e.Method)
		}
	}
	if m.Headers.TimestampUnit != "ms" && m.Headers.TimestampUnit != "s" {
		add("headers.timestamp_unit must be ms or s, got %q", m.Headers.TimestampUnit)
	}
	kinds := map[string]string{KindQR: "${qr_token}", KindIDCard: "${id_number}", KindFace: "${face_jpeg_base64}"}
	for kind := range m.Request {
		if _, ok := kinds[kind]; !ok {
			add("request.%s: unknown credential kind (known: face, idcard, qr)", kind)
		}
	}
	for _, kind := range []string{KindQR, KindIDCard, KindFace} {
		body, ok := m.Request[kind]
		if !ok {
			if kind != KindFace || m.Endpoints.Face.Path != "" {
				add("request.%s is required", kind)
			}
			continue
		}
		hasCred := false
		for p, v := range body {
			if !pathRE.MatchString(p) || strings.Contains(p, "[") {
				add("request.%s: %q is not a dotted JSON path", kind, p)
			}
			if strings.HasPrefix(v, "${") && !slices.Contains(placeholders, v) {
				add("request.%s.%s: unknown placeholder %s (known: %s)", kind, p, v, strings.Join(placeholders, ", "))
			}
			if v == kinds[kind] {
				hasCred = true
			}
		}
		if !hasCred {
			add("request.%s must carry %s", kind, kinds[kind])
		}
	}
	r := &m.Response
	for _, f := range r.fields() {
		switch {
		case f.f.Path == "" && f.required:
			add("response.%s.path is required", f.key)
		case f.f.Path != "" && !pathRE.MatchString(f.f.Path):
			add("response.%s.path %q is not a JSON path like data.nat.sampled_at or items[0].code", f.key, f.f.Path)
		}
		if f.f.UTCOffset != "" {
			if _, err := parseOffset(f.f.UTCOffset); err != nil {
				add("response.%s.utc_offset: %v", f.key, err)
			}
		}
	}
	if len(r.OK) == 0 {
		add("response.ok must list at least one success code")
	}
	for _, v := range r.Match.Values {
		if v != "true" && v != "false" {
			add("response.match.values must map to true or false, got %q", v)
		}
	}
	for _, v := range r.HealthCode.Values {
		if v != "green" && v != "yellow" && v != "red" {
			add("response.health_code.values must map to green, yellow or red, got %q", v)
		}
	}
	for _, v := range r.NATResult.Values {
		if v != "negative" && v != "positive" {
			add("response.nat_result.values must map to negative or positive, got %q", v)
		}
	}
	if len(ps) == 0 && m.Sample != "" {
		ps = append(ps, m.checkSample()...)
	}
	sort.Strings(ps)
	return ps
}

type namedField struct {
	key      string
	f        Field
	required bool
}

func (r *Response) fields() []namedField {
	return []namedField{
		{"code", r.Code, true}, {"request_id", r.RequestID, false}, {"match", r.Match, true},
		{"id_number", r.IDNumber, false}, {"name", r.Name, false}, {"health_code", r.HealthCode, true},
		{"nat_result", r.NATResult, true}, {"nat_sampled_at", r.NATSampledAt, true},
		{"nat_reported_at", r.NATReportedAt, false}, {"vaccine_doses", r.VaccineDoses, true},
		{"vaccine_last_date", r.VaccineLastDate, false}, {"server_time", r.ServerTime, false},
	}
}

// checkSample resolves every configured response path in the sample answer.
func (m *Mapping) checkSample() []string {
	doc, err := decodeJSON([]byte(m.Sample))
	if err != nil {
		return []string{"sample is not JSON: " + jsonErrNoData(err)}
	}
	var ps []string
	for _, f := range m.Response.fields() {
		if f.f.Path == "" {
			continue
		}
		if _, ok, _ := lookup(doc, f.f.Path); !ok {
			ps = append(ps, fmt.Sprintf("response.%s.path %q points at nothing in the sample answer", f.key, f.f.Path))
		}
	}
	if len(ps) == 0 {
		if _, err := m.ParseAnswer([]byte(m.Sample)); err != nil {
			ps = append(ps, "the sample answer does not parse: "+err.Error())
		}
	}
	return ps
}

// Endpoint returns the endpoint of a credential kind or "ping".
func (m *Mapping) Endpoint(kind string) (Endpoint, bool) {
	var e Endpoint
	switch kind {
	case "ping":
		e = m.Endpoints.Ping
	case KindQR:
		e = m.Endpoints.QR
	case KindIDCard:
		e = m.Endpoints.IDCard
	case KindFace:
		e = m.Endpoints.Face
	}
	return e, e.Path != ""
}

// BuildRequest renders the request body for cred. The body holds personal data.
func (m *Mapping) BuildRequest(cred Credential, device, venue string) ([]byte, error) {
	tmpl, ok := m.Request[cred.Kind]
	if !ok {
		return nil, fmt.Errorf("%w: no request.%s in the mapping", ErrMapping, cred.Kind)
	}
	root := map[string]any{}
	keys := make([]string, 0, len(tmpl))
	for k := range tmpl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, p := range keys {
		v := tmpl[p]
		switch v {
		case "${qr_token}":
			v = cred.QRToken
		case "${id_number}":
			v = cred.IDNumber
		case "${name}":
			v = cred.Name
		case "${face_jpeg_base64}":
			v = base64.StdEncoding.EncodeToString(cred.FaceJPEG)
		case "${device}":
			v = device
		case "${venue}":
			v = venue
		}
		if err := setPath(root, p, v); err != nil {
			return nil, err
		}
	}
	return json.Marshal(root)
}

func setPath(root map[string]any, path, v string) error {
	parts := strings.Split(path, ".")
	cur := root
	for _, k := range parts[:len(parts)-1] {
		next, ok := cur[k]
		if !ok {
			n := map[string]any{}
			cur[k] = n
			cur = n
			continue
		}
		n, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: request path %q crosses a value", ErrMapping, path)
		}
		cur = n
	}
	last := parts[len(parts)-1]
	if _, dup := cur[last]; dup {
		return fmt.Errorf("%w: request path %q is set twice", ErrMapping, path)
	}
	cur[last] = v
	return nil
}

// decodeJSON decodes one JSON value with numbers kept as text.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &json.SyntaxError{Offset: dec.InputOffset()}
	}
	return v, nil
}

// lookup resolves a dotted path with [N] indexes. ok is false when a step is missing or the
// value is null; err is set when a step crosses a value of the wrong kind.
func lookup(doc any, path string) (v any, ok bool, err error) {
	cur := doc
	for _, part := range strings.Split(path, ".") {
		name := part
		var idx []int
		if i := strings.IndexByte(part, '['); i >= 0 {
			name = part[:i]
			for _, s := range strings.Split(strings.TrimSuffix(part[i+1:], "]"), "][") {
				n, cerr := strconv.Atoi(s)
				if cerr != nil {
					return nil, false, fmt.Errorf("bad index in %s", path)
				}
				idx = append(idx, n)
			}
		}
		obj, isObj := cur.(map[string]any)
		if !isObj {
			if cur == nil {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("%s: %s is not an object", path, name)
		}
		if cur, ok = obj[name]; !ok {
			return nil, false, nil
		}
		for _, n := range idx {
			arr, isArr := cur.([]any)
			if !isArr {
				if cur == nil {
					return nil, false, nil
				}
				return nil, false, fmt.Errorf("%s: %s is not an array", path, name)
			}
			if n >= len(arr) {
				return nil, false, nil
			}
			cur = arr[n]
		}
	}
	return cur, cur != nil, nil
}

// scalar reads field f of doc as text: strings as they are, numbers as written, booleans as
// true/false. present is false when the path resolves to nothing or null.
func scalar(doc any, key string, f Field) (s string, present bool, err error) {
	if f.Path == "" {
		return "", false, nil
	}
	v, ok, err := lookup(doc, f.Path)
	if err != nil {
		return "", false, fmt.Errorf("%w: %s: %v", ErrBadResponse, key, err)
	}
	if !ok {
		return "", false, nil
	}
	switch x := v.(type) {
	case string:
		return x, true, nil
	case json.Number:
		return x.String(), true, nil
	case bool:
		return strconv.FormatBool(x), true, nil
	default:
		return "", false, fmt.Errorf("%w: %s (%s) is an object or array, want a value", ErrBadResponse, key, f.Path)
	}
}

// mapped applies f's value map; ok is false for a value the map does not know.
func (f Field) mapped(raw string) (string, bool) {
	if len(f.Values) == 0 {
		return raw, true
	}
	v, ok := f.Values[raw]
	return v, ok
}

func (f Field) time(key, raw string) (time.Time, error) {
	if raw == "" {
		return time.Time{}, nil
	}
	layout := f.Layout
	if layout == "" {
		layout = time.RFC3339
	}
	loc := time.UTC
	if f.UTCOffset != "" {
		off, err := parseOffset(f.UTCOffset)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %s: %v", ErrBadResponse, key, err)
		}
		loc = time.FixedZone(f.UTCOffset, off)
	}
	t, err := time.ParseInLocation(layout, raw, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s is not a time in layout %q (%d characters)", ErrBadResponse, key, layout, len(raw))
	}
	return t, nil
}

func parseOffset(s string) (int, error) {
	t, err := time.Parse("-07:00", s)
	if err != nil {
		return 0, fmt.Errorf("want an offset like +08:00, got %q", s)
	}
	_, off := t.Zone()
	return off, nil
}

// AnswerCode reads the code and request id of any answer, best effort (for errors).
func (m *Mapping) AnswerCode(raw []byte) (code, requestID string) {
	doc, err := decodeJSON(raw)
	if err != nil {
		return "", ""
	}
	code, _, _ = scalar(doc, "code", m.Response.Code)
	requestID, _, _ = scalar(doc, "request_id", m.Response.RequestID)
	return code, requestID
}

// ParseAnswer reads a 200 answer by the mapping. A body that is not JSON, a code that is not a
// success code, a missing or mistyped required field, or a value the value map does not know
// (except a health-code colour or a test result, which the policy judges) is ErrBadResponse;
// a not-found code is ErrUnknownCredential; a signature-rejected code is
// ErrSignatureRejected.
func (m *Mapping) ParseAnswer(raw []byte) (Result, error) {
	doc, err := decodeJSON(raw)
	if err != nil {
		return Result{}, fmt.Errorf("%w: not JSON: %v", ErrBadResponse, jsonErrNoData(err))
	}
	if _, isObj := doc.(map[string]any); !isObj {
		return Result{}, fmt.Errorf("%w: the answer is not a JSON object", ErrBadResponse)
	}
	r := &m.Response
	code, present, err := scalar(doc, "code", r.Code)
	if err != nil {
		return Result{}, err
	}
	var res Result
	res.RequestID, _, _ = scalar(doc, "request_id", r.RequestID)
	switch {
	case !present:
		return res, fmt.Errorf("%w: no %s", ErrBadResponse, r.Code.Path)
	case slices.Contains(r.NotFound, code):
		return res, ErrUnknownCredential
	case slices.Contains(r.SignatureRejected, code):
		return res, fmt.Errorf("%w: code %q", ErrSignatureRejected, code)
	case !slices.Contains(r.OK, code):
		return res, fmt.Errorf("%w: code %q in a 200 answer", ErrBadResponse, code)
	}

	match, present, err := scalar(doc, "match", r.Match)
	if err != nil {
		return res, err
	}
	if !present {
		return res, fmt.Errorf("%w: no %s", ErrBadResponse, r.Match.Path)
	}
	mv, ok := r.Match.mapped(match)
	if !ok || (mv != "true" && mv != "false") {
		return res, fmt.Errorf("%w: %s has an unknown value (%d characters)", ErrBadResponse, r.Match.Path, len(match))
	}
	res.Identity.Match = mv == "true"
	if res.Identity.IDNumber, _, err = scalar(doc, "id_number", r.IDNumber); err != nil {
		return res, err
	}
	if res.Identity.Name, _, err = scalar(doc, "name", r.Name); err != nil {
		return res, err
	}

	hc, present, err := scalar(doc, "health_code", r.HealthCode)
	if err != nil {
		return res, err
	}
	if !present {
		return res, fmt.Errorf("%w: no %s", ErrBadResponse, r.HealthCode.Path)
	}
	if v, ok := r.HealthCode.mapped(hc); ok {
		res.HealthCode = v
	} else {
		res.HealthCode = "" // a colour the mapping does not know: the policy denies health_code_unknown
	}

	natRes, present, err := scalar(doc, "nat_result", r.NATResult)
	if err != nil {
		return res, err
	}
	sampled, sPresent, err := scalar(doc, "nat_sampled_at", r.NATSampledAt)
	if err != nil {
		return res, err
	}
	if present || sPresent {
		n := &NAT{Result: natRes}
		if v, ok := r.NATResult.mapped(natRes); ok {
			n.Result = v
		} else {
			n.Result = "unmapped" // the policy denies nat_unknown
		}
		if n.SampledAt, err = r.NATSampledAt.time("nat_sampled_at", sampled); err != nil {
			return res, err
		}
		reported, _, err := scalar(doc, "nat_reported_at", r.NATReportedAt)
		if err != nil {
			return res, err
		}
		if n.ReportedAt, err = r.NATReportedAt.time("nat_reported_at", reported); err != nil {
			return res, err
		}
		res.NAT = n
	}

	doses, present, err := scalar(doc, "vaccine_doses", r.VaccineDoses)
	if err != nil {
		return res, err
	}
	if present {
		if v, ok := r.VaccineDoses.mapped(doses); ok {
			doses = v
		}
		n, cerr := strconv.Atoi(doses)
		if cerr != nil || n < 0 || n > 20 {
			return res, fmt.Errorf("%w: %s is not a number of doses", ErrBadResponse, r.VaccineDoses.Path)
		}
		last, _, err := scalar(doc, "vaccine_last_date", r.VaccineLastDate)
		if err != nil {
			return res, err
		}
		res.Vaccine = &Vaccine{Doses: n, LastDate: last}
	}
	// The platform's clock is only a hint for a unit whose own clock is wrong: a value that
	// does not parse is ignored (the Date header serves instead), never a bad response.
	if st, present, _ := scalar(doc, "server_time", r.ServerTime); present {
		if t, err := r.ServerTime.time("server_time", st); err == nil {
			res.ServerTime = t
		}
	}
	return res, nil
}
