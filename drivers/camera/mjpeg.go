package camera

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// ErrNotStream is a camera URL that answers something other than an MJPEG stream.
var ErrNotStream = errors.New("camera: not an MJPEG stream")

// MJPEG is an IP camera (or an ESP32-CAM-class board) serving MJPEG over HTTP as
// multipart/x-mixed-replace (camera.driver: mjpeg). It is a Stream, and a Camera whose
// Snapshot is the newest frame of the running stream (or one frame read for the purpose).
type MJPEG struct {
	*stream
	url, shown string
	user, pass string
	client     *http.Client
}

var (
	_ Stream = (*MJPEG)(nil)
	_ Camera = (*MJPEG)(nil)
)

// NewMJPEG returns the stream at rawURL (http:// or https://; user:password@ is sent as
// basic auth and never shown). It connects in Run or Snapshot.
func NewMJPEG(rawURL string, opts StreamOptions, log *slog.Logger) (*MJPEG, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("camera: stream URL must be http:// or https:// with a host")
	}
	m := &MJPEG{url: rawURL}
	if u.User != nil {
		m.user = u.User.Username()
		m.pass, _ = u.User.Password()
	}
	m.shown = shownURL(u) // credentials never appear in logs
	opts = opts.withDefaults()
	m.client = &http.Client{
		// A redirect is refused, never followed: it would take the lane's pictures (and the
		// credentials) to wherever the answer points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: opts.Timeout}).DialContext,
			TLSHandshakeTimeout:   opts.Timeout,
			ResponseHeaderTimeout: opts.Timeout,
			MaxIdleConns:          1,
			DisableCompression:    true,
		},
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m.stream = newStream(m.shown, opts, log.With("driver", "camera.mjpeg", "url", m.shown), m.dial)
	return m, nil
}

func (m *MJPEG) String() string { return "MJPEG camera at " + m.shown }

// Run reads the stream until ctx ends (see Stream).
func (m *MJPEG) Run(ctx context.Context, emit func(Frame)) error { return m.run(ctx, emit) }

// Snapshot returns the newest frame of the running stream (waiting for the next one when the
// newest is older than FreshFor), or, when Run is not on, one frame read over a connection of
// its own. Both are bounded by ctx and StreamOptions.Timeout.
func (m *MJPEG) Snapshot(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	if b, ok, err := m.fresh(ctx); ok {
		return b, err
	}
	return m.once(ctx)
}

// Halt closes idle connections; a running stream ends with its Run's context.
func (m *MJPEG) Halt() error {
	m.client.CloseIdleConnections()
	return nil
}

type mjpegSource struct {
	body io.ReadCloser
	pr   *PartReader
}

func (s *mjpegSource) next() ([]byte, error) { return s.pr.Next() }
func (s *mjpegSource) interrupt()            { _ = s.body.Close() }
func (s *mjpegSource) close() error          { return s.body.Close() }

// dial opens the stream: GET, no redirect, a multipart answer with a boundary.
func (m *MJPEG) dial(ctx context.Context) (source, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
	if err != nil {
		return nil, fmt.Errorf("camera: %w", err)
	}
	if m.user != "" || m.pass != "" {
		req.SetBasicAuth(m.user, m.pass)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("camera: stream from %s: %w", m.shown, unwrapURLErr(err))
	}
	fail := func(err error) (source, error) {
		_ = resp.Body.Close()
		return nil, err
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return fail(fmt.Errorf("%w: %s answered HTTP %d, a redirect: redirects are refused; set camera.url to the stream itself",
			ErrNotStream, m.shown, resp.StatusCode))
	case resp.StatusCode != http.StatusOK:
		return fail(fmt.Errorf("camera: stream from %s: HTTP %d", m.shown, resp.StatusCode))
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, _ := mime.ParseMediaType(ct); mt == "image/jpeg" {
		return fail(fmt.Errorf("%w: %s serves one JPEG (image/jpeg): use camera.driver: http for a snapshot URL", ErrNotStream, m.shown))
	}
	b, err := Boundary(ct)
	if err != nil {
		return fail(fmt.Errorf("%w: %s: %v", ErrNotStream, m.shown, strings.TrimPrefix(err.Error(), "camera: ")))
	}
	return &mjpegSource{body: resp.Body, pr: NewPartReader(resp.Body, b, m.opts.MaxFrameBytes)}, nil
}
