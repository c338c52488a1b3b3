package screen

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

//go:embed page.html
var page []byte

// Tunables; package variables so tests can shrink them.
var (
	// KeepAlive is how often an idle event stream gets a comment line, so that a browser or
	// proxy does not time it out and a vanished client is noticed.
	KeepAlive = 15 * time.Second
	// ClientBuffer is how many events may wait for one browser; past it the browser is slow
	// and is disconnected (it reconnects and gets the current state).
	ClientBuffer = 8
	// WriteTimeout bounds one write to a browser.
	WriteTimeout = 5 * time.Second
)

// DefaultMaxClients is Options.MaxClients when it is not set: a unit's screen has one or
// two browsers; the bound keeps any local process from taking every file descriptor.
const DefaultMaxClients = 16

// Verdict is one passage as the screen shows it. Subject fields are masked already.
type Verdict struct {
	N            int64  `json:"n"` // event number, increasing
	Verdict      string `json:"verdict"`
	Reason       string `json:"reason"`
	Credential   string `json:"credential,omitempty"` // qr, idcard or face: the reason's wording follows it
	Text         Text   `json:"text"`                 // to the person; Explain's when empty
	Staff        Text   `json:"staff"`                // to the staff; Explain's when Text is empty
	SubjectID    string `json:"subject_id,omitempty"`
	SubjectName  string `json:"subject_name,omitempty"`
	HealthCode   string `json:"health_code,omitempty"`
	NATSampledAt string `json:"nat_sampled_at,omitempty"`
	Mode         string `json:"mode"` // online | offline
	Gate         string `json:"gate"`
	GateMode     string `json:"gate_mode,omitempty"`
	TS           string `json:"ts"`
	HoldMS       int64  `json:"hold_ms"`
}

// Unit is the unit's state as the idle screen shows it.
type Unit struct {
	Venue        string            `json:"venue"`
	Device       string            `json:"device"`
	Unit         string            `json:"unit,omitempty"`
	Location     string            `json:"location,omitempty"`
	Platform     string            `json:"platform"` // online | offline | unknown
	Uplink       bool              `json:"uplink"`
	QueuePending int64             `json:"queue_pending"`
	Mode         string            `json:"mode"`
	Clock        string            `json:"clock"`
	Readers      map[string]string `json:"readers,omitempty"`
	FireAlarm    string            `json:"fire_alarm,omitempty"` // alarm while the fire alarm is active
	Tamper       bool              `json:"tamper,omitempty"`     // the tamper switch says the case is open
	Barrier      bool              `json:"barrier"`              // the unit drives a barrier (held open on fire)
	// OfflinePolicy is platform.offline_policy: what the unit does while the platform is
	// offline (deny, allow_cached, allow_and_flag).
	OfflinePolicy string `json:"offline_policy,omitempty"`
	// Accepts are the ways in the idle screen asks for, in order (KindQR, KindIDCard,
	// KindFace): the unit's readers and camera that its policy accepts.
	Accepts []string `json:"accepts,omitempty"`

	// Filled by SetUnit from the fields above: what the screen says.
	Prompt      []Text   `json:"prompt"`                   // the idle prompt (IdlePrompt)
	FireNotice  *Message `json:"fire_notice,omitempty"`    // while the fire alarm is active
	TamperNote  *Message `json:"tamper_notice,omitempty"`  // while the case is open
	OfflineNote *Message `json:"offline_notice,omitempty"` // while the platform is offline
	CameraNote  *Message `json:"camera_notice,omitempty"`  // a face-only unit's camera is offline (camera.go)
}

// withNotices fills the texts the screen shows for the unit's state.
func (u Unit) withNotices() Unit {
	u.Prompt = IdlePrompt(u.Accepts)
	u = u.withCamera()
	u.FireNotice, u.TamperNote, u.OfflineNote = nil, nil, nil
	if u.FireAlarm == FireAlarmActive {
		m := FireAlarmNoBarrier
		if u.Barrier {
			m = FireAlarm
		}
		u.FireNotice = &m
	}
	if u.Tamper {
		m := Tamper
		u.TamperNote = &m
	}
	if u.Platform == PlatformOffline {
		m, ok := Offline[u.OfflinePolicy]
		if !ok {
			m = Offline["deny"]
		}
		u.OfflineNote = &m
	}
	return u
}

// Unit states the screen tells apart (record.FireAlarmActive, record.PlatformOffline).
const (
	FireAlarmActive = "alarm"
	PlatformOffline = "offline"
)

// Stats are the server's counters.
type Stats struct {
	Clients           int
	Closed, Slow      int64
	Refused           int64 // requests refused (method, host or path)
	EventsSent, Shown int64
}

// Options configure a Server.
type Options struct {
	// AllowedHosts are the Host header values accepted (host or host:port, lower case); empty
	// accepts any. A loopback screen sets them to defeat DNS rebinding.
	AllowedHosts []string
	// OnDisconnect, when set, is told why a client went: "closed" or "slow".
	OnDisconnect func(why string)
	// OnClients, when set, is told the number of connected clients after each change.
	OnClients func(n int)
	// MaxClients bounds the event streams open at once; past it /events answers 503 with
	// Retry-After (a browser's EventSource tries again). 0 means DefaultMaxClients.
	MaxClients int
}

type event struct {
	name string
	data []byte
}

type client struct {
	ch   chan event
	gone chan struct{} // closed when the server drops the client
	once sync.Once
}

func (c *client) drop() { c.once.Do(func() { close(c.gone) }) }

// Server is the verdict screen's HTTP server.
type Server struct {
	opt Options

	mu      sync.Mutex
	clients map[*client]struct{}
	unit    []byte // last Unit as JSON
	verdict []byte // last Verdict as JSON, nil before the first
	hint    []byte // last Hint as JSON, nil before the first
	shownAt time.Time
	hold    time.Duration
	n       int64
	stats   Stats
}

// New returns a server with an empty unit state.
func New(opt Options) *Server {
	if opt.MaxClients <= 0 {
		opt.MaxClients = DefaultMaxClients
	}
	s := &Server{opt: opt, clients: map[*client]struct{}{}}
	s.unit, _ = json.Marshal(Unit{Platform: "unknown", Mode: "normal", Clock: "unsynced"}.withNotices())
	return s
}

// SetAllowedHosts replaces Options.AllowedHosts (once the listener's port is known).
func (s *Server) SetAllowedHosts(hosts []string) {
	s.mu.Lock()
	s.opt.AllowedHosts = append([]string(nil), hosts...)
	s.mu.Unlock()
}

// Show pushes a verdict to every browser. It never blocks.
func (s *Server) Show(v Verdict) {
	s.mu.Lock()
	s.n++
	v.N = s.n
	if v.Text == (Text{}) {
		m := Explain(v.Reason, v.Credential)
		v.Text, v.Staff = m.Person, m.Staff
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.mu.Unlock()
		return
	}
	s.verdict, s.shownAt, s.hold = b, time.Now(), time.Duration(v.HoldMS)*time.Millisecond
	s.stats.Shown++
	s.mu.Unlock()
	s.broadcast(event{"verdict", b})
}

// Hint is what the screen asks of the person in front of a face trigger's camera, while no
// verdict is shown: Code is facetrack's hint (no_face, come_closer, look_at_camera,
// hold_still, more_light), "" to ask nothing.
type Hint struct {
	Code string `json:"code"`
	Text Text   `json:"text"`
}

// hints are the texts of the face hints.
var hints = map[string]Text{
	"no_face":        {"请正对摄像头", "Please look at the camera"},
	"come_closer":    {"请靠近一些", "Please come closer"},
	"look_at_camera": {"请站到画面中间，正对摄像头", "Please step into the middle and look at the camera"},
	"hold_still":     {"请保持不动", "Please hold still"},
	"more_light":     {"光线不足，请靠近摄像头并摘下帽子", "Too dark: come closer to the camera and take off your hat"},
}

// ShowHint pushes a face hint to every browser (an unknown code asks nothing). It never
// blocks; a browser that connects later gets the newest.
func (s *Server) ShowHint(code string) {
	h := Hint{Code: code, Text: hints[code]}
	if h.Text == (Text{}) {
		h.Code = ""
	}
	b, err := json.Marshal(h)
	if err != nil {
		return
	}
	s.mu.Lock()
	same := string(b) == string(s.hint)
	s.hint = b
	s.mu.Unlock()
	if !same {
		s.broadcast(event{"hint", b})
	}
}

// SetUnit replaces the unit state and pushes it when it changed. It never blocks.
func (s *Server) SetUnit(u Unit) {
	b, err := json.Marshal(u.withNotices())
	if err != nil {
		return
	}
	s.mu.Lock()
	same := string(b) == string(s.unit)
	s.unit = b
	s.mu.Unlock()
	if !same {
		s.broadcast(event{"unit", b})
	}
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Clients = len(s.clients)
	return st
}

func (s *Server) broadcast(e event) {
	s.mu.Lock()
	var slow []*client
	for c := range s.clients {
		select {
		case c.ch <- e:
		default:
			slow = append(slow, c)
		}
	}
	for _, c := range slow {
		s.removeLocked(c, "slow")
	}
	n := len(s.clients)
	s.mu.Unlock()
	if len(slow) > 0 && s.opt.OnClients != nil {
		s.opt.OnClients(n)
	}
}

// removeLocked forgets c; it reports whether c was still registered.
func (s *Server) removeLocked(c *client, why string) bool {
	if _, ok := s.clients[c]; !ok {
		return false
	}
	delete(s.clients, c)
	c.drop()
	if why == "slow" {
		s.stats.Slow++
	} else {
		s.stats.Closed++
	}
	if s.opt.OnDisconnect != nil {
		go s.opt.OnDisconnect(why)
	}
	return true
}

// ServeHTTP answers GET /, /state and /events; anything else is refused.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if !s.hostAllowed(r.Host) {
		s.refuse(w, http.StatusMisdirectedRequest, "host not allowed")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		s.refuse(w, http.StatusMethodNotAllowed, "the screen is read-only")
		return
	}
	switch r.URL.Path {
	case "/":
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
		_, _ = w.Write(page)
	case "/state":
		h.Set("Content-Type", "application/json")
		s.mu.Lock()
		unit, verdict := s.unit, s.currentVerdictLocked()
		s.mu.Unlock()
		if verdict == nil {
			verdict = []byte("null")
		}
		fmt.Fprintf(w, `{"unit":%s,"verdict":%s}`, unit, verdict)
	case "/events":
		s.events(w, r)
	default:
		s.refuse(w, http.StatusNotFound, "not found")
	}
}

func (s *Server) refuse(w http.ResponseWriter, code int, msg string) {
	s.mu.Lock()
	s.stats.Refused++
	s.mu.Unlock()
	http.Error(w, msg, code)
}

// currentVerdictLocked returns the last verdict while it is still held on screen.
func (s *Server) currentVerdictLocked() []byte {
	if s.verdict == nil || time.Since(s.shownAt) > s.hold {
		return nil
	}
	return s.verdict
}

func (s *Server) hostAllowed(host string) bool {
	s.mu.Lock()
	allowed := s.opt.AllowedHosts
	s.mu.Unlock()
	if len(allowed) == 0 {
		return true
	}
	host = strings.ToLower(host)
	for _, a := range allowed {
		if a == host {
			return true
		}
	}
	return false
}

// events streams Server-Sent Events to one browser until it leaves or is dropped.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	c := &client{ch: make(chan event, ClientBuffer), gone: make(chan struct{})}
	s.mu.Lock()
	if len(s.clients) >= s.opt.MaxClients {
		s.stats.Refused++
		s.mu.Unlock()
		h.Del("Content-Type")
		h.Set("Retry-After", "5")
		http.Error(w, "too many screen clients", http.StatusServiceUnavailable)
		return
	}
	first := []event{{"unit", s.unit}}
	if v := s.currentVerdictLocked(); v != nil {
		first = append(first, event{"verdict", v})
	}
	if s.hint != nil {
		first = append(first, event{"hint", s.hint})
	}
	s.clients[c] = struct{}{}
	n := len(s.clients)
	s.mu.Unlock()
	if s.opt.OnClients != nil {
		s.opt.OnClients(n)
	}
	defer func() {
		s.mu.Lock()
		s.removeLocked(c, "closed")
		n := len(s.clients)
		s.mu.Unlock()
		if s.opt.OnClients != nil {
			s.opt.OnClients(n)
		}
	}()

	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(WriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte("retry: 2000\n\n")) {
		return
	}
	for _, e := range first {
		if !write(frame(e)) {
			return
		}
	}
	ka := time.NewTicker(KeepAlive)
	defer ka.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			return
		case e := <-c.ch:
			if !write(frame(e)) {
				return
			}
			s.mu.Lock()
			s.stats.EventsSent++
			s.mu.Unlock()
		case <-ka.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		}
	}
}

// frame encodes one SSE event; data is single-line JSON.
func frame(e event) []byte {
	return []byte("event: " + e.name + "\ndata: " + string(e.data) + "\n\n")
}

// LoopbackHosts returns the Host values a browser on the unit uses for a listener on addr.
func LoopbackHosts(addr string) []string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	var hs []string
	for _, h := range []string{"127.0.0.1", "localhost", "[::1]"} {
		hs = append(hs, h+":"+port)
		if port == "80" {
			hs = append(hs, h)
		}
	}
	return hs
}
