package platform

import (
	"encoding/json"
	"io"
	"sync"
)

// LogEntry is one line of the request log (Options.RequestLog): every request the server
// received, one JSON object per line. It never holds a credential.
type LogEntry struct {
	Time      string  `json:"time"` // when the request arrived, RFC 3339 with ms
	Method    string  `json:"method"`
	Path      string  `json:"path"`
	Interface string  `json:"interface"` // ping, qr, idcard, face; empty for an unknown path
	Device    string  `json:"device"`
	Venue     string  `json:"venue"`
	Passage   string  `json:"passage"` // the passage header, as sent
	Status    int     `json:"status"`  // 0 when no answer was written (hang, drop)
	Code      string  `json:"code"`
	RequestID string  `json:"request_id"`
	Signature string  `json:"signature"` // off, ok, missing, bad, stale, replay
	Fault     string  `json:"fault"`     // the injected fault, "ok" when none
	LatencyMS float64 `json:"latency_ms"`
}

// requestLog writes entries as JSON lines; safe for concurrent use.
type requestLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *requestLog) write(e LogEntry) {
	if l == nil || l.w == nil {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(append(b, '\n'))
}
