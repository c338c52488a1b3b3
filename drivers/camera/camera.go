package camera

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Camera captures one JPEG still.
type Camera interface {
	Snapshot(ctx context.Context) ([]byte, error)
	String() string
	Halt() error
}

// Errors.
var (
	ErrNotJPEG  = errors.New("camera: snapshot is not a JPEG")
	ErrTooLarge = errors.New("camera: snapshot larger than the limit")
)

// MaxSnapshot bounds a snapshot's size.
const MaxSnapshot = 8 << 20

// IsJPEG checks the SOI marker.
func IsJPEG(b []byte) bool { return len(b) > 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF }

// HTTP is an IP camera's snapshot URL (e.g. http://cam/ISAPI/Streaming/channels/1/picture).
type HTTP struct {
	url    string
	client *http.Client
	shown  string // the URL without credentials, for String
}

// NewHTTP returns a camera at rawURL; timeout bounds each snapshot.
func NewHTTP(rawURL string, timeout time.Duration) (*HTTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("camera: snapshot URL must be http:// or https:// with a host")
	}
	client := &http.Client{
		Timeout: timeout,
		// A redirect is refused, never followed (the picture and the credentials would go
		// wherever the answer points): the 3xx answer itself is an error.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &HTTP{url: rawURL, client: client, shown: shownURL(u)}, nil
}

func (h *HTTP) String() string { return "camera at " + h.shown }

// Snapshot fetches one JPEG.
func (h *HTTP) Snapshot(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return nil, fmt.Errorf("camera: %w", err)
	}
	if u, _ := url.Parse(h.url); u != nil && u.User != nil {
		p, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), p)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("camera: snapshot from %s: %w", h.shown, unwrapURLErr(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, fmt.Errorf("camera: snapshot from %s: HTTP %d, a redirect: redirects are refused; set camera.url to the snapshot itself", h.shown, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("camera: snapshot from %s: HTTP %d", h.shown, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxSnapshot+1))
	if err != nil {
		return nil, fmt.Errorf("camera: snapshot from %s: %w", h.shown, err)
	}
	if len(b) > MaxSnapshot {
		return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, MaxSnapshot)
	}
	if !IsJPEG(b) {
		return nil, fmt.Errorf("%w: %d bytes from %s", ErrNotJPEG, len(b), h.shown)
	}
	return b, nil
}

func unwrapURLErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Halt does nothing: each snapshot is its own request.
func (h *HTTP) Halt() error { return nil }

// shownURL is a camera URL as logs, errors and events show it: without the user and password
// and without the query (many cameras take their credentials there: ?user=…&pwd=…).
func shownURL(u *url.URL) string {
	shown := *u
	shown.User = nil
	if shown.RawQuery != "" || shown.ForceQuery {
		shown.RawQuery, shown.ForceQuery = "", false
		return shown.String() + "?…"
	}
	return shown.String()
}
