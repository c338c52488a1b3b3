package verify

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Reading is one answer field as the unit reads it, for `sentinel check` (on the mapping's
// sample), `sentinel try` and `sentinel docking-check`. Raw and Value of a Personal field
// hold personal data: mask them before showing them.
type Reading struct {
	Key      string // the response key: code, match, health_code, nat_sampled_at, ...
	Path     string // where the mapping looks for it
	Present  bool   // the path resolved to a value
	Raw      string // the value found, as text
	Value    string // what the unit makes of it: the mapped value, a time in RFC 3339 UTC
	Problem  string // why the field does not resolve; empty when it does
	Personal bool   // an ID number or a name
}

// ProblemAbsent is the Problem of a field whose path resolves to nothing.
const ProblemAbsent = "absent (no value, or null)"

// ReadFields reads every field the mapping names from an answer, whatever its outcome, and
// says for each what the unit makes of it and what does not resolve: a path that points at
// nothing, a value the value map does not know, a time that does not fit its layout. Fields
// the mapping does not name are left out. The error is for an answer that is not a JSON
// object.
func (m *Mapping) ReadFields(raw []byte) ([]Reading, error) {
	doc, err := answerDoc(raw)
	if err != nil {
		return nil, err
	}
	r := &m.Response
	var out []Reading
	for _, nf := range r.fields() {
		if nf.f.Path == "" {
			continue
		}
		rd := Reading{Key: nf.key, Path: nf.f.Path, Personal: nf.key == "id_number" || nf.key == "name"}
		s, present, err := r.scalar(doc, nf.key, nf.f)
		switch {
		case err != nil:
			rd.Problem = trimBadResponse(err)
		case !present:
			rd.Problem = ProblemAbsent
		default:
			rd.Present, rd.Raw = true, s
			rd.Value, rd.Problem = r.interpret(nf.key, nf.f, s)
		}
		out = append(out, rd)
	}
	return out, nil
}

// ReadAnswer is ReadFields for a real answer from one interface: fields that interface's
// answers do not carry are left out (the score is only in a face search's answer).
func (m *Mapping) ReadAnswer(iface string, raw []byte) ([]Reading, error) {
	reads, err := m.ReadFields(raw)
	if iface == FaceSearch {
		return reads, err
	}
	return slices.DeleteFunc(reads, func(r Reading) bool { return r.Key == "score" }), err
}

// interpret says what the unit makes of a field's raw value, or why it cannot.
func (r *Response) interpret(key string, f Field, raw string) (value, problem string) {
	unknown := func() (string, string) {
		if key == "id_number" || key == "name" {
			return "", fmt.Sprintf("the value (%d characters) is not in the value map", len([]rune(raw)))
		}
		return "", fmt.Sprintf("the value %s is not in the value map", shownValue(raw))
	}
	switch key {
	case "code":
		switch {
		case slices.Contains(r.OK, raw):
			return "ok", ""
		case slices.Contains(r.NotFound, raw):
			return "not_found", ""
		case slices.Contains(r.SignatureRejected, raw):
			return "signature_rejected", ""
		}
		return "", fmt.Sprintf("the code %s is in none of response.ok, response.not_found, response.signature_rejected", shownValue(raw))
	case "nat_sampled_at", "nat_reported_at", "server_time":
		t, err := f.time(key, raw)
		if err != nil {
			return "", trimBadResponse(err)
		}
		return t.UTC().Format(time.RFC3339), ""
	case "vaccine_doses":
		v, _ := f.mapped(raw)
		if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 20 {
			return "", fmt.Sprintf("%s is not a number of doses", shownValue(raw))
		}
		return v, ""
	}
	v, ok := f.mapped(raw)
	if !ok {
		return unknown()
	}
	if key == "match" && v != "true" && v != "false" {
		return "", fmt.Sprintf("the value %s is neither true nor false", shownValue(raw))
	}
	return v, ""
}

func trimBadResponse(err error) string {
	s := err.Error()
	if p := ErrBadResponse.Error() + ": "; len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
