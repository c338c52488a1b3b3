package platform

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/sim/population"
)

// Paths of the docking interface (reference dialect).
const (
	PathPing   = "/api/v1/ping"
	PathQR     = "/api/v1/verify/qr"
	PathIDCard = "/api/v1/verify/idcard"
	PathFace   = "/api/v1/verify/face"
)

// Envelope codes (reference dialect).
const (
	CodeOK               = "ok"
	CodeBadRequest       = "bad_request"
	CodeNotFound         = "not_found"
	CodeInternal         = "internal"
	CodeBadSignature     = "bad_signature"      // the signature is missing or does not verify
	CodeReplay           = "replay"             // the timestamp is stale or the nonce was used
	CodeMethodNotAllowed = "method_not_allowed" // not in the spec: a wrong method on a known path
)

// Request headers a unit sends; the server copies them into its call log.
const (
	HeaderDevice  = "X-Sentinel-Device"
	HeaderVenue   = "X-Sentinel-Venue"
	HeaderPassage = "X-Sentinel-Passage"
	// HeaderRequestID carries the envelope's request_id on every answer too.
	HeaderRequestID = "X-Request-Id"
)

// MaxBodyBytes bounds a request body; a larger one is a 400. A face image fits.
const MaxBodyBytes = 4 << 20

// ErrInjected is what FailEvery's hook returns.
var ErrInjected = errors.New("platform: injected failure")

// ReportDelay is how long after sampling a test's report is dated, capped at
// the time of the answer.
const ReportDelay = 6 * time.Hour

// Answer is the JSON envelope of every verification answer and error.
type Answer struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Data      *Data  `json:"data,omitempty"`
}

// Data is the body of a 200 answer. NAT and Vaccine encode as null when nil.
type Data struct {
	Identity   Identity `json:"identity"`
	HealthCode string   `json:"health_code"`
	NAT        *NAT     `json:"nat"`
	Vaccine    *Vaccine `json:"vaccine"`
	// Score is the face search's match score, 0 to 1 (v3); absent for other interfaces.
	Score *float64 `json:"score,omitempty"`
}

// Identity says who the credential belongs to.
type Identity struct {
	IDNumber string `json:"id_number"`
	Name     string `json:"name"`
	Match    bool   `json:"match"`
}

// NAT is a nucleic-acid test on record; times are RFC 3339 in UTC.
type NAT struct {
	Result     string `json:"result"`
	SampledAt  string `json:"sampled_at"`
	ReportedAt string `json:"reported_at"`
}

// Vaccine is the vaccination record; LastDate is YYYY-MM-DD.
type Vaccine struct {
	Doses    int    `json:"doses"`
	LastDate string `json:"last_date"`
}

// Ping is the answer of GET /api/v1/ping.
type Ping struct {
	Code       string `json:"code"`
	ServerTime string `json:"server_time"`
}

// QRRequest is the body of POST /api/v1/verify/qr.
type QRRequest struct {
	QRToken string `json:"qr_token"`
}

// IDCardRequest is the body of POST /api/v1/verify/idcard.
type IDCardRequest struct {
	IDNumber string `json:"id_number"`
	Name     string `json:"name"`
}

// FaceRequest is the body of POST /api/v1/verify/face: a base64 JPEG and, when the unit
// knows it, the ID number it claims to be.
type FaceRequest struct {
	ImageJPEG string `json:"image_jpeg"`
	IDNumber  string `json:"id_number"`
}

// Options tune a Server. The zero value is a well-behaved platform.
type Options struct {
	// Logger receives the call log (one line per request, credentials
	// masked). Nil discards it.
	Logger *slog.Logger
	// Now is the server clock; nil means time.Now.
	Now func() time.Time
	// NewRequestID makes request ids; nil means NewRequestID.
	NewRequestID func() string
	// Fault is called before each verification is looked up; a non-nil
	// error answers 500 internal. See FailEvery.
	Fault func(*http.Request) error
	// Delay holds every verification answer this long (or until the client
	// goes away), to exercise a unit's timeout.
	Delay time.Duration
	// Dialect is the interface's shape: DialectReference (default) or DialectProvince.
	Dialect string
	// Signing, when set, makes the server check every request's signature and refuse
	// replays; nil accepts unsigned requests.
	Signing *Signing
	// Faults, when set, says what to do to each verification request (see Fault).
	Faults FaultSource
	// RequestLog, when set, gets one JSON line (LogEntry) per request received.
	RequestLog io.Writer
}

// Server is the reference platform. It is an http.Handler and safe for
// concurrent use.
type Server struct {
	pop   *population.Population
	opts  Options
	log   *slog.Logger
	d     dialect
	ifs   map[string]string // path → interface
	reqlg *requestLog
	faceState
}

var _ http.Handler = (*Server)(nil)

// NewServer returns a platform that answers from pop. An unknown Options.Dialect panics:
// check it with CheckDialect first.
func NewServer(pop *population.Population, opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewRequestID == nil {
		opts.NewRequestID = NewRequestID
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, err := newDialect(opts.Dialect)
	if err != nil {
		panic(err)
	}
	s := &Server{pop: pop, opts: opts, log: log, d: d, ifs: map[string]string{}, reqlg: &requestLog{w: opts.RequestLog}}
	for iface, p := range d.paths() {
		s.ifs[p] = iface
	}
	s.registerFaceSearch()
	return s
}

// CheckDialect says whether name is a dialect the server speaks.
func CheckDialect(name string) error {
	_, err := newDialect(name)
	return err
}

// String describes the server without personal data.
func (s *Server) String() string {
	return fmt.Sprintf("platform(%d people)", s.pop.Len())
}

// ServeHTTP answers one request; a panic in a handler becomes a 500.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
			rid := s.opts.NewRequestID()
			st, body := s.d.fail(failInternal, "internal error", rid)
			s.writeJSON(w, st, body, rid)
		}
	}()
	s.route(w, r)
}

// Serve answers on ln until ctx is done, then shuts down gracefully (five
// seconds at most). A cancelled ctx is a clean stop and returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30*time.Second + s.opts.Delay,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("platform: serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	<-errc
	if err != nil {
		return fmt.Errorf("platform: shutdown: %w", err)
	}
	return nil
}

// NewRequestID returns "p-" and 16 random hex digits.
func NewRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return "p-" + hex.EncodeToString(b[:])
}

// FailEvery returns a Fault hook that fails every n-th verification (n >= 1;
// n <= 0 never fails).
func FailEvery(n int) func(*http.Request) error {
	var calls atomic.Int64
	return func(*http.Request) error {
		if n <= 0 {
			return nil
		}
		if calls.Add(1)%int64(n) == 0 {
			return ErrInjected
		}
		return nil
	}
}

// route dispatches by path: the dialect's ping and verification endpoints.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	arrived := s.opts.Now()
	start := time.Now()
	dev, ven, pas := s.d.unitHeaders()
	e := LogEntry{
		Time: arrived.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Method: r.Method, Path: r.URL.Path,
		Interface: s.ifs[r.URL.Path], Device: r.Header.Get(dev), Venue: r.Header.Get(ven), Passage: r.Header.Get(pas),
		Signature: SigOff, Fault: FaultNone,
	}
	defer func() {
		e.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
		s.reqlg.write(e)
	}()
	iface := e.Interface
	switch {
	case iface == "":
		s.fail(w, r, &e, failNoEndpoint, "no such endpoint", "")
	case iface == IfacePing && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		s.ping(w, &e)
	case iface == IfacePing:
		w.Header().Set("Allow", "GET, HEAD")
		s.fail(w, r, &e, failMethod, "method not allowed, use GET, HEAD", "")
	case r.Method != s.d.method(iface):
		w.Header().Set("Allow", s.d.method(iface))
		s.fail(w, r, &e, failMethod, "method not allowed, use "+s.d.method(iface), "")
	default:
		s.verify(w, r, &e)
	}
}

func (s *Server) ping(w http.ResponseWriter, e *LogEntry) {
	body := s.d.ping(s.opts.Now())
	e.Status, e.Code = http.StatusOK, CodeOK
	s.writeJSON(w, http.StatusOK, body, "")
}

// fail answers an error, logs the call and fills the request log entry.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, e *LogEntry, f failure, msg, cred string) {
	rid := s.opts.NewRequestID()
	st, body := s.d.fail(f, msg, rid)
	e.Status, e.Code, e.RequestID = st, s.d.code(body), rid
	s.logCall(r, e, cred, nil)
	s.writeJSON(w, st, body, rid)
}

// verify answers a verification: read the body, check the signature, decode and check the
// request, inject the fault, wait the delay, and look the credential up.
func (s *Server) verify(w http.ResponseWriter, r *http.Request, e *LogEntry) {
	raw, err := readBody(w, r)
	if err != nil {
		s.fail(w, r, e, failBadRequest, err.Error(), "")
		return
	}
	in := reqInput{method: r.Method, path: r.URL.Path, header: r.Header, query: r.URL.Query(), body: raw}
	if sg := s.opts.Signing; sg != nil {
		e.Signature = s.d.checkSig(sg, in, s.opts.Now())
		switch e.Signature {
		case SigMissing, SigBad:
			s.fail(w, r, e, failBadSignature, "signature "+e.Signature, "")
			return
		case SigStale, SigReplay:
			s.fail(w, r, e, failReplay, "replay refused: "+e.Signature, "")
			return
		}
	}
	req, err := s.decode(e.Interface, in)
	if err != nil {
		s.fail(w, r, e, failBadRequest, err.Error(), "")
		return
	}
	cred := req.token
	if cred == "" {
		cred = req.idNumber
	}
	if s.opts.Fault != nil {
		if err := s.opts.Fault(r); err != nil {
			s.fail(w, r, e, failInternal, "platform failure, safe to retry", cred)
			return
		}
	}
	fault := Fault{Kind: FaultNone}
	if s.opts.Faults != nil {
		fault = s.opts.Faults.Next()
	}
	e.Fault = fault.String()
	delay := s.opts.Delay
	switch fault.Kind {
	case FaultLatency:
		delay += fault.Delay
	case FaultHang:
		<-r.Context().Done()
		e.Code = "client_gone"
		s.logCall(r, e, cred, nil)
		return
	case Fault5xx:
		s.fail(w, r, e, failInternal, "injected failure, safe to retry", cred)
		return
	case FaultBadSignature:
		s.fail(w, r, e, failBadSignature, "signature bad (injected)", cred)
		return
	case FaultMalformed:
		rid := s.opts.NewRequestID()
		e.Status, e.Code, e.RequestID = http.StatusOK, "malformed", rid
		s.logCall(r, e, cred, nil)
		w.Header().Set(s.d.requestIDHeader(), rid)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Date", s.opts.Now().UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"code":"ok","data":{"identity":{"match":tr`))
		return
	case FaultDrop:
		e.Code = "dropped"
		s.logCall(r, e, cred, nil)
		panic(http.ErrAbortHandler) // net/http closes the connection; route's defer logs it
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			e.Code = "client_gone"
			s.logCall(r, e, cred, nil)
			return
		}
	}
	lookup := s.lookup
	if fault.Kind == FaultOtherPerson {
		lookup = s.otherPerson // faults.go
	}
	data, ok := lookup(e.Interface, req)
	if !ok {
		s.fail(w, r, e, failNotFound, "unknown credential", cred)
		return
	}
	rid := s.opts.NewRequestID()
	st, body := s.d.ok(data, rid, s.opts.Now())
	e.Status, e.Code, e.RequestID = st, s.d.code(body), rid
	s.logCall(r, e, cred, data)
	s.writeJSON(w, st, body, rid)
}

func (s *Server) lookup(iface string, req credRequest) (*Data, bool) {
	switch iface {
	case IfaceQR:
		p, ok := s.pop.ByToken(req.token)
		if !ok {
			return nil, false
		}
		return s.data(p, Identity{IDNumber: p.IDNumber, Name: p.Name, Match: true}), true
	case IfaceIDCard:
		p, ok := s.pop.ByID(req.idNumber)
		if !ok {
			return nil, false
		}
		// The name is echoed as sent, so a mismatch never reveals the name on record.
		return s.data(p, Identity{IDNumber: p.IDNumber, Name: req.name, Match: req.name == p.Name}), true
	case IfaceFace:
		claimed := FaceID(req.face)
		id := req.idNumber
		if id == "" {
			id = claimed
		}
		p, ok := s.pop.ByID(id)
		if !ok {
			return nil, false
		}
		match := claimed == "" || claimed == p.IDNumber
		return s.data(p, Identity{IDNumber: p.IDNumber, Name: p.Name, Match: match}), true
	case IfaceFaceSearch:
		return s.faceSearch(req)
	}
	return nil, false
}

// FaceMarker prefixes the JPEG comment by which the simulator recognises a synthetic face.
const FaceMarker = "sentinel-face:"

// FaceJPEG returns a minimal synthetic JPEG (SOI, a comment, EOI) whose comment names the ID
// number of the face it shows: the simulator's stand-in for face recognition.
func FaceJPEG(idNumber string) []byte {
	com := []byte(FaceMarker + idNumber)
	n := len(com) + 2
	b := []byte{0xFF, 0xD8, 0xFF, 0xFE, byte(n >> 8), byte(n)}
	b = append(b, com...)
	return append(b, 0xFF, 0xD9)
}

// FaceID returns the ID number a synthetic face's comment names, or "" when it has none.
func FaceID(jpeg []byte) string {
	for i := 2; i+4 <= len(jpeg); {
		if jpeg[i] != 0xFF {
			return ""
		}
		marker := jpeg[i+1]
		if marker == 0xD9 || marker == 0xDA {
			return ""
		}
		n := int(jpeg[i+2])<<8 | int(jpeg[i+3])
		if n < 2 || i+2+n > len(jpeg) {
			return ""
		}
		if marker == 0xFE {
			if c := string(jpeg[i+4 : i+2+n]); strings.HasPrefix(c, FaceMarker) {
				return strings.TrimPrefix(c, FaceMarker)
			}
		}
		i += 2 + n
	}
	return ""
}

// readBody reads the request body, at most MaxBodyBytes. Its errors never quote the body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("body is larger than %d bytes", MaxBodyBytes)
		}
		return nil, errors.New("body could not be read")
	}
	return b, nil
}

func (s *Server) data(p population.Person, id Identity) *Data {
	d := &Data{Identity: id, HealthCode: string(p.HealthCode)}
	if p.NATResult != population.NoNAT {
		reported := p.NATSampledAt.Add(ReportDelay)
		if now := s.opts.Now(); reported.After(now) {
			reported = now
		}
		if reported.Before(p.NATSampledAt) {
			reported = p.NATSampledAt
		}
		d.NAT = &NAT{
			Result:     string(p.NATResult),
			SampledAt:  p.NATSampledAt.UTC().Format(time.RFC3339),
			ReportedAt: reported.UTC().Format(time.RFC3339),
		}
	}
	if p.VaccineDoses > 0 {
		d.Vaccine = &Vaccine{Doses: p.VaccineDoses, LastDate: lastDoseDate(p).Format(time.DateOnly)}
	}
	return d
}

// lastDoseDate invents a stable date for the last dose: the population file
// has no such column. Doses were 90 days apart from 2021-03-01, give or take
// a month that depends on the ID number.
func lastDoseDate(p population.Person) time.Time {
	h := fnv.New32a()
	_, _ = h.Write([]byte(p.IDNumber))
	jitter := int(h.Sum32() % 30)
	return time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 90*(p.VaccineDoses-1)+jitter)
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any, rid string) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"code":"internal","message":"encoding failed","request_id":""}`)
	}
	if rid != "" {
		w.Header().Set(s.d.requestIDHeader(), rid)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The platform's clock (Options.Now), which a unit with a wrong clock goes by.
	w.Header().Set("Date", s.opts.Now().UTC().Format(http.TimeFormat))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func (s *Server) logCall(r *http.Request, e *LogEntry, cred string, data *Data) {
	attrs := []any{
		"method", r.Method, "path", r.URL.Path, "status", e.Status, "code", e.Code,
		"request_id", e.RequestID, "device", e.Device, "venue", e.Venue,
		"passage", e.Passage, "remote", r.RemoteAddr,
	}
	if e.Signature != SigOff {
		attrs = append(attrs, "signature", e.Signature)
	}
	if e.Fault != FaultNone {
		attrs = append(attrs, "fault", e.Fault)
	}
	if cred != "" {
		attrs = append(attrs, "credential", population.MaskLen(cred))
	}
	if data != nil {
		attrs = append(attrs, "health_code", data.HealthCode, "match", data.Identity.Match)
	}
	s.log.Info("call", attrs...)
}
