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
	"sync/atomic"
	"time"

	"github.com/sentinel-edge/sentinel/sim/population"
)

// Paths of the docking interface, version 1.
const (
	PathPing   = "/api/v1/ping"
	PathQR     = "/api/v1/verify/qr"
	PathIDCard = "/api/v1/verify/idcard"
)

// Envelope codes.
const (
	CodeOK               = "ok"
	CodeBadRequest       = "bad_request"
	CodeNotFound         = "not_found"
	CodeInternal         = "internal"
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

// MaxBodyBytes bounds a request body; a larger one is a 400.
const MaxBodyBytes = 64 << 10

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
}

// Server is the reference platform. It is an http.Handler and safe for
// concurrent use.
type Server struct {
	pop  *population.Population
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
}

var _ http.Handler = (*Server)(nil)

// NewServer returns a platform that answers from pop.
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
	s := &Server{pop: pop, opts: opts, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET "+PathPing, s.ping)
	s.mux.HandleFunc("POST "+PathQR, s.verifyQR)
	s.mux.HandleFunc("POST "+PathIDCard, s.verifyIDCard)
	for _, p := range []string{PathPing, PathQR, PathIDCard} {
		s.mux.HandleFunc(p, s.methodNotAllowed)
	}
	s.mux.HandleFunc("/", s.notFound)
	return s
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
			s.writeJSON(w, http.StatusInternalServerError, Answer{Code: CodeInternal, Message: "internal error", RequestID: s.opts.NewRequestID()})
		}
	}()
	s.mux.ServeHTTP(w, r)
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

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, Ping{Code: CodeOK, ServerTime: s.opts.Now().UTC().Format(time.RFC3339)})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	a := Answer{Code: CodeNotFound, Message: "no such endpoint", RequestID: s.opts.NewRequestID()}
	s.logCall(r, a, http.StatusNotFound, "")
	s.writeJSON(w, http.StatusNotFound, a)
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	allow := http.MethodPost
	if r.URL.Path == PathPing {
		allow = "GET, HEAD"
	}
	w.Header().Set("Allow", allow)
	a := Answer{Code: CodeMethodNotAllowed, Message: "method not allowed, use " + allow, RequestID: s.opts.NewRequestID()}
	s.logCall(r, a, http.StatusMethodNotAllowed, "")
	s.writeJSON(w, http.StatusMethodNotAllowed, a)
}

func (s *Server) verifyQR(w http.ResponseWriter, r *http.Request) {
	var req QRRequest
	s.verify(w, r, &req, func() (string, error) {
		if req.QRToken == "" {
			return "", errors.New("qr_token is missing")
		}
		return req.QRToken, nil
	}, func() (*Data, bool) {
		p, ok := s.pop.ByToken(req.QRToken)
		if !ok {
			return nil, false
		}
		return s.data(p, Identity{IDNumber: p.IDNumber, Name: p.Name, Match: true}), true
	})
}

func (s *Server) verifyIDCard(w http.ResponseWriter, r *http.Request) {
	var req IDCardRequest
	s.verify(w, r, &req, func() (string, error) {
		if req.IDNumber == "" || req.Name == "" {
			return "", errors.New("id_number and name are required")
		}
		return req.IDNumber, nil
	}, func() (*Data, bool) {
		p, ok := s.pop.ByID(req.IDNumber)
		if !ok {
			return nil, false
		}
		// The name is echoed as sent, so a mismatch never reveals the name
		// on record.
		return s.data(p, Identity{IDNumber: p.IDNumber, Name: req.Name, Match: req.Name == p.Name}), true
	})
}

// verify runs the common steps of a verification: decode the body into req,
// check it (returning the credential, for the masked log), consult the fault
// hook, wait the delay, and look up.
func (s *Server) verify(w http.ResponseWriter, r *http.Request, req any, check func() (string, error), lookup func() (*Data, bool)) {
	a := Answer{RequestID: s.opts.NewRequestID()}
	status, cred := s.answer(w, r, req, check, lookup, &a)
	if status == 0 {
		s.logCall(r, Answer{Code: "client_gone", RequestID: a.RequestID}, 0, cred)
		return
	}
	s.logCall(r, a, status, cred)
	s.writeJSON(w, status, a)
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request, req any, check func() (string, error), lookup func() (*Data, bool), a *Answer) (status int, cred string) {
	if err := decodeBody(w, r, req); err != nil {
		a.Code, a.Message = CodeBadRequest, err.Error()
		return http.StatusBadRequest, ""
	}
	cred, err := check()
	if err != nil {
		a.Code, a.Message = CodeBadRequest, err.Error()
		return http.StatusBadRequest, ""
	}
	if s.opts.Fault != nil {
		if err := s.opts.Fault(r); err != nil {
			a.Code, a.Message = CodeInternal, "platform failure, safe to retry"
			return http.StatusInternalServerError, cred
		}
	}
	if s.opts.Delay > 0 {
		t := time.NewTimer(s.opts.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return 0, cred
		}
	}
	data, ok := lookup()
	if !ok {
		a.Code, a.Message = CodeNotFound, "unknown credential"
		return http.StatusNotFound, cred
	}
	a.Code, a.Data = CodeOK, data
	return http.StatusOK, cred
}

// decodeBody decodes exactly one JSON object into v. Its errors never quote
// the body.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return fmt.Errorf("body is larger than %d bytes", MaxBodyBytes)
		case errors.As(err, &te) && te.Field != "":
			return fmt.Errorf("field %s has the wrong type", te.Field)
		}
		return errors.New("body is not a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("body has data after the JSON object")
	}
	return nil
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

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"code":"internal","message":"encoding failed","request_id":""}`)
	}
	if a, ok := v.(Answer); ok {
		w.Header().Set(HeaderRequestID, a.RequestID)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func (s *Server) logCall(r *http.Request, a Answer, status int, cred string) {
	attrs := []any{
		"method", r.Method, "path", r.URL.Path, "status", status, "code", a.Code,
		"request_id", a.RequestID,
		"device", r.Header.Get(HeaderDevice), "venue", r.Header.Get(HeaderVenue),
		"passage", r.Header.Get(HeaderPassage), "remote", r.RemoteAddr,
	}
	if cred != "" {
		attrs = append(attrs, "credential", population.MaskLen(cred))
	}
	if a.Data != nil {
		attrs = append(attrs, "health_code", a.Data.HealthCode, "match", a.Data.Identity.Match)
	}
	s.log.Info("call", attrs...)
}
