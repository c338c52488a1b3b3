package screen

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/verify"
)

func TestEveryReasonHasText(t *testing.T) {
	for _, r := range verify.Reasons {
		txt, ok := Reasons[r.Code]
		if !ok || txt.ZH == "" || txt.EN == "" {
			t.Errorf("reason %s has no Chinese and English screen text", r.Code)
		}
	}
	if got := ReasonText("brand_new_code"); !strings.Contains(got.EN, "brand_new_code") {
		t.Errorf("an unknown code should show itself, got %+v", got)
	}
}

// sseReader reads events from an event stream.
type sseReader struct {
	sc *bufio.Scanner
}

func (r *sseReader) next(t *testing.T) (string, string) {
	t.Helper()
	var name, data string
	for r.sc.Scan() {
		l := r.sc.Text()
		switch {
		case strings.HasPrefix(l, "event: "):
			name = l[len("event: "):]
		case strings.HasPrefix(l, "data: "):
			data = l[len("data: "):]
		case l == "" && name != "":
			return name, data
		}
	}
	t.Fatalf("event stream ended: %v", r.sc.Err())
	return "", ""
}

func openStream(t *testing.T, ctx context.Context, url string) (*http.Response, *sseReader) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	return resp, &sseReader{bufio.NewScanner(resp.Body)}
}

func TestStreamPushesVerdicts(t *testing.T) {
	var drops atomic.Int64
	s := New(Options{OnDisconnect: func(string) { drops.Add(1) }})
	s.SetUnit(Unit{Venue: "350582-0001", Device: "gate-01", Platform: "online", Mode: "normal", Clock: "synced"})
	ts := httptest.NewServer(s)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, r := openStream(t, ctx, ts.URL)
	defer resp.Body.Close()

	if name, data := r.next(t); name != "unit" || !strings.Contains(data, `"device":"gate-01"`) {
		t.Fatalf("first event %s %s, want the unit", name, data)
	}
	s.Show(Verdict{Verdict: "deny", Reason: "health_code_red", SubjectID: "3505**********1231", SubjectName: "张*", HealthCode: "red", HoldMS: 3000})
	name, data := r.next(t)
	var v Verdict
	if err := json.Unmarshal([]byte(data), &v); name != "verdict" || err != nil {
		t.Fatalf("event %s %s: %v", name, data, err)
	}
	if v.Verdict != "deny" || v.Text.ZH != Reasons["health_code_red"].ZH || v.N != 1 {
		t.Errorf("verdict %+v", v)
	}
	s.SetUnit(Unit{Venue: "350582-0001", Device: "gate-01", Platform: "offline", Mode: "normal", Clock: "synced"})
	if name, data := r.next(t); name != "unit" || !strings.Contains(data, `"platform":"offline"`) {
		t.Fatalf("event %s %s, want the offline unit", name, data)
	}

	// A browser that connects while a verdict is held gets it at once.
	resp2, r2 := openStream(t, ctx, ts.URL)
	r2.next(t)
	if name, _ := r2.next(t); name != "verdict" {
		t.Errorf("late client got %s, want the held verdict", name)
	}
	// A client that disconnects mid-stream is forgotten and counted; the server goes on.
	resp2.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Clients != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("disconnected client still registered: %+v", s.Stats())
		}
		s.SetUnit(Unit{Device: time.Now().String()}) // writes fail only when something is written
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Stats(); st.Closed != 1 {
		t.Errorf("stats %+v, want 1 closed", st)
	}
}

func TestSlowClientDropped(t *testing.T) {
	s := New(Options{})
	c := &client{ch: make(chan event, 1), gone: make(chan struct{})}
	s.clients[c] = struct{}{}
	done := make(chan struct{})
	go func() {
		for i := 0; i < 5; i++ {
			s.Show(Verdict{Verdict: "pass", Reason: "ok"}) // must never block
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Show blocked on a slow client")
	}
	select {
	case <-c.gone:
	default:
		t.Fatal("slow client not dropped")
	}
	if st := s.Stats(); st.Slow != 1 || st.Clients != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestReadOnlyAndHosts(t *testing.T) {
	s := New(Options{AllowedHosts: LoopbackHosts("127.0.0.1:8080")})
	tests := []struct {
		name, method, host, path string
		want                     int
	}{
		{"page", "GET", "127.0.0.1:8080", "/", 200},
		{"state", "GET", "localhost:8080", "/state", 200},
		{"post", "POST", "127.0.0.1:8080", "/state", 405},
		{"put", "PUT", "127.0.0.1:8080", "/", 405},
		{"other path", "GET", "127.0.0.1:8080", "/api/v1/verify/qr", 404},
		{"rebinding", "GET", "evil.example:8080", "/state", 421},
		{"other port", "GET", "127.0.0.1:9999", "/", 421},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://"+tt.host+tt.path, strings.NewReader("{}"))
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != tt.want {
				t.Errorf("%s %s (Host %s) = %d, want %d", tt.method, tt.path, tt.host, w.Code, tt.want)
			}
		})
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1:8080/", nil))
	body, _ := io.ReadAll(w.Body)
	for _, want := range []string{`id="verdict"`, "EventSource", "通过", "禁止通行"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
}
