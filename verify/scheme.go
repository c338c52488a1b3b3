package verify

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/emmansun/gmsm/sm2"

	"github.com/sentinel-edge/sentinel/verify/signing"
)

// Signing is a mapping's signing section: how the platform wants requests signed. See
// docs/docking-spec.md, "Signing". Without one, the reference scheme applies: the canonical
// string under platform.signing, in the headers the Headers section names.
type Signing struct {
	// String is what is signed: canonical (default), sorted or template.
	String string `yaml:"string"`
	// Template is the string of a template scheme, with ${app_key}, ${secret}, ${timestamp},
	// ${nonce}, ${body}, ${method} and ${path}.
	Template string `yaml:"template"`
	// Exclude lists parameters a sorted string leaves out (the signature always is).
	Exclude []string `yaml:"exclude"`
	// Suffix is appended to a sorted string, e.g. "&key=${secret}".
	Suffix string `yaml:"suffix"`
	// Algorithm is hmac-sha256, hmac-sm3, md5, sha256, sm3 or sm2.
	Algorithm string `yaml:"algorithm"`
	// Encoding of the signature: hex (default), hex_upper or base64.
	Encoding string `yaml:"encoding"`
	// Put is where the signature goes: header:NAME, body:FIELD or query:NAME.
	Put        string        `yaml:"put"`
	Timestamp  SignTimestamp `yaml:"timestamp"`
	Nonce      SignPut       `yaml:"nonce"`
	AppKey     SignPut       `yaml:"app_key"`
	SignMethod SignMethod    `yaml:"sign_method"`
	// KeyFile is the PEM SM2 private key of algorithm sm2 (relative to the mapping file's
	// directory). Without it, platform.secret_file holds the private key.
	KeyFile string `yaml:"key_file"`
}

// SignPut says where a value goes: header:NAME, body:FIELD or query:NAME; empty: not sent.
type SignPut struct {
	Put string `yaml:"put"`
}

// SignMethod is an optional field naming the algorithm, as some platforms want.
type SignMethod struct {
	Put   string `yaml:"put"`
	Value string `yaml:"value"` // default: the algorithm
}

// SignTimestamp is where the timestamp goes and how it is written: Unix seconds or
// milliseconds (unit: s|ms, default ms), or a Go layout in a zone (utc_offset).
type SignTimestamp struct {
	Put       string `yaml:"put"`
	Unit      string `yaml:"unit"`
	Layout    string `yaml:"layout"`
	UTCOffset string `yaml:"utc_offset"`
}

// Put targets.
const (
	PutHeader = "header"
	PutBody   = "body"
	PutQuery  = "query"
)

// target is a parsed put: where and under which name.
type target struct{ where, name string }

func (t target) String() string { return t.where + ":" + t.name }

var (
	headerNameRE = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+\-.^_|~]+$`)
	fieldNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_\-]*$`)
)

// parseTarget reads header:NAME, body:FIELD or query:NAME.
func parseTarget(s string) (target, error) {
	where, name, ok := strings.Cut(s, ":")
	if !ok {
		return target{}, fmt.Errorf("%q is not a target: write header:NAME, body:FIELD or query:NAME", s)
	}
	t := target{where: where, name: name}
	switch where {
	case PutHeader:
		if !headerNameRE.MatchString(name) {
			return t, fmt.Errorf("%q: %q is not a header name", s, name)
		}
		t.name = http.CanonicalHeaderKey(name)
	case PutBody, PutQuery:
		if !fieldNameRE.MatchString(name) {
			return t, fmt.Errorf("%q: %q is not a top-level field name", s, name)
		}
	default:
		return t, fmt.Errorf("%q: %q is not a target (header, body or query)", s, where)
	}
	return t, nil
}

// legacySigning is the reference scheme as a signing section: the canonical string under
// alg (platform.signing: hmac-sha256 or sm3-hmac), hex, in the headers of h, the timestamp
// in h.TimestampUnit, and the algorithm's name in h.SignMethod.
func legacySigning(h Headers, alg string) *Signing {
	a := signing.HMACSHA256
	if alg == SignSM3HMAC {
		a = signing.HMACSM3
	}
	hdr := func(name string) string { return PutHeader + ":" + name }
	return &Signing{
		String: signing.Canonical, Algorithm: a, Encoding: signing.Hex, Put: hdr(h.Signature),
		Timestamp:  SignTimestamp{Put: hdr(h.Timestamp), Unit: h.TimestampUnit},
		Nonce:      SignPut{Put: hdr(h.Nonce)},
		AppKey:     SignPut{Put: hdr(h.AppKey)},
		SignMethod: SignMethod{Put: hdr(h.SignMethod), Value: alg},
	}
}

// signingString is the string the section signs, with placeholders: the template, or the
// suffix of a sorted string.
func (s *Signing) signingString() string {
	if s.String == signing.Template {
		return s.Template
	}
	return s.Suffix
}

// signingProblems checks the signing section: known string kind, algorithm and encoding;
// targets that exist and do not collide; placeholders that exist; a digest that covers the
// secret; a signature that is not put inside what it signs.
func (m *Mapping) signingProblems(l *problemList) {
	s := m.Signing
	if s == nil {
		return
	}
	if !slices.Contains(signing.Kinds, s.String) {
		l.add("signing.string", "must be one of %s, got %q", strings.Join(signing.Kinds, ", "), s.String)
	}
	switch {
	case s.Algorithm == "":
		l.add("signing.algorithm", "is required (one of %s)", strings.Join(signing.Algorithms, ", "))
	case !slices.Contains(signing.Algorithms, s.Algorithm):
		l.add("signing.algorithm", "is an unknown algorithm %q (known: %s)", s.Algorithm, strings.Join(signing.Algorithms, ", "))
	}
	if !slices.Contains(signing.Encodings, s.Encoding) {
		l.add("signing.encoding", "must be one of %s, got %q", strings.Join(signing.Encodings, ", "), s.Encoding)
	}
	m.signingTextProblems(l)
	m.signingTargetProblems(l)
	if ts := s.Timestamp; ts.Layout != "" {
		if ts.Unit != "" {
			l.add("signing.timestamp.unit", "and signing.timestamp.layout exclude each other")
		}
		if err := checkLayout(ts.Layout); err != nil || ts.Layout == LayoutRFC3339 || ts.Layout == LayoutUnixS || ts.Layout == LayoutUnixMS {
			if err == nil {
				err = fmt.Errorf("%q: write unit: s or unit: ms for Unix times, or a Go layout", ts.Layout)
			}
			l.add("signing.timestamp.layout", "%v", err)
		}
	} else if ts.Unit != "" && ts.Unit != "s" && ts.Unit != "ms" {
		l.add("signing.timestamp.unit", "must be s or ms, got %q", ts.Unit)
	}
	if off := s.Timestamp.UTCOffset; off != "" {
		if _, err := parseOffset(off); err != nil {
			l.add("signing.timestamp.utc_offset", "%v", err)
		} else if s.Timestamp.Layout == "" {
			l.add("signing.timestamp.utc_offset", "is only for a timestamp with a layout")
		}
	}
	if s.KeyFile != "" && s.Algorithm != signing.SM2 {
		l.add("signing.key_file", "is only for algorithm sm2, got %s", s.Algorithm)
	}
}

// signingTextProblems checks what is signed: the template or suffix and their placeholders.
func (m *Mapping) signingTextProblems(l *problemList) {
	s := m.Signing
	switch {
	case s.String == signing.Template && s.Template == "":
		l.add("signing.template", "is required with string: template, e.g. \"${app_key}${timestamp}${secret}${body}\"")
	case s.String != signing.Template && s.Template != "":
		l.add("signing.template", "is only for string: template (string is %s)", s.String)
	}
	if s.String != signing.Sorted {
		if s.Suffix != "" {
			l.add("signing.suffix", "is only for string: sorted (string is %s)", s.String)
		}
		if len(s.Exclude) > 0 {
			l.add("signing.exclude", "is only for string: sorted (string is %s)", s.String)
		}
	}
	for _, k := range []string{"template", "suffix"} {
		v := s.Template
		if k == "suffix" {
			v = s.Suffix
		}
		if bad := signing.UnknownPlaceholders(v); len(bad) > 0 {
			l.add("signing."+k, "has an unknown placeholder %s (known: %s)", strings.Join(bad, ", "), strings.Join(signing.Placeholders, ", "))
		}
	}
	text := s.signingString()
	key := "signing." + map[bool]string{true: "template", false: "suffix"}[s.String == signing.Template]
	switch {
	case signing.Digest(s.Algorithm) && s.String == signing.Canonical:
		l.add("signing.algorithm", "%s is a bare digest: the canonical string holds no secret; use hmac-sha256 or hmac-sm3, or a template or sorted string with ${secret}", s.Algorithm)
	case signing.Digest(s.Algorithm) && !strings.Contains(text, "${secret}"):
		l.add(key, "must hold ${secret}: %s is a bare digest, and a signature without the secret proves nothing", s.Algorithm)
	case s.Algorithm == signing.SM2 && s.KeyFile == "" && strings.Contains(text, "${secret}"):
		l.add(key, "uses ${secret}, but with sm2 and no signing.key_file platform.secret_file holds the private key: name the key in signing.key_file")
	}
}

// signingTargetProblems checks every put: it exists, nothing is put twice, a body field does
// not collide with a request field, and the signature is not put inside what it signs.
func (m *Mapping) signingTargetProblems(l *problemList) {
	s := m.Signing
	seen := map[target]string{}
	puts := []struct{ key, v string }{
		{"signing.put", s.Put}, {"signing.timestamp.put", s.Timestamp.Put}, {"signing.nonce.put", s.Nonce.Put},
		{"signing.app_key.put", s.AppKey.Put}, {"signing.sign_method.put", s.SignMethod.Put},
	}
	for _, p := range puts {
		if p.v == "" {
			if p.key == "signing.put" {
				l.add(p.key, "is required: where the signature goes (header:NAME, body:FIELD or query:NAME)")
			}
			continue
		}
		t, err := parseTarget(p.v)
		if err != nil {
			l.add(p.key, "%v", err)
			continue
		}
		if prev, dup := seen[t]; dup {
			l.add(p.key, "puts %s, as %s does", t, prev)
		}
		seen[t] = p.key
		if t.where == PutBody {
			for kind, body := range m.Request {
				for path := range body {
					if strings.Split(path, ".")[0] == t.name {
						l.add(p.key, "puts body field %s, which request.%s.%s already sets", t.name, kind, path)
					}
				}
			}
		}
	}
	sig, err := parseTarget(s.Put)
	if err != nil || sig.where != PutBody {
		return
	}
	switch {
	case s.String == signing.Canonical:
		l.add("signing.put", "puts the signature in the body, but the canonical string signs the body: put it in a header or the query")
	case s.String == signing.Template && strings.Contains(s.Template, "${body}"):
		l.add("signing.put", "puts the signature in the body, but the template signs ${body}: put it in a header or the query")
	}
}

// SigningAlgorithm names how requests are signed, for reports: the section's algorithm
// and string, or the reference scheme's under configAlg (platform.signing).
func (m *Mapping) SigningAlgorithm(configAlg string) string {
	if s := m.Signing; s != nil {
		return s.String + " " + s.Algorithm + " " + s.Encoding + " → " + s.Put
	}
	return "canonical " + configAlg + " hex → header:" + m.Headers.Signature
}

// SigningConflict says whether platform.signing contradicts the mapping's signing section.
// The section decides when it is there; platform.signing may then only name the same
// algorithm (hmac-sha256 for hmac-sha256, sm3-hmac for hmac-sm3).
func (m *Mapping) SigningConflict(configAlg string) error {
	s := m.Signing
	if s == nil || configAlg == "" {
		return nil
	}
	same := map[string]string{SignHMACSHA256: signing.HMACSHA256, SignSM3HMAC: signing.HMACSM3}[configAlg]
	if same == s.Algorithm {
		return nil
	}
	return fmt.Errorf("is %q, but the mapping %s signs with %s (signing.algorithm, line %d): the mapping's signing section decides; remove platform.signing", configAlg, m.Name, s.Algorithm, m.Line("signing.algorithm"))
}

// NewMappingSigner returns the signer of a unit on the platform of m: with a signing
// section, its scheme (an sm2 private key read from signing.key_file, or from secret when
// the section has no key file); without one, the reference scheme under configAlg
// (platform.signing). secret is platform.secret_file's content. Errors name the key to fix.
func NewMappingSigner(m *Mapping, configAlg, appKey string, secret []byte) (*Signer, error) {
	s := m.Signing
	if s == nil {
		sg, err := NewSigner(configAlg, appKey, secret)
		if err != nil {
			return nil, fmt.Errorf("platform.signing: %w", err)
		}
		return sg, nil
	}
	if s.AppKey.Put != "" && appKey == "" {
		return nil, fmt.Errorf("platform.app_key: %w: is required: the mapping puts it at %s", ErrSigning, s.AppKey.Put)
	}
	if len(strings.TrimSpace(string(secret))) == 0 {
		return nil, fmt.Errorf("platform.secret_file: %w: the secret is empty", ErrSigning)
	}
	sg := &Signer{Algorithm: s.Algorithm, AppKey: appKey, secret: []byte(strings.TrimSpace(string(secret)))}
	if s.Algorithm != signing.SM2 {
		return sg, nil
	}
	key, err := m.loadSM2Key(secret)
	if err != nil {
		return nil, err
	}
	sg.sm2, sg.secret = key, nil
	if s.KeyFile != "" {
		sg.secret = []byte(strings.TrimSpace(string(secret)))
	}
	return sg, nil
}

// loadSM2Key reads the sm2 private key: signing.key_file, or platform.secret_file's content.
func (m *Mapping) loadSM2Key(secret []byte) (*sm2.PrivateKey, error) {
	if m.Signing.KeyFile == "" {
		k, err := signing.ParseSM2PrivateKey(secret)
		if err != nil {
			return nil, fmt.Errorf("platform.secret_file: %w (with sm2 and no signing.key_file, it holds the private key)", err)
		}
		return k, nil
	}
	where := fmt.Sprintf("platform.mapping: %s: line %d: signing.key_file", m.displayFile(), m.Line("signing.key_file"))
	path := m.resolvePath(m.Signing.KeyFile)
	b, err := ReadSecretFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	k, err := signing.ParseSM2PrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", where, path, err)
	}
	return k, nil
}

func (m *Mapping) displayFile() string {
	if m.file == "" {
		return "(mapping)"
	}
	return m.file
}

// CheckKeyFile reads and parses the sm2 private key the signing section names, for
// `sentinel check`; nil when the section names none.
func (m *Mapping) CheckKeyFile() error {
	if m.Signing == nil || m.Signing.KeyFile == "" {
		return nil
	}
	_, err := m.loadSM2Key(nil)
	return err
}
