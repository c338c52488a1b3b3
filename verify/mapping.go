package verify

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sentinel-edge/sentinel/internal/secretfile"
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
// how values translate into Sentinel's words ("1" → green), how the request is encoded and
// signed. See docs/docking-spec.md, "Field mapping" and "Signing".
type Mapping struct {
	Name      string    `yaml:"name"`
	Endpoints Endpoints `yaml:"endpoints"`
	Headers   Headers   `yaml:"headers"`
	// Request maps each credential kind to its body: JSON path → value, where a value is a
	// literal or one of ${qr_token}, ${id_number}, ${name}, ${face_jpeg_base64}, ${device},
	// ${venue}.
	Request  map[string]map[string]string `yaml:"request"`
	Response Response                     `yaml:"response"`
	// Signing says how the platform wants requests signed; nil keeps the reference scheme
	// (the canonical string under platform.signing, in the headers of Headers).
	Signing *Signing `yaml:"signing"`
	// Sample is an example 200 answer; when set, every response path, value map and time
	// must resolve in it (sentinel check reports what does not).
	Sample string `yaml:"sample"`

	file  string         // the file it was read from; empty for bytes
	raw   []byte         // its bytes, for Hash
	lines map[string]int // dotted key → line in the file
}

// Endpoints are the interface's operations.
type Endpoints struct {
	Ping   Endpoint `yaml:"ping"`
	QR     Endpoint `yaml:"qr"`
	IDCard Endpoint `yaml:"idcard"`
	Face   Endpoint `yaml:"face"`
	// FaceSearch is the 1:N face search (docking interface v3); optional: a platform without
	// it has no face-only passage.
	FaceSearch Endpoint `yaml:"face_search"`
}

// Request encodings (endpoints.<op>.encoding).
const (
	EncodingJSON  = "json"  // a JSON body (the default of a POST)
	EncodingForm  = "form"  // an application/x-www-form-urlencoded body
	EncodingQuery = "query" // the fields in the URL's query, no body (the default of a GET)
)

// Endpoint is one operation: method and path below platform.url, and how its fields travel.
type Endpoint struct {
	Method   string `yaml:"method"`
	Path     string `yaml:"path"`
	Encoding string `yaml:"encoding"`
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
	// Score is a face search's match score, a number from 0 to 1 (response.score; required
	// when endpoints.face_search is set). Scale multiplies it first (0.01 for a platform
	// that scores 0–100).
	Score Field `yaml:"score"`
}

// Time layouts that are keywords rather than Go layouts.
const (
	LayoutRFC3339 = "rfc3339" // the default
	LayoutUnixS   = "unix_s"  // seconds since 1970, a JSON number or a string
	LayoutUnixMS  = "unix_ms" // milliseconds since 1970, a JSON number or a string
)

// Field is one answer field: its JSON path, an optional value map (platform value → Sentinel
// value), for times the layout and the UTC offset of a layout without a zone, and for a path
// with [] the element's field that says which element is the newest.
type Field struct {
	Path   string            `yaml:"path"`
	Values map[string]string `yaml:"values"`
	// Layout is rfc3339 (default, also when empty), unix_s, unix_ms or a Go layout.
	Layout    string `yaml:"layout"`
	UTCOffset string `yaml:"utc_offset"` // e.g. +08:00, for a Go layout without a zone
	// NewestBy is the path, inside each element of the array the path's [] stands for, of
	// the value that orders them: the element with the latest one is read.
	NewestBy string `yaml:"newest_by"`
	// Scale multiplies a number field (response.score only); 0 means 1.
	Scale float64 `yaml:"scale"`
}

// Placeholders a request value may use.
var placeholders = []string{"${qr_token}", "${id_number}", "${name}", "${face_jpeg_base64}", "${device}", "${venue}"}

// LoadMapping reads a mapping file; an empty path gives the reference mapping.
func LoadMapping(path string) (*Mapping, error) {
	if path == "" {
		return ParseMapping(referenceMapping)
	}
	// A regular file of at most 1 MiB, as the config: a FIFO would hang the unit's start, a
	// device would be read for ever.
	b, err := secretfile.Read(path, secretfile.Options{Public: true, MaxSize: maxMappingSize})
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMapping, strings.TrimPrefix(err.Error(), "secretfile: "))
	}
	return parseMapping(path, b)
}

// maxMappingSize bounds a mapping file: far more than any platform's.
const maxMappingSize = 1 << 20

// ParseMapping decodes a mapping strictly, fills defaults and checks it. The error is a
// *MappingError that lists every problem, each naming its key and line.
func ParseMapping(b []byte) (*Mapping, error) { return parseMapping("", b) }

func parseMapping(file string, b []byte) (*Mapping, error) {
	fail := func(ps ...Problem) (*Mapping, error) { return nil, &MappingError{File: file, Problems: ps} }
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return fail(yamlMappingProblem(err.Error()))
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return fail(Problem{Msg: "the mapping is empty"})
	}
	m := &Mapping{file: file, raw: slices.Clone(b), lines: map[string]int{}}
	var ps []Problem
	walkKeys(root.Content[0], "", mappingType, m.lines, &ps)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(m); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return fail(yamlMappingProblem(err.Error()))
		}
		for _, msg := range te.Errors {
			if !strings.Contains(msg, "not found in type") { // walkKeys named it with its key
				ps = append(ps, typeProblem(yamlMappingProblem(msg), &root))
			}
		}
	}
	if len(ps) > 0 {
		return fail(ps...)
	}
	m.defaults()
	if ps := m.problems(); len(ps) > 0 {
		return fail(ps...)
	}
	return m, nil
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
	for _, e := range []*Endpoint{&m.Endpoints.Ping, &m.Endpoints.QR, &m.Endpoints.IDCard, &m.Endpoints.Face, &m.Endpoints.FaceSearch} {
		if e.Method == "" && e.Path != "" {
			e.Method = "POST"
			if e == &m.Endpoints.Ping {
				e.Method = "GET"
			}
		}
		e.Method = strings.ToUpper(e.Method)
		if e.Encoding == "" {
			e.Encoding = EncodingJSON
			if e.Method == "GET" {
				e.Encoding = EncodingQuery
			}
		}
	}
	if s := m.Signing; s != nil {
		def(&s.String, "canonical")
		def(&s.Encoding, "hex")
		if s.Timestamp.Put != "" && s.Timestamp.Layout == "" {
			def(&s.Timestamp.Unit, "ms")
		}
		def(&s.SignMethod.Value, s.Algorithm)
	}
}

// File is the file the mapping was read from; empty for the reference mapping.
func (m *Mapping) File() string { return m.file }

// Hash identifies the mapping's bytes: "sha256:" and the SHA-256 of the file in hex.
func (m *Mapping) Hash() string {
	sum := sha256.Sum256(m.raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Line is the line of a dotted key in the mapping file (or of its nearest parent that is
// there); 0 when unknown.
func (m *Mapping) Line(key string) int {
	for k := key; k != ""; {
		if n, ok := m.lines[k]; ok {
			return n
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

// resolvePath is a path the mapping names (signing.key_file), relative to the mapping file's
// directory when it is not absolute.
func (m *Mapping) resolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) || m.file == "" {
		return p
	}
	return filepath.Join(filepath.Dir(m.file), p)
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
	case FaceSearch:
		e = m.Endpoints.FaceSearch
	}
	return e, e.Path != ""
}

// BuildRequest renders the request fields for cred as JSON (what a json endpoint sends
// before signing). The body holds personal data.
func (m *Mapping) BuildRequest(cred Credential, device, venue string) ([]byte, error) {
	fields, err := m.requestFields(&cred, device, venue)
	if err != nil {
		return nil, err
	}
	return json.Marshal(fields)
}

// Interface is the platform interface cred is asked on: its kind, or FaceSearch for a face
// that comes with no ID number (a face-only passage) when the mapping has
// endpoints.face_search. Without one, such a face goes to endpoints.face with an empty ID
// number, as in docking interface v2.
func (m *Mapping) Interface(cred Credential) string {
	if cred.Kind == KindFace && cred.IDNumber == "" && m.Endpoints.FaceSearch.Path != "" {
		return FaceSearch
	}
	return cred.Kind
}

// requestFields are the fields of cred's request: top-level name → string or nested object.
func (m *Mapping) requestFields(cred *Credential, device, venue string) (map[string]any, error) {
	root := map[string]any{}
	if cred == nil { // a ping
		return root, nil
	}
	tmpl, ok := m.Request[m.Interface(*cred)]
	if !ok {
		return nil, fmt.Errorf("%w: no request.%s in the mapping", ErrMapping, m.Interface(*cred))
	}
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
	return root, nil
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
