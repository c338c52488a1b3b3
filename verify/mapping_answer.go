package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

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

// answerDoc decodes an answer that must be a JSON object.
func answerDoc(raw []byte) (any, error) {
	doc, err := decodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrBadResponse, jsonErrNoData(err))
	}
	if _, isObj := doc.(map[string]any); !isObj {
		return nil, fmt.Errorf("%w: the answer is not a JSON object", ErrBadResponse)
	}
	if k, dup := duplicateKey(raw); dup {
		return nil, fmt.Errorf("%w: the answer has the member %s twice in one object (ambiguous: which one holds?)", ErrBadResponse, shown(k))
	}
	return doc, nil
}

// duplicateKey finds a member name that appears twice in one object of raw, a JSON text that
// decodes. encoding/json keeps the last of them, a gateway, proxy or log reader may keep the
// first: an answer that says both "red" and "green" is refused, not read as either.
func duplicateKey(raw []byte) (string, bool) {
	type frame struct {
		obj     bool
		wantKey bool
		keys    map[string]struct{}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top != nil && top.obj {
					top.wantKey = true // the container is this member's value
				}
				stack = append(stack, &frame{obj: d == '{', wantKey: d == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if top == nil || !top.obj {
			continue
		}
		if !top.wantKey {
			top.wantKey = true // a member's value
			continue
		}
		k, _ := tok.(string)
		if top.keys == nil {
			top.keys = map[string]struct{}{}
		}
		if _, dup := top.keys[k]; dup {
			return k, true
		}
		top.keys[k] = struct{}{}
		top.wantKey = false
	}
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

// resolve finds field f in doc: by its path, or, for a path with [], in the newest element
// of that array by f.NewestBy.
func (r *Response) resolve(doc any, key string, f Field) (any, bool, error) {
	arrPath, rest, newest := strings.Cut(f.Path, "[]")
	if !newest {
		return lookup(doc, f.Path)
	}
	v, ok, err := lookup(doc, arrPath)
	if err != nil || !ok {
		return nil, false, err
	}
	arr, isArr := v.([]any)
	if !isArr {
		return nil, false, fmt.Errorf("%s is not an array", arrPath)
	}
	if len(arr) == 0 {
		return nil, false, nil
	}
	i, err := r.newest(key, arrPath, arr, f.NewestBy)
	if err != nil {
		return nil, false, err
	}
	if rest == "" {
		return arr[i], arr[i] != nil, nil
	}
	if !strings.HasPrefix(rest, ".") {
		return nil, false, fmt.Errorf("bad path %s", f.Path)
	}
	return lookup(arr[i], rest[1:])
}

// rank is one element's ordering value: a time, a number or a text.
type rank struct {
	kind int // 1 time, 2 number, 3 text
	t    time.Time
	n    float64
	s    string
}

func (a rank) after(b rank) bool {
	switch a.kind {
	case 1:
		return a.t.After(b.t)
	case 2:
		return a.n > b.n
	}
	return a.s > b.s
}

// newest returns the index of the element whose newestBy value is the latest. The values
// are read with the layout of the time field that names the same element path (e.g.
// nat_sampled_at at tests[].sampledAt), else as numbers, RFC 3339 times, or text (a
// fixed-width layout like 2006-01-02 15:04:05 sorts as text).
func (r *Response) newest(key, arrPath string, arr []any, newestBy string) (int, error) {
	var layoutField *Field
	for _, nf := range r.fields() {
		if nf.f.Path == arrPath+"[]."+newestBy && slices.Contains(timeFields, nf.key) {
			layoutField, key = &nf.f, nf.key
			break
		}
	}
	best, bestRank := -1, rank{}
	for i, el := range arr {
		v, ok, err := lookup(el, newestBy)
		if err != nil || !ok {
			return 0, fmt.Errorf("element %d of %s has no %s to order it by", i, arrPath, newestBy)
		}
		raw, err := valueText(v)
		if err != nil {
			return 0, fmt.Errorf("element %d of %s: %s is an object or array", i, arrPath, newestBy)
		}
		rk := rank{kind: 3, s: raw}
		if layoutField != nil {
			t, err := layoutField.time(key, raw)
			if err != nil {
				return 0, err
			}
			rk = rank{kind: 1, t: t}
		} else if n, err := strconv.ParseFloat(raw, 64); err == nil {
			rk = rank{kind: 2, n: n}
		} else if t, err := time.Parse(time.RFC3339, raw); err == nil {
			rk = rank{kind: 1, t: t}
		}
		if best >= 0 && rk.kind != bestRank.kind {
			return 0, fmt.Errorf("the %s values of %s are of mixed kinds", newestBy, arrPath)
		}
		if best < 0 || rk.after(bestRank) {
			best, bestRank = i, rk
		}
	}
	return best, nil
}

// valueText writes a JSON scalar as text: strings as they are, numbers as written,
// booleans as true/false.
func valueText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", errors.New("not a value")
}

// scalar reads field f of doc as text. present is false when the path resolves to nothing
// or null.
func (r *Response) scalar(doc any, key string, f Field) (s string, present bool, err error) {
	if f.Path == "" {
		return "", false, nil
	}
	v, ok, err := r.resolve(doc, key, f)
	if errors.Is(err, ErrBadResponse) {
		return "", false, err
	}
	if err != nil {
		return "", false, fmt.Errorf("%w: %s: %v", ErrBadResponse, key, err)
	}
	if !ok {
		return "", false, nil
	}
	s, err = valueText(v)
	if err != nil {
		return "", false, fmt.Errorf("%w: %s (%s) is an object or array, want a value", ErrBadResponse, key, f.Path)
	}
	return s, true, nil
}

// mapped applies f's value map; ok is false for a value the map does not know.
func (f Field) mapped(raw string) (string, bool) {
	if len(f.Values) == 0 {
		return raw, true
	}
	v, ok := f.Values[raw]
	return v, ok
}

// Unix times a unix_s or unix_ms field accepts: from 2000 to 2100, so that seconds read as
// milliseconds (or the other way round) are refused rather than read as 1970 or 50000 AD.
var (
	minUnixTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxUnixTime = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

func (f Field) time(key, raw string) (time.Time, error) {
	if raw == "" {
		return time.Time{}, nil
	}
	switch f.Layout {
	case LayoutUnixS, LayoutUnixMS:
		return unixTime(key, f.Layout, raw)
	}
	layout := f.Layout
	if layout == "" || layout == LayoutRFC3339 {
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

func unixTime(key, layout, raw string) (time.Time, error) {
	bad := fmt.Errorf("%w: %s is not a %s time from 2000 to 2100 (%d characters)", ErrBadResponse, key, layout, len(raw))
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		// A JSON number may be written 1.7959392e12: accept it when it is whole.
		fl, ferr := strconv.ParseFloat(raw, 64)
		if ferr != nil || fl != math.Trunc(fl) || math.Abs(fl) > 1e15 {
			return time.Time{}, bad
		}
		n = int64(fl)
	}
	var t time.Time
	if layout == LayoutUnixS {
		if n > maxUnixTime.Unix() || n < minUnixTime.Unix() {
			return time.Time{}, bad
		}
		t = time.Unix(n, 0)
	} else {
		if n > maxUnixTime.UnixMilli() || n < minUnixTime.UnixMilli() {
			return time.Time{}, bad
		}
		t = time.UnixMilli(n)
	}
	return t.UTC(), nil
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
	r := &m.Response
	code, _, _ = r.scalar(doc, "code", r.Code)
	requestID, _, _ = r.scalar(doc, "request_id", r.RequestID)
	return code, cleanRequestID(requestID)
}

// ParseAnswer reads a 200 answer by the mapping, step by step: the outcome code, the
// identity, the health code, the nucleic-acid test, the vaccination, the platform's clock.
// A body that is not JSON, a code that is not a success code, a missing or mistyped required
// field, a time that does not fit its layout, or a value the value map does not know (except
// a health-code colour or a test result, which the policy judges) is ErrBadResponse; a
// not-found code is ErrUnknownCredential; a signature-rejected code is ErrSignatureRejected.
func (m *Mapping) ParseAnswer(raw []byte) (Result, error) {
	doc, err := answerDoc(raw)
	if err != nil {
		return Result{}, err
	}
	r := &m.Response
	var res Result
	if err := r.readOutcome(doc, &res); err != nil {
		return res, err
	}
	for _, step := range []func(any, *Result) error{r.readIdentity, r.readHealthCode, r.readNAT, r.readVaccine} {
		if err := step(doc, &res); err != nil {
			return res, err
		}
	}
	r.readServerTime(doc, &res)
	return res, nil
}

// readOutcome reads the request id and the code: a success code goes on; another one ends
// the answer with its error.
func (r *Response) readOutcome(doc any, res *Result) error {
	code, present, err := r.scalar(doc, "code", r.Code)
	if err != nil {
		return err
	}
	rid, _, _ := r.scalar(doc, "request_id", r.RequestID)
	if err := checkRequestID(rid); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadResponse, r.RequestID.Path, err)
	}
	res.RequestID = rid
	switch {
	case !present:
		return fmt.Errorf("%w: no %s", ErrBadResponse, r.Code.Path)
	case slices.Contains(r.NotFound, code):
		return ErrUnknownCredential
	case slices.Contains(r.SignatureRejected, code):
		return fmt.Errorf("%w: code %s", ErrSignatureRejected, shown(code))
	case !slices.Contains(r.OK, code):
		return fmt.Errorf("%w: code %s in a 200 answer", ErrBadResponse, shown(code))
	}
	return nil
}

// readIdentity reads whether the credential matched and who the person is.
func (r *Response) readIdentity(doc any, res *Result) error {
	match, present, err := r.scalar(doc, "match", r.Match)
	if err != nil {
		return err
	}
	if !present {
		return fmt.Errorf("%w: no %s", ErrBadResponse, r.Match.Path)
	}
	mv, ok := r.Match.mapped(match)
	if !ok || (mv != "true" && mv != "false") {
		return fmt.Errorf("%w: %s has an unknown value (%d characters)", ErrBadResponse, r.Match.Path, len(match))
	}
	res.Identity.Match = mv == "true"
	if res.Identity.IDNumber, _, err = r.scalar(doc, "id_number", r.IDNumber); err != nil {
		return err
	}
	res.Identity.Name, _, err = r.scalar(doc, "name", r.Name)
	return err
}

// readHealthCode reads the colour; one the value map does not know is left empty, and the
// policy denies it health_code_unknown.
func (r *Response) readHealthCode(doc any, res *Result) error {
	hc, present, err := r.scalar(doc, "health_code", r.HealthCode)
	if err != nil {
		return err
	}
	if !present {
		return fmt.Errorf("%w: no %s", ErrBadResponse, r.HealthCode.Path)
	}
	if v, ok := r.HealthCode.mapped(hc); ok {
		res.HealthCode = v
	}
	return nil
}

// readNAT reads the nucleic-acid test: none when neither its result nor its sampling time
// is there; an unknown result is "unmapped" (the policy denies nat_unknown).
func (r *Response) readNAT(doc any, res *Result) error {
	natRes, present, err := r.scalar(doc, "nat_result", r.NATResult)
	if err != nil {
		return err
	}
	sampled, sPresent, err := r.scalar(doc, "nat_sampled_at", r.NATSampledAt)
	if err != nil {
		return err
	}
	if !present && !sPresent {
		return nil
	}
	n := &NAT{Result: "unmapped"}
	if v, ok := r.NATResult.mapped(natRes); ok {
		n.Result = v
	}
	if n.SampledAt, err = r.NATSampledAt.time("nat_sampled_at", sampled); err != nil {
		return err
	}
	reported, _, err := r.scalar(doc, "nat_reported_at", r.NATReportedAt)
	if err != nil {
		return err
	}
	if n.ReportedAt, err = r.NATReportedAt.time("nat_reported_at", reported); err != nil {
		return err
	}
	res.NAT = n
	return nil
}

// readVaccine reads the number of doses (a number, or a value the map turns into one) and
// the last date.
func (r *Response) readVaccine(doc any, res *Result) error {
	doses, present, err := r.scalar(doc, "vaccine_doses", r.VaccineDoses)
	if err != nil || !present {
		return err
	}
	if v, ok := r.VaccineDoses.mapped(doses); ok {
		doses = v
	}
	n, cerr := strconv.Atoi(doses)
	if cerr != nil || n < 0 || n > 20 {
		return fmt.Errorf("%w: %s is not a number of doses", ErrBadResponse, r.VaccineDoses.Path)
	}
	last, _, err := r.scalar(doc, "vaccine_last_date", r.VaccineLastDate)
	if err != nil {
		return err
	}
	res.Vaccine = &Vaccine{Doses: n, LastDate: last}
	return nil
}

// readServerTime reads the platform's clock. It is only a hint for a unit whose own clock is
// wrong: a value that does not parse is ignored (the Date header serves instead), never a
// bad response.
func (r *Response) readServerTime(doc any, res *Result) {
	if st, present, _ := r.scalar(doc, "server_time", r.ServerTime); present {
		if t, err := r.ServerTime.time("server_time", st); err == nil {
			res.ServerTime = t
		}
	}
}

// readScore reads a face search's score (response.score, times its scale): a number from 0
// to 1. An answer without one, or with one that is not such a number, is a bad response: a
// face-only passage never passes on an answer whose match cannot be judged.
func (r *Response) readScore(raw []byte) (*float64, error) {
	doc, err := answerDoc(raw)
	if err != nil {
		return nil, err
	}
	if r.Score.Path == "" {
		return nil, fmt.Errorf("%w: the mapping has no response.score for a face search", ErrBadResponse)
	}
	s, present, err := r.scalar(doc, "score", r.Score)
	if err != nil {
		return nil, err
	}
	if !present {
		return nil, fmt.Errorf("%w: no %s in a face-search answer", ErrBadResponse, r.Score.Path)
	}
	f, cerr := strconv.ParseFloat(s, 64)
	if r.Score.Scale != 0 {
		f *= r.Score.Scale
	}
	if cerr != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return nil, fmt.Errorf("%w: %s is not a score from 0 to 1", ErrBadResponse, r.Score.Path)
	}
	return &f, nil
}
