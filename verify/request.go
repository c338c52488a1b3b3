package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sentinel-edge/sentinel/verify/signing"
)

// outgoing is one request before it is sent: its top-level fields (the body's, or the
// query's for a query endpoint), the query parameters put beside a body, and the headers.
type outgoing struct {
	ep     Endpoint
	fields map[string]any // name → string, or a nested map[string]any
	query  url.Values
	header http.Header

	body        []byte // encoded by encode
	rawQuery    string
	contentType string
	signed      string // the signed string, secret masked (for the trace)
	signature   string
	corrupted   bool
}

// newOutgoing prepares the request of cred (nil for a ping) to endpoint ep.
func (m *Mapping) newOutgoing(ep Endpoint, cred *Credential, device, venue string) (*outgoing, error) {
	fields, err := m.requestFields(cred, device, venue)
	if err != nil {
		return nil, err
	}
	return &outgoing{ep: ep, fields: fields, query: url.Values{}, header: http.Header{}}, nil
}

// put sets a value at a target. A body field of a query endpoint goes in the query with
// the other fields.
func (o *outgoing) put(t target, v string) {
	switch t.where {
	case PutHeader:
		o.header.Set(t.name, v)
	case PutBody:
		o.fields[t.name] = v
	case PutQuery:
		if o.ep.Encoding == EncodingQuery {
			o.fields[t.name] = v
		} else {
			o.query.Set(t.name, v)
		}
	}
}

// flat is the fields as text: strings as they are, objects as their JSON.
func (o *outgoing) flat() url.Values {
	v := url.Values{}
	for k, f := range o.fields {
		v.Set(k, signing.ParamValue(f))
	}
	return v
}

// params are every parameter a sorted string covers: the fields and the query parameters.
func (o *outgoing) params() map[string]string {
	p := map[string]string{}
	for k, vs := range o.query {
		if len(vs) > 0 {
			p[k] = vs[0]
		}
	}
	for k, f := range o.fields {
		p[k] = signing.ParamValue(f)
	}
	return p
}

// encode writes the body and the query by the endpoint's encoding. A query endpoint, and
// a request without fields (a ping), have no body.
func (o *outgoing) encode() error {
	o.body, o.contentType = nil, ""
	q := o.query
	switch o.ep.Encoding {
	case EncodingQuery:
		q = o.flat()
		for k, vs := range o.query {
			q[k] = vs
		}
	case EncodingForm:
		if len(o.fields) > 0 {
			o.body, o.contentType = []byte(o.flat().Encode()), "application/x-www-form-urlencoded"
		}
	default:
		if len(o.fields) == 0 { // a ping: no body, as ever
			break
		}
		b, err := json.Marshal(o.fields)
		if err != nil {
			return fmt.Errorf("%w: encode the request: %v", ErrMapping, err)
		}
		o.body, o.contentType = b, "application/json"
	}
	o.rawQuery = q.Encode()
	return nil
}

// scheme is how the client signs: the mapping's section, or the reference scheme under the
// signer's algorithm.
func (c *Client) scheme() *Signing {
	if c.m.Signing != nil {
		return c.m.Signing
	}
	return legacySigning(c.m.Headers, c.opt.Signer.Algorithm)
}

// stampText writes the signing timestamp: Unix seconds or milliseconds, or a layout in its
// zone.
func stampText(ts SignTimestamp, t time.Time) string {
	if ts.Layout != "" {
		loc := time.UTC
		if off, err := parseOffset(ts.UTCOffset); err == nil && ts.UTCOffset != "" {
			loc = time.FixedZone(ts.UTCOffset, off)
		}
		return t.In(loc).Format(ts.Layout)
	}
	if ts.Unit == "s" {
		return strconv.FormatInt(t.Unix(), 10)
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// sign puts the app key, timestamp, nonce and algorithm where the scheme says, computes the
// signature over the scheme's string and puts it. corrupt spoils it on purpose.
func (c *Client) sign(o *outgoing, stamp time.Time, corrupt bool) error {
	sc, s := c.scheme(), c.opt.Signer
	ts, nonce := stampText(sc.Timestamp, stamp), newNonce()
	for _, p := range []struct{ put, v string }{
		{sc.Timestamp.Put, ts}, {sc.Nonce.Put, nonce}, {sc.AppKey.Put, s.AppKey}, {sc.SignMethod.Put, sc.SignMethod.Value},
	} {
		if p.put == "" {
			continue
		}
		t, err := parseTarget(p.put)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrSigning, err)
		}
		o.put(t, p.v)
	}
	sigAt, err := parseTarget(sc.Put)
	if err != nil {
		return fmt.Errorf("%w: signing.put: %v", ErrSigning, err)
	}
	if err := o.encode(); err != nil {
		return err
	}
	vars := signing.Vars{AppKey: s.AppKey, Secret: string(s.secret), Timestamp: ts, Nonce: nonce, Method: o.ep.Method, Path: o.ep.Path, Body: o.body}
	shown := vars
	shown.Secret = "****"
	var str string
	switch sc.String {
	case signing.Sorted:
		sorted := signing.SortedString(o.params(), append([]string{sigAt.name}, sc.Exclude...))
		str, o.signed = sorted+signing.Expand(sc.Suffix, vars), sorted+signing.Expand(sc.Suffix, shown)
	case signing.Template:
		str, o.signed = signing.Expand(sc.Template, vars), signing.Expand(sc.Template, shown)
	default:
		str = signing.CanonicalString(sc.Algorithm, o.ep.Method, o.ep.Path, s.AppKey, ts, nonce, o.body)
		o.signed = str
	}
	sum, err := signing.Sum(sc.Algorithm, s.secret, s.sm2, []byte(str))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSigning, err)
	}
	o.signature = signing.Encode(sc.Encoding, sum)
	if corrupt {
		o.signature, o.corrupted = signing.Corrupt(o.signature), true
	}
	o.put(sigAt, o.signature)
	return o.encode()
}

// newRequest builds the HTTP request of o: the unit headers, the signature when the client
// signs, the body and the query by the endpoint's encoding. It stamps call.Start and
// call.Signature.
func (c *Client) newRequest(ctx context.Context, o *outgoing, passageID string, call *Call) (*http.Request, error) {
	h := c.m.Headers
	o.header.Set(h.Device, c.opt.Device)
	o.header.Set(h.Venue, c.opt.Venue)
	if passageID != "" {
		o.header.Set(h.Passage, passageID)
	}
	call.Start = c.opt.Now()
	call.Signature = SigNone
	if c.opt.Signer != nil {
		if err := c.sign(o, c.stampTime(call.Start), wrongSignature(ctx)); err != nil {
			return nil, err
		}
		call.Signature = SigUnknown
	} else if err := o.encode(); err != nil {
		return nil, err
	}
	var rd io.Reader = http.NoBody
	if o.body != nil {
		rd = bytes.NewReader(o.body)
	}
	u := c.base + o.ep.Path
	if o.rawQuery != "" {
		u += "?" + o.rawQuery
	}
	req, err := http.NewRequestWithContext(ctx, o.ep.Method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%w: build request for %s: %v", ErrUnreachable, o.ep.Path, err)
	}
	for k, vs := range o.header {
		req.Header[k] = vs
	}
	if o.contentType != "" {
		req.Header.Set("Content-Type", o.contentType)
	}
	return req, nil
}

// exchange is the trace of o, before the answer.
func (o *outgoing) exchange(req *http.Request) Exchange {
	x := Exchange{Method: o.ep.Method, Body: o.body, Signed: o.signed, Signature: o.signature, Corrupted: o.corrupted}
	if req != nil {
		x.URL, x.Header = req.URL.String(), req.Header.Clone()
	}
	return x
}
