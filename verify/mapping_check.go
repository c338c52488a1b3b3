package verify

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a mapping: the dotted key it concerns (empty for the whole
// file), its line (0 when unknown) and a message that starts with the key.
type Problem struct {
	Line int
	Key  string
	Msg  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s", p.Line, p.Msg)
	}
	return p.Msg
}

// MappingError lists every problem of one mapping. errors.Is(err, ErrMapping) holds.
type MappingError struct {
	File     string // empty for bytes
	Problems []Problem
}

func (e *MappingError) Error() string {
	parts := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		s := p.String()
		if e.File != "" {
			s = e.File + ": " + s
		}
		parts = append(parts, s)
	}
	return ErrMapping.Error() + ": " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrMapping) true.
func (e *MappingError) Unwrap() error { return ErrMapping }

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func yamlMappingProblem(msg string) Problem {
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Problem{Line: n, Msg: m[2]}
	}
	return Problem{Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// typeProblem names the key of a value of the wrong type (yaml says only "line 3: cannot
// unmarshal !!seq into string"): the deepest key on that line whose value has that type, in
// words.
func typeProblem(p Problem, root *yaml.Node) Problem {
	m := yamlTypeRE.FindStringSubmatch(p.Msg)
	if m == nil {
		return p
	}
	p.Msg = fmt.Sprintf("is %s, want %s", yamlKind(m[1]), strings.TrimPrefix(m[3], "verify."))
	if p.Key = keyOfValue(root, "", p.Line, "!!"+m[1], m[2]); p.Key != "" {
		p.Msg = p.Key + ": " + p.Msg
	}
	return p
}

// keyOfValue finds the deepest key under n whose value starts on line and has the tag (and,
// for a scalar that yaml quoted, that value).
func keyOfValue(n *yaml.Node, path string, line int, tag, value string) string {
	found := ""
	visit := func(p string, v *yaml.Node) {
		if deeper := keyOfValue(v, p, line, tag, value); deeper != "" {
			found = deeper
		} else if found == "" && v.Line == line && v.ShortTag() == tag && (value == "" || v.Value == value) {
			found = p
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			visit(path, c)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			visit(strings.TrimPrefix(path+"."+n.Content[i].Value, "."), n.Content[i+1])
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			visit(fmt.Sprintf("%s[%d]", path, i), c)
		}
	}
	return found
}

// yamlTypeRE is yaml's type error: "cannot unmarshal !!seq into string", or with the value
// ("cannot unmarshal !!str `abc` into int").
var yamlTypeRE = regexp.MustCompile("^cannot unmarshal !!(\\w+) (?:`([^`]*)` )?into (.+)$")

// yamlKind says a yaml tag in words.
func yamlKind(tag string) string {
	switch tag {
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	case "str":
		return "text"
	case "int", "float":
		return "a number"
	case "bool":
		return "true or false"
	}
	return tag
}

var mappingType = reflect.TypeOf(Mapping{})

// walkKeys records the line of every key and reports unknown keys with their full path.
func walkKeys(n *yaml.Node, path string, t reflect.Type, lines map[string]int, ps *[]Problem) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if tag := strings.Split(f.Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" && f.IsExported() {
				fields[tag] = f.Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := joinKey(path, k.Value)
			lines[key] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				known := make([]string, 0, len(fields))
				for f := range fields {
					known = append(known, f)
				}
				sort.Strings(known)
				*ps = append(*ps, Problem{Line: k.Line, Key: key, Msg: key + ": unknown key (known: " + strings.Join(known, ", ") + ")"})
				continue
			}
			walkKeys(v, key, ft, lines, ps)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := joinKey(path, n.Content[i].Value)
			lines[key] = n.Content[i].Line
			walkKeys(n.Content[i+1], key, t.Elem(), lines, ps)
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, item := range n.Content {
			key := fmt.Sprintf("%s[%d]", path, i)
			lines[key] = item.Line
			walkKeys(item, key, t.Elem(), lines, ps)
		}
	}
}

func joinKey(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// pathRE is a response path: dotted names, each with [N] indexes or one [] (the newest
// element, by newest_by).
var pathRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_\-]*(\[\d*\])*(\.[A-Za-z_][A-Za-z0-9_\-]*(\[\d*\])*)*$`)

// problemList collects problems, each with its key's line.
type problemList struct {
	m  *Mapping
	ps []Problem
}

// add records a problem about key; the message is the key followed by format.
func (l *problemList) add(key, format string, args ...any) {
	l.ps = append(l.ps, Problem{Key: key, Line: l.m.Line(key), Msg: key + " " + fmt.Sprintf(format, args...)})
}

// Problems lists what is wrong with m, each message naming its key (e.g.
// response.health_code.path).
func (m *Mapping) Problems() []string {
	var out []string
	for _, p := range m.problems() {
		out = append(out, p.Msg)
	}
	return out
}

func (m *Mapping) problems() []Problem {
	l := &problemList{m: m}
	m.endpointProblems(l)
	m.requestProblems(l)
	m.responseProblems(l)
	m.signingProblems(l)
	if len(l.ps) == 0 && m.Sample != "" {
		m.sampleProblems(l)
	}
	sort.SliceStable(l.ps, func(i, j int) bool {
		if l.ps[i].Line != l.ps[j].Line {
			return l.ps[i].Line < l.ps[j].Line
		}
		return l.ps[i].Msg < l.ps[j].Msg
	})
	return l.ps
}

func (m *Mapping) endpointProblems(l *problemList) {
	eps := []struct {
		key string
		e   Endpoint
		req bool
	}{{"ping", m.Endpoints.Ping, true}, {"qr", m.Endpoints.QR, true}, {"idcard", m.Endpoints.IDCard, true}, {"face", m.Endpoints.Face, false},
		{FaceSearch, m.Endpoints.FaceSearch, false}}
	for _, e := range eps {
		key := "endpoints." + e.key
		switch {
		case e.e.Path == "" && e.req:
			l.add(key+".path", "is required")
		case e.e.Path != "" && !strings.HasPrefix(e.e.Path, "/"):
			l.add(key+".path", "must start with /, got %q", e.e.Path)
		case e.e.Path != "" && strings.ContainsAny(e.e.Path, "?#"):
			l.add(key+".path", "must not carry a query or fragment, got %q (fields go in request.*)", e.e.Path)
		case e.e.Path != "" && e.e.Method != "GET" && e.e.Method != "POST":
			l.add(key+".method", "must be GET or POST, got %q", e.e.Method)
		case e.e.Encoding != EncodingJSON && e.e.Encoding != EncodingForm && e.e.Encoding != EncodingQuery:
			l.add(key+".encoding", "must be json, form or query, got %q", e.e.Encoding)
		case e.e.Method == "GET" && e.e.Encoding != EncodingQuery:
			l.add(key+".encoding", "is %s, but a GET has no body: use encoding: query (or method: POST)", e.e.Encoding)
		}
	}
	if m.Headers.TimestampUnit != "ms" && m.Headers.TimestampUnit != "s" {
		l.add("headers.timestamp_unit", "must be ms or s, got %q", m.Headers.TimestampUnit)
	}
}

func (m *Mapping) requestProblems(l *problemList) {
	kinds := map[string]string{KindQR: "${qr_token}", KindIDCard: "${id_number}", KindFace: "${face_jpeg_base64}", FaceSearch: "${face_jpeg_base64}"}
	for kind := range m.Request {
		if _, ok := kinds[kind]; !ok {
			l.add("request."+kind, "is an unknown credential kind (known: face, face_search, idcard, qr)")
		}
	}
	optional := map[string]string{KindFace: m.Endpoints.Face.Path, FaceSearch: m.Endpoints.FaceSearch.Path}
	for _, kind := range []string{KindQR, KindIDCard, KindFace, FaceSearch} {
		body, ok := m.Request[kind]
		if !ok {
			if path, opt := optional[kind]; !opt || path != "" {
				l.add("request."+kind, "is required")
			}
			continue
		}
		hasCred := false
		for p, v := range body {
			key := "request." + kind + "." + p
			if !pathRE.MatchString(p) || strings.Contains(p, "[") {
				l.add(key, "is not a dotted JSON path")
			}
			if strings.HasPrefix(v, "${") && !slices.Contains(placeholders, v) {
				l.add(key, "has an unknown placeholder %s (known: %s)", v, strings.Join(placeholders, ", "))
			}
			if v == kinds[kind] {
				hasCred = true
			}
		}
		probe := Credential{Kind: kind}
		switch kind {
		case KindFace:
			probe.IDNumber = "probe" // a face with an ID number is the 1:1 comparison
		case FaceSearch:
			probe.Kind = KindFace // a face alone is the search
		}
		if _, err := m.requestFields(&probe, "", ""); err != nil {
			l.add("request."+kind, "%s", strings.TrimPrefix(err.Error(), ErrMapping.Error()+": "))
		}
		if !hasCred {
			l.add("request."+kind, "must carry %s", kinds[kind])
		}
	}
}

// timeFields are the response keys read as times.
var timeFields = []string{"nat_sampled_at", "nat_reported_at", "server_time"}

func (m *Mapping) responseProblems(l *problemList) {
	r := &m.Response
	if m.Endpoints.FaceSearch.Path != "" && r.Score.Path == "" {
		l.add("response.score.path", "is required with endpoints.face_search (a face search is judged by its score)")
	}
	if r.Score.Scale < 0 {
		l.add("response.score.scale", "must be > 0, got %v", r.Score.Scale)
	}
	for _, f := range r.fields() {
		key := "response." + f.key
		switch {
		case f.f.Path == "" && f.required:
			l.add(key+".path", "is required")
		case f.f.Path != "" && !pathRE.MatchString(f.f.Path):
			l.add(key+".path", "%q is not a JSON path like data.nat.sampled_at, items[0].code or tests[].result", f.f.Path)
		case strings.Count(f.f.Path, "[]") > 1:
			l.add(key+".path", "%q has more than one []", f.f.Path)
		case strings.Contains(f.f.Path, "[]") && f.f.NewestBy == "":
			l.add(key+".newest_by", "is required: the path's [] stands for the newest element, and newest_by says which value orders them")
		case !strings.Contains(f.f.Path, "[]") && f.f.NewestBy != "":
			l.add(key+".newest_by", "needs a path with [] (the array whose newest element is read), got %q", f.f.Path)
		case f.f.NewestBy != "" && (!pathRE.MatchString(f.f.NewestBy) || strings.Contains(f.f.NewestBy, "[]")):
			l.add(key+".newest_by", "%q is not a path inside the element, like sampledAt", f.f.NewestBy)
		}
		m.timeProblems(l, key, f.f)
	}
	if len(r.OK) == 0 {
		l.add("response.ok", "must list at least one success code")
	}
	m.valueMapProblems(l)
}

// timeProblems checks a field's layout and utc_offset: only time fields take them; a layout
// is a keyword or a Go layout with at least one time verb that reads back what it writes.
func (m *Mapping) timeProblems(l *problemList, key string, f Field) {
	isTime := slices.Contains(timeFields, strings.TrimPrefix(key, "response."))
	if !isTime {
		if f.Layout != "" {
			l.add(key+".layout", "is only for time fields (%s)", strings.Join(timeFields, ", "))
		}
		if f.UTCOffset != "" {
			l.add(key+".utc_offset", "is only for time fields (%s)", strings.Join(timeFields, ", "))
		}
		return
	}
	if err := checkLayout(f.Layout); err != nil {
		l.add(key+".layout", "%v", err)
	}
	if f.UTCOffset != "" {
		if _, err := parseOffset(f.UTCOffset); err != nil {
			l.add(key+".utc_offset", "%v", err)
		} else if f.Layout == LayoutUnixS || f.Layout == LayoutUnixMS {
			l.add(key+".utc_offset", "has no meaning for a Unix time (%s)", f.Layout)
		}
	}
}

// checkLayout says what is wrong with a time layout: a keyword is fine; a Go layout must
// hold a time verb (2006, 01, 02, 15, 04, 05, Jan, ...) and parse what it formats.
func checkLayout(layout string) error {
	switch layout {
	case "", LayoutRFC3339, LayoutUnixS, LayoutUnixMS:
		return nil
	}
	a := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	b := time.Date(2012, 11, 25, 13, 14, 15, 0, time.UTC)
	if a.Format(layout) == b.Format(layout) {
		return fmt.Errorf("%q has no time verb, so it reads no time: write a Go layout like \"2006-01-02 15:04:05\" (not yyyy-MM-dd HH:mm:ss), or rfc3339, unix_s, unix_ms", layout)
	}
	if _, err := time.Parse(layout, b.Format(layout)); err != nil {
		return fmt.Errorf("%q cannot read back the times it writes: %v", layout, err)
	}
	return nil
}

func (m *Mapping) valueMapProblems(l *problemList) {
	r := &m.Response
	for _, v := range r.Match.Values {
		if v != "true" && v != "false" {
			l.add("response.match.values", "must map to true or false, got %q", v)
		}
	}
	for _, v := range r.HealthCode.Values {
		if v != "green" && v != "yellow" && v != "red" {
			l.add("response.health_code.values", "must map to green, yellow or red, got %q", v)
		}
	}
	for _, v := range r.NATResult.Values {
		if v != "negative" && v != "positive" {
			l.add("response.nat_result.values", "must map to negative or positive, got %q", v)
		}
	}
	for _, v := range r.VaccineDoses.Values {
		if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 20 {
			l.add("response.vaccine_doses.values", "must map to a number of doses (0 to 20), got %q", v)
		}
	}
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
		{"score", r.Score, false},
	}
}

// sampleProblems proves the mapping on its sample answer: every configured path resolves,
// every value is in its value map, every time fits its layout, and the answer parses.
func (m *Mapping) sampleProblems(l *problemList) {
	reads, err := m.ReadFields([]byte(m.Sample))
	if err != nil {
		l.add("sample", "is not a JSON object: %s", strings.TrimPrefix(err.Error(), ErrBadResponse.Error()+": "))
		return
	}
	for _, r := range reads {
		switch {
		case r.Problem == "" && r.Key == "code" && r.Value != "ok":
			l.add("response.code", "in the sample answer is %q, which is not in response.ok: the sample must be a success answer", r.Raw)
		case r.Problem == "":
		case r.Problem == ProblemAbsent:
			l.add("response."+r.Key+".path", "%q points at nothing in the sample answer", r.Path)
		default:
			l.add("response."+r.Key, "in the sample answer: %s", r.Problem)
		}
	}
	if len(l.ps) == 0 {
		if _, err := m.ParseAnswer([]byte(m.Sample)); err != nil {
			l.add("sample", "does not parse: %v", err)
		}
	}
}
