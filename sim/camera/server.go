package camera

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Paths the camera serves.
const (
	PathStream   = "/stream"       // MJPEG, multipart/x-mixed-replace
	PathSnapshot = "/snapshot.jpg" // the current frame
	PathRedirect = "/redirect"     // 302 to /stream: a camera URL that redirects
)

// Options tune a Server. The zero value serves 10 frames a second with Content-Length.
type Options struct {
	FPS      int    // frames per second per connection (default 10)
	Boundary string // the multipart boundary (default "sentinelframe")
	NoLength bool   // parts without Content-Length (the part ends at the next boundary)
	Loop     bool   // play the script again from the start at its end; else hold its last image
	Logger   *slog.Logger
}

// Server plays a script over HTTP. The script's clock starts at the first request.
type Server struct {
	script *Script
	opts   Options
	log    *slog.Logger
	starts []time.Duration // when each step begins
	total  time.Duration

	startOnce sync.Once
	t0        time.Time
	conns     atomic.Int64
	open      atomic.Int64
}

// NewServer returns a camera playing s.
func NewServer(s *Script, opts Options) *Server {
	if opts.FPS <= 0 {
		opts.FPS = 10
	}
	if opts.Boundary == "" {
		opts.Boundary = "sentinelframe"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &Server{script: s, opts: opts, log: log}
	for _, st := range s.Steps {
		srv.starts = append(srv.starts, srv.total)
		srv.total += st.Duration
	}
	return srv
}

// Connections is how many /stream connections were made; Open how many are open now.
func (s *Server) Connections() int64 { return s.conns.Load() }

// Open is how many /stream connections are open now.
func (s *Server) Open() int64 { return s.open.Load() }

func (s *Server) elapsed() time.Duration {
	s.startOnce.Do(func() { s.t0 = time.Now() })
	return time.Since(s.t0)
}

// at returns the step in force at elapsed time t: a step with a duration.
func (s *Server) at(t time.Duration) *Step {
	if s.opts.Loop {
		t %= s.total
	}
	if t >= s.total {
		for i := len(s.script.Steps) - 1; i >= 0; i-- {
			if s.script.Steps[i].Kind == KindImage {
				return &s.script.Steps[i]
			}
		}
	}
	for i := range s.script.Steps {
		st := &s.script.Steps[i]
		if st.Duration > 0 && t >= s.starts[i] && t < s.starts[i]+st.Duration {
			return st
		}
	}
	return &s.script.Steps[len(s.script.Steps)-1]
}

// events returns the instant steps (drop, corrupt, huge) due in (from, to].
func (s *Server) events(from, to time.Duration) []*Step {
	var out []*Step
	laps := []time.Duration{0}
	if s.opts.Loop {
		laps = nil
		for k := from / s.total; k <= to/s.total; k++ {
			laps = append(laps, k*s.total)
		}
	}
	for _, lap := range laps {
		for i := range s.script.Steps {
			st := &s.script.Steps[i]
			if at := lap + s.starts[i]; st.Duration == 0 && at > from && at <= to {
				out = append(out, st)
			}
		}
	}
	return out
}

// ServeHTTP serves /stream, /snapshot.jpg and /redirect.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case PathStream:
		s.stream(w, r)
	case PathSnapshot:
		st := s.at(s.elapsed())
		if st.Kind != KindImage {
			http.Error(w, "no frame now ("+st.Kind+")", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Content-Length", strconv.Itoa(len(st.frame)))
		_, _ = w.Write(st.frame)
	case PathRedirect:
		http.Redirect(w, r, PathStream, http.StatusFound)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	s.conns.Add(1)
	s.open.Add(1)
	defer s.open.Add(-1)
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+s.opts.Boundary)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	tick := time.NewTicker(time.Second / time.Duration(s.opts.FPS))
	defer tick.Stop()
	prev := s.elapsed()
	for {
		now := s.elapsed()
		for _, ev := range s.events(prev, now) {
			if ev.Kind == KindDrop {
				s.log.Info("dropping a stream connection", "line", ev.Line)
				panic(http.ErrAbortHandler) // closes the connection without an end
			}
			if err := s.writeEvent(w, ev); err != nil {
				return
			}
		}
		prev = now
		var err error
		switch st := s.at(now); st.Kind {
		case KindImage:
			err = s.writePart(w, "image/jpeg", st.frame)
		case KindGarbage:
			_, err = w.Write(garbage(64 << 10))
		}
		if err != nil {
			return
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Server) writePart(w http.ResponseWriter, ctype string, body []byte) error {
	head := fmt.Sprintf("--%s\r\nContent-Type: %s\r\n", s.opts.Boundary, ctype)
	if !s.opts.NoLength {
		head += fmt.Sprintf("Content-Length: %d\r\n", len(body))
	}
	if _, err := w.Write([]byte(head + "\r\n")); err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	_, err := w.Write([]byte("\r\n"))
	return err
}

func (s *Server) writeEvent(w http.ResponseWriter, ev *Step) error {
	switch ev.Kind {
	case KindCorrupt:
		return s.writePart(w, "image/jpeg", append([]byte("not a JPEG: "), garbage(2000)...))
	case KindHuge:
		body := garbage(ev.Bytes)
		body[0], body[1], body[2] = 0xFF, 0xD8, 0xFF
		body[len(body)-2], body[len(body)-1] = 0xFF, 0xD9
		return s.writePart(w, "image/jpeg", body)
	}
	return nil
}

// garbage returns n random bytes without '-' (so they never hold a boundary) nor line
// breaks.
func garbage(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i, c := range b {
		if c == '-' || c == '\n' || c == '\r' {
			b[i] = 'x'
		}
	}
	return b
}

// Serve answers on ln until ctx ends, then shuts down (open streams are cut).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn), BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("camera: serve: %w", err)
	case <-ctx.Done():
	}
	_ = srv.Close()
	<-errc
	return nil
}

// ServeLoopback serves on a free loopback port until stop is called; it returns the base URL
// (http://127.0.0.1:PORT) and stop, which waits for the server to end.
func (s *Server) ServeLoopback() (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("camera: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx, ln); close(done) }()
	return "http://" + ln.Addr().String(), func() { cancel(); <-done }, nil
}
