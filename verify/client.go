package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Errors of a platform call. They name what happened, never the credential.
var (
	ErrUnreachable       = errors.New("verify: platform unreachable")
	ErrUnknownCredential = errors.New("verify: credential unknown to the platform")
	ErrPlatform          = errors.New("verify: platform error")
	ErrBadResponse       = errors.New("verify: bad platform response")
	ErrSignatureRejected = errors.New("verify: the platform rejected the request's signature")
	// ErrRedirect is a 3xx answer. The client never follows one: the body and the signing
	// headers would go to another host, whose answer would decide the passage. The error
	// also matches ErrPlatform (the passage is denied platform_error).
	ErrRedirect = errors.New("verify: the platform answered with a redirect, not followed")
)

// Result classes of a call, as the audit names them.
const (
	ResultOK                = "ok"                 // a usable answer
	ResultNotFound          = "not_found"          // the platform does not know the credential
	ResultBadResponse       = "bad_response"       // not JSON, missing or mistyped fields, unknown codes
	ResultPlatformError     = "platform_error"     // an error status
	ResultSignatureRejected = "signature_rejected" // the platform refused the signature or saw a replay
	ResultTimeout           = "timeout"            // no answer within the budget
	ResultUnreachable       = "unreachable"        // no connection, or it dropped before an answer
)

// Signature results of a call.
const (
	SigNone     = "none"     // the request was not signed (no platform.secret_file)
	SigAccepted = "accepted" // signed, and the platform did not refuse it
	SigRejected = "rejected" // signed, and the platform refused it
	SigUnknown  = "unknown"  // signed, and no answer came
)

// maxBody bounds what is read of an answer.
const maxBody = 1 << 20

// ClientOptions configure a Client.
type ClientOptions struct {
	URL     string // base URL, e.g. http://127.0.0.1:8700
	Device  string
	Venue   string
	Timeout time.Duration // per call; the caller's context may be shorter
	// Mapping adapts the client to the platform's interface; nil means the reference mapping.
	Mapping *Mapping
	// Signer signs every request; nil sends them unsigned.
	Signer *Signer
	// HTTP is the client to use; nil builds one with no proxy and short connect timeouts.
	HTTP *http.Client
	// Now is the clock of timestamps; nil means time.Now.
	Now func() time.Time
	// OnPing, when set, is told about every ping (a call that serves no passage), for the
	// audit. Verify's calls are reported in the Decision instead.
	OnPing func(Call)
	// ClockTrusted says whether Now is confirmed (NTP or RTC); nil trusts it when its year is
	// at least MinTrustedYear. While it is not trusted, the client learns the platform's
	// clock from each answer's Date header and stamps signed requests with it, so that a
	// unit that booted at 1970 is not refused as a replay after its first exchange.
	ClockTrusted func() bool
}

// Client speaks the docking interface (docs/docking-spec.md) to the platform, adapted by a
// mapping. It is safe for concurrent use.
type Client struct {
	base string
	opt  ClientOptions
	m    *Mapping
	http *http.Client
	// skew is the platform's clock minus the unit's, in nanoseconds, learned from Date
	// headers while the unit's clock is not trusted; skewSet says whether one was learned.
	skew    atomic.Int64
	skewSet atomic.Bool
}

var referenceOnce = sync.OnceValues(func() (*Mapping, error) { return ParseMapping(referenceMapping) })

// ReferenceMapping returns the parsed reference mapping.
func ReferenceMapping() *Mapping {
	m, err := referenceOnce()
	if err != nil {
		panic("verify: the embedded reference mapping is broken: " + err.Error()) // a build defect; tests catch it
	}
	return m
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
	if opt.Now == nil {
		opt.Now = time.Now
	}
	// Never follow a redirect, whoever built the client: the request's body and signing
	// headers would go to the location, and its answer would decide the passage. The 3xx
	// answer itself comes back and is refused (ErrRedirect).
	refusing := *hc
	refusing.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	m := opt.Mapping
	if m == nil {
		m = ReferenceMapping()
	}
	return &Client{base: strings.TrimRight(opt.URL, "/"), opt: opt, m: m, http: &refusing}
}

// String names the platform for logs.
func (c *Client) String() string { return "platform " + c.base + " (mapping " + c.m.Name + ")" }

// Call describes one request made to the platform, for the audit log. It never holds the
// credential.
type Call struct {
	Interface string    // qr, idcard, face, face_search, ping
	Attempt   int       // 1; 2 for a retry
	Start     time.Time // when the request was sent
	Latency   time.Duration
	Status    int    // HTTP status; 0 when none arrived
	RequestID string // the platform's request id, when it gave one
	Signature string // SigNone, SigAccepted, SigRejected, SigUnknown
	Result    string // a Result* class
	// Source says what decided the passage this call served: SourceLive (this call's answer),
	// SourceCache (the offline cache), SourceOffline (another offline fallback) or
	// SourceRetried (a later attempt did). Set by the Verifier.
	Source string
	// ServerTime is the platform's clock by the answer's HTTP Date header (one-second
	// resolution); zero when no answer or no parsable header arrived.
	ServerTime time.Time
	// RedirectHost is the host (host[:port]) a 3xx answer's Location pointed to, which the
	// client did not follow; empty for any other answer. Never the location's path or query
	// (they may carry tokens).
	RedirectHost string
}

// Retryable says whether the failure of this call is safe to retry: the platform said so with
// a 5xx, or the connection failed or dropped before any answer. Never a 4xx, a timeout (the
// budget is spent), or an answer that was wrong (it would be wrong again).
func (c Call) Retryable() bool {
	switch c.Result {
	case ResultPlatformError:
		return c.Status >= 500 && c.Status <= 599
	case ResultUnreachable:
		return true
	}
	return false
}

// Verify asks the platform about cred in one request. passageID names the passage the call
// serves.
func (c *Client) Verify(ctx context.Context, cred Credential, passageID string) (Result, Call, error) {
	iface := c.m.Interface(cred)
	call := Call{Interface: iface, Attempt: 1}
	ep, ok := c.m.Endpoint(iface)
	if !ok {
		call.Result = ResultBadResponse
		return Result{}, call, fmt.Errorf("%w: the mapping %s has no endpoint for %s (endpoints.%s)", ErrBadResponse, c.m.Name, iface, iface)
	}
	out, err := c.m.newOutgoing(ep, &cred, c.opt.Device, c.opt.Venue)
	if err != nil {
		call.Result = ResultBadResponse
		return Result{}, call, err
	}
	raw, err := c.do(ctx, out, passageID, &call)
	if err != nil {
		return Result{}, call, err
	}
	res, err := c.m.ParseAnswer(raw)
	if err == nil && iface == FaceSearch {
		res.Score, err = c.m.Response.readScore(raw)
	}
	if res.ServerTime.IsZero() {
		res.ServerTime = call.ServerTime
	}
	if res.RequestID == "" {
		res.RequestID = call.RequestID
	}
	if call.RequestID == "" {
		call.RequestID = res.RequestID
	}
	call.Result = classify(err)
	if errors.Is(err, ErrSignatureRejected) {
		call.Signature = SigRejected
	}
	return res, call, err
}

// clockTrusted says whether the unit's clock, reading now, can be trusted.
func (c *Client) clockTrusted(now time.Time) bool {
	if now.Year() < MinTrustedYear {
		return false
	}
	return c.opt.ClockTrusted == nil || c.opt.ClockTrusted()
}

// stampTime is the time a signed request carries: the unit's clock, or, while it is not
// trusted and the platform's clock is known, the unit's clock corrected by the learned skew.
func (c *Client) stampTime(now time.Time) time.Time {
	if c.clockTrusted(now) || !c.skewSet.Load() {
		return now
	}
	return now.Add(time.Duration(c.skew.Load()))
}

// learnClock remembers the platform's clock from an answer's Date header while the unit's
// own clock is not trusted. A Date before MinTrustedYear is ignored.
func (c *Client) learnClock(date time.Time) {
	now := c.opt.Now()
	if c.clockTrusted(now) || date.Year() < MinTrustedYear {
		return
	}
	c.skew.Store(int64(date.Sub(now)))
	c.skewSet.Store(true)
}

// Ping checks that the platform answers.
func (c *Client) Ping(ctx context.Context) (Call, error) {
	call := Call{Interface: "ping", Attempt: 1}
	out, err := c.m.newOutgoing(c.m.Endpoints.Ping, nil, c.opt.Device, c.opt.Venue)
	if err == nil {
		_, err = c.do(ctx, out, "", &call)
	}
	if err == nil {
		call.Result = ResultOK
	}
	call.Source = SourceLive
	if c.opt.OnPing != nil {
		c.opt.OnPing(call)
	}
	return call, err
}

func classify(err error) string {
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, ErrUnknownCredential):
		return ResultNotFound
	case errors.Is(err, ErrSignatureRejected):
		return ResultSignatureRejected
	case errors.Is(err, ErrPlatform):
		return ResultPlatformError
	default:
		return ResultBadResponse
	}
}

func (c *Client) do(ctx context.Context, o *outgoing, passageID string, call *Call) ([]byte, error) {
	if c.opt.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opt.Timeout)
		defer cancel()
	}
	req, err := c.newRequest(ctx, o, passageID, call)
	if err != nil {
		call.Result = ResultBadResponse
		if errors.Is(err, ErrUnreachable) {
			call.Result = ResultUnreachable
		}
		return nil, err
	}
	tr := traceOf(ctx)
	if tr == nil {
		return c.send(req, o.ep, call, nil)
	}
	x := o.exchange(req)
	raw, err := c.send(req, o.ep, call, &x)
	x.Status, x.Latency, x.Err = call.Status, call.Latency, err
	tr(x)
	return raw, err
}

// send makes the request and reads the answer; x, when set, gets the answer's headers and
// body.
func (c *Client) send(req *http.Request, ep Endpoint, call *Call, x *Exchange) ([]byte, error) {
	h := c.m.Headers
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		call.Latency = time.Since(start)
		call.Result = netResult(err)
		return nil, fmt.Errorf("%w: %s %s: %v", ErrUnreachable, ep.Method, ep.Path, cleanNetErr(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	call.Latency = time.Since(start)
	call.Status = resp.StatusCode
	call.RequestID = cleanRequestID(resp.Header.Get(h.RequestID))
	if date, derr := http.ParseTime(resp.Header.Get("Date")); derr == nil {
		call.ServerTime = date
		c.learnClock(date)
	}
	if c.opt.Signer != nil {
		call.Signature = SigAccepted
	}
	if err != nil {
		call.Result = netResult(err)
		return nil, fmt.Errorf("%w: reading answer to %s: %v", ErrUnreachable, ep.Path, cleanNetErr(err))
	}
	if x != nil {
		x.RespHeader, x.Answer = resp.Header.Clone(), raw
	}
	code, rid := c.m.AnswerCode(raw)
	if rid != "" {
		call.RequestID = rid
	}
	r := c.m.Response
	switch {
	case resp.StatusCode == http.StatusOK:
		return raw, nil
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		call.Result = ResultPlatformError
		call.RedirectHost = redirectHost(resp)
		return nil, alsoPlatform{fmt.Errorf("%w: %s answered HTTP %d to %s", ErrRedirect, ep.Path, resp.StatusCode, orNone(call.RedirectHost))}
	case resp.StatusCode == http.StatusNotFound && slices.Contains(r.NotFound, code):
		call.Result = ResultNotFound
		return nil, ErrUnknownCredential
	case resp.StatusCode == http.StatusUnauthorized || (resp.StatusCode == http.StatusForbidden && slices.Contains(r.SignatureRejected, code)):
		call.Result = ResultSignatureRejected
		if c.opt.Signer != nil {
			call.Signature = SigRejected
		}
		return nil, fmt.Errorf("%w: %s answered HTTP %d (code %s)", ErrSignatureRejected, ep.Path, resp.StatusCode, shown(code))
	default:
		call.Result = ResultPlatformError
		return nil, fmt.Errorf("%w: %s answered HTTP %d (code %s)", ErrPlatform, ep.Path, resp.StatusCode, shown(code))
	}
}

// redirectHost is the host a redirect's Location names (resolved against the request, so a
// relative location names the platform's own host); "" when it has none that parses.
func redirectHost(resp *http.Response) string {
	u, err := resp.Location()
	if err != nil {
		return ""
	}
	if len(u.Host) > maxRedirectHost {
		return u.Host[:maxRedirectHost]
	}
	return u.Host
}

// alsoPlatform is an error that also matches ErrPlatform, without saying so twice.
type alsoPlatform struct{ err error }

func (e alsoPlatform) Error() string   { return e.err.Error() }
func (e alsoPlatform) Unwrap() []error { return []error{e.err, ErrPlatform} }

// maxRedirectHost bounds the host kept from a Location header.
const maxRedirectHost = 255

func orNone(host string) string {
	if host == "" {
		return "no usable Location"
	}
	return "host " + host
}

// netResult tells a timeout from a connection that failed or dropped.
func netResult(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return ResultTimeout
	}
	return ResultUnreachable
}

// cleanNetErr drops the URL from net/http errors; what is left names the failure.
func cleanNetErr(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			err = inner
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return "connection dropped before an answer"
	}
	return err.Error()
}

// ParseAnswer reads a 200 answer of the reference interface (see Mapping.ParseAnswer).
func ParseAnswer(raw []byte) (Result, error) { return ReferenceMapping().ParseAnswer(raw) }

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
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "truncated"
	}
	return "malformed"
}
