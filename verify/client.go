package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Errors of a platform call. They name what happened, never the credential.
var (
	ErrUnreachable       = errors.New("verify: platform unreachable")
	ErrUnknownCredential = errors.New("verify: credential unknown to the platform")
	ErrPlatform          = errors.New("verify: platform error")
	ErrBadResponse       = errors.New("verify: bad platform response")
)

// maxBody bounds what is read of an answer.
const maxBody = 1 << 20

// ClientOptions configure a Client.
type ClientOptions struct {
	URL     string // base URL, e.g. http://127.0.0.1:8700
	Device  string
	Venue   string
	Timeout time.Duration // per call; the caller's context may be shorter
	// HTTP is the client to use; nil builds one with no proxy and short connect timeouts.
	HTTP *http.Client
}

// Client speaks the docking interface v1 to the platform.
type Client struct {
	base string
	opt  ClientOptions
	http *http.Client
}

// NewClient returns a client of the platform at opt.URL.
func NewClient(opt ClientOptions) *Client {
	hc := opt.HTTP
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:                 nil, // never send passages through an environment proxy
			DialContext:           (&net.Dialer{Timeout: opt.Timeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          4,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: opt.Timeout,
		}}
	}
	return &Client{base: strings.TrimRight(opt.URL, "/"), opt: opt, http: hc}
}

// String names the platform for logs.
func (c *Client) String() string { return "platform " + c.base }

// Call describes one request made to the platform, for the audit log and metrics.
type Call struct {
	Interface string // qr, idcard, ping
	Status    int    // HTTP status; 0 when none arrived
	RequestID string // the platform's request id, when it gave one
	Latency   time.Duration
}

type wireAnswer struct {
	Code      string    `json:"code"`
	Message   string    `json:"message"`
	RequestID string    `json:"request_id"`
	Data      *wireData `json:"data"`
}

type wireData struct {
	Identity *struct {
		IDNumber string `json:"id_number"`
		Name     string `json:"name"`
		Match    *bool  `json:"match"`
	} `json:"identity"`
	HealthCode *string `json:"health_code"`
	NAT        *struct {
		Result     string `json:"result"`
		SampledAt  string `json:"sampled_at"`
		ReportedAt string `json:"reported_at"`
	} `json:"nat"`
	Vaccine *struct {
		Doses    int    `json:"doses"`
		LastDate string `json:"last_date"`
	} `json:"vaccine"`
}

// Verify asks the platform about cred. passageID names the passage the call serves.
func (c *Client) Verify(ctx context.Context, cred Credential, passageID string) (Result, Call, error) {
	var path string
	var body any
	switch cred.Kind {
	case KindQR:
		path, body = "/api/v1/verify/qr", map[string]string{"qr_token": cred.QRToken}
	case KindIDCard:
		path, body = "/api/v1/verify/idcard", map[string]string{"id_number": cred.IDNumber, "name": cred.Name}
	default:
		return Result{}, Call{Interface: cred.Kind}, fmt.Errorf("%w: credential kind %q is not supported by docking interface v1", ErrBadResponse, cred.Kind)
	}
	call := Call{Interface: cred.Kind}
	raw, err := c.post(ctx, path, body, passageID, &call)
	if err != nil {
		return Result{}, call, err
	}
	res, err := ParseAnswer(raw)
	res.RequestID = call.RequestID
	return res, call, err
}

// Ping checks that the platform answers.
func (c *Client) Ping(ctx context.Context) (Call, error) {
	call := Call{Interface: "ping"}
	_, err := c.do(ctx, http.MethodGet, "/api/v1/ping", nil, "", &call)
	return call, err
}

func (c *Client) post(ctx context.Context, path string, body any, passageID string, call *Call) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("verify: encode request: %w", err)
	}
	return c.do(ctx, http.MethodPost, path, b, passageID, call)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, passageID string, call *Call) ([]byte, error) {
	if c.opt.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opt.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("verify: build request for %s: %w", path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Sentinel-Device", c.opt.Device)
	req.Header.Set("X-Sentinel-Venue", c.opt.Venue)
	if passageID != "" {
		req.Header.Set("X-Sentinel-Passage", passageID)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		call.Latency = time.Since(start)
		return nil, fmt.Errorf("%w: %s %s: %v", ErrUnreachable, method, path, cleanNetErr(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	call.Latency = time.Since(start)
	call.Status = resp.StatusCode
	if err != nil {
		return nil, fmt.Errorf("%w: reading answer to %s: %v", ErrUnreachable, path, cleanNetErr(err))
	}
	var env struct {
		Code      string `json:"code"`
		RequestID string `json:"request_id"`
	}
	_ = json.Unmarshal(raw, &env) // the envelope is best effort here; ParseAnswer is strict
	call.RequestID = env.RequestID
	switch {
	case resp.StatusCode == http.StatusOK:
		return raw, nil
	case resp.StatusCode == http.StatusNotFound && env.Code == "not_found":
		return nil, ErrUnknownCredential
	default:
		return nil, fmt.Errorf("%w: %s answered HTTP %d (code %q)", ErrPlatform, path, resp.StatusCode, env.Code)
	}
}

// cleanNetErr drops the URL from net/http errors; what is left names the failure.
func cleanNetErr(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			err = inner
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return err.Error()
}

// ParseAnswer reads a 200 answer of the docking interface. A body that is not JSON, a code
// other than ok, or a missing identity or colour is ErrBadResponse.
func ParseAnswer(raw []byte) (Result, error) {
	var a wireAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return Result{}, fmt.Errorf("%w: not JSON: %v", ErrBadResponse, jsonErrNoData(err))
	}
	if a.Code != "ok" {
		return Result{}, fmt.Errorf("%w: code %q in a 200 answer", ErrBadResponse, a.Code)
	}
	d := a.Data
	switch {
	case d == nil:
		return Result{}, fmt.Errorf("%w: no data", ErrBadResponse)
	case d.Identity == nil || d.Identity.Match == nil:
		return Result{}, fmt.Errorf("%w: no data.identity.match", ErrBadResponse)
	case d.HealthCode == nil:
		return Result{}, fmt.Errorf("%w: no data.health_code", ErrBadResponse)
	}
	r := Result{
		RequestID:  a.RequestID,
		Identity:   Identity{IDNumber: d.Identity.IDNumber, Name: d.Identity.Name, Match: *d.Identity.Match},
		HealthCode: *d.HealthCode,
	}
	if d.NAT != nil {
		n := &NAT{Result: d.NAT.Result}
		var err error
		if n.SampledAt, err = parseTime(d.NAT.SampledAt); err != nil {
			return Result{}, fmt.Errorf("%w: data.nat.sampled_at: %v", ErrBadResponse, err)
		}
		if n.ReportedAt, err = parseTime(d.NAT.ReportedAt); err != nil {
			return Result{}, fmt.Errorf("%w: data.nat.reported_at: %v", ErrBadResponse, err)
		}
		r.NAT = n
	}
	if d.Vaccine != nil {
		r.Vaccine = &Vaccine{Doses: d.Vaccine.Doses, LastDate: d.Vaccine.LastDate}
	}
	return r, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("not RFC 3339 (%d characters)", len(s))
	}
	return t, nil
}

// jsonErrNoData keeps a JSON error's kind and offset but not the data it quotes, which may be
// personal.
func jsonErrNoData(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at offset %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %s has JSON type %s, want %s", te.Field, te.Value, te.Type)
	}
	return "malformed"
}
