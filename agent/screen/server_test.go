package screen

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/sentinel-edge/sentinel/verify"
)

func TestEveryReasonHasText(t *testing.T) {
	codes := []string{"face_not_found", "face_low_score"} // the face detector's, added with it
	for _, r := range verify.Reasons {
		codes = append(codes, r.Code)
	}
	for _, code := range codes {
		m, ok := Reasons[code]
		if !ok || m.Person.ZH == "" || m.Person.EN == "" {
			t.Errorf("reason %s has no Chinese and English screen text", code)
		}
		if (m.Staff.ZH == "") != (m.Staff.EN == "") {
			t.Errorf("reason %s has a staff text in one language only: %+v", code, m.Staff)
		}
	}
	got := Explain("brand_new_code", "qr")
	if !strings.Contains(got.Staff.EN, "brand_new_code") || got.Person.EN == "" {
		t.Errorf("an unknown code should tell the staff the code, got %+v", got)
	}
}

// Issue #14, finding 6: "please see the staff" was shown to the staff (a handheld is held by
// them; a gate's guard reads the screen). The person is told what happens next, the staff
// what to do, each on a line of their own; nothing sends anyone to "the staff" in the staff
// line, and a face that does not match the card is not called a name mismatch.
func TestTextsForPersonAndStaff(t *testing.T) {
	all := map[string]Message{}
	for k, m := range Reasons {
		all[k] = m
	}
	for k, m := range FaceReasons {
		all["face/"+k] = m
	}
	for _, o := range []Message{FireAlarm, FireAlarmNoBarrier, Tamper, Offline["deny"], Offline["allow_cached"], Offline["allow_and_flag"]} {
		all[o.Person.EN] = o
	}
	for code, m := range all {
		for _, bad := range []string{"see the staff", "联系工作人员"} {
			if strings.Contains(m.Person.EN+m.Person.ZH+m.Staff.EN+m.Staff.ZH, bad) {
				t.Errorf("%s says %q: tell the person what happens and the staff what to do instead (%+v)", code, bad, m)
			}
		}
		if strings.Contains(m.Staff.ZH, "工作人员") {
			t.Errorf("%s: the staff's line addresses the staff by name: %q", code, m.Staff.ZH)
		}
	}
	face := Explain("identity_mismatch", "face")
	if !strings.Contains(face.Person.EN, "face does not match the ID card") || strings.Contains(face.Person.EN, "name") {
		t.Errorf("a face that does not match the card: %+v", face)
	}
	if card := Explain("identity_mismatch", "idcard"); strings.Contains(card.Person.EN, "face") {
		t.Errorf("an ID card's mismatch speaks of a face: %+v", card)
	}
	for _, code := range []string{"face_unavailable", "face_low_score"} {
		if m := Explain(code, "face"); !strings.Contains(m.Person.EN, "camera") || m.Staff.EN == "" {
			t.Errorf("%s: %+v, want the person told to face the camera and the staff what to check", code, m)
		}
	}
	// A face nobody matches is no camera fault: the person is offered the other ways in.
	if m := Explain("face_not_found", "face"); !strings.Contains(m.Person.EN, "health code") || !strings.Contains(m.Person.EN, "ID card") ||
		strings.Contains(m.Person.EN, "again") || m.Staff.EN == "" {
		t.Errorf("face_not_found: %+v, want the person offered a health code or ID card", m)
	}
}

func TestIdlePrompt(t *testing.T) {
	tests := []struct {
		kinds []string
		want  string
	}{
		{[]string{KindQR}, "Scan your health code"},
		{[]string{KindFace}, "Place your ID card on the reader and face the camera"},
		{[]string{KindQR, KindIDCard}, "Scan your health code | or place your ID card on the reader"},
		{[]string{"iris", KindIDCard}, "Place your ID card on the reader"},
		{[]string{KindFaceAlone, KindFace}, "Look at the camera to pass by face | or place your ID card on the reader and face the camera"},
		{nil, ""},
	}
	for _, tt := range tests {
		var en []string
		for _, l := range IdlePrompt(tt.kinds) {
			en = append(en, l.EN)
		}
		if got := strings.Join(en, " | "); got != tt.want {
			t.Errorf("IdlePrompt(%v) = %q, want %q", tt.kinds, got, tt.want)
		}
	}
}

// A face hint reaches the browsers as an event with its words; a browser that connects later
// gets the newest; an unknown code (or "") asks nothing.
func TestFaceHints(t *testing.T) {
	s := New(Options{})
	hs := httptest.NewServer(s)
	defer hs.Close()
	s.ShowHint("come_closer")
	s.ShowHint("come_closer") // the same again: not sent twice
	req, _ := http.NewRequest("GET", hs.URL+"/events", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s.ShowHint("<script>")
	var got []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && len(got) < 2 {
		if l, ok := strings.CutPrefix(sc.Text(), "data: "); ok && strings.Contains(l, `"code"`) {
			got = append(got, l)
		}
	}
	if len(got) != 2 || !strings.Contains(got[0], `"code":"come_closer"`) || !strings.Contains(got[0], "Please come closer") ||
		!strings.Contains(got[1], `"code":""`) || strings.Contains(got[1], "script") {
		t.Errorf("hint events %q", got)
	}
}

// The unit's alarm and offline states reach the page as notices, with the words for each.
func TestUnitNotices(t *testing.T) {
	state := func(u Unit) Unit {
		s := New(Options{})
		s.SetUnit(u)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", "/state", nil))
		var st struct{ Unit Unit }
		if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		return st.Unit
	}
	u := state(Unit{Platform: "online", FireAlarm: "alarm", Barrier: true, Tamper: true, Accepts: []string{KindFace}})
	if u.FireNotice == nil || !strings.Contains(u.FireNotice.Person.EN, "barrier is held open") {
		t.Errorf("fire alarm on a gate: %+v", u.FireNotice)
	}
	if u.TamperNote == nil || !strings.Contains(u.TamperNote.Staff.EN, "case is open") {
		t.Errorf("tamper: %+v", u.TamperNote)
	}
	if u.OfflineNote != nil || len(u.Prompt) != 1 || !strings.Contains(u.Prompt[0].EN, "face the camera") {
		t.Errorf("online pillar: offline %+v, prompt %+v", u.OfflineNote, u.Prompt)
	}
	if u := state(Unit{FireAlarm: "alarm"}); u.FireNotice == nil || strings.Contains(u.FireNotice.Person.EN, "barrier") {
		t.Errorf("fire alarm without a barrier: %+v", u.FireNotice)
	}
	if u := state(Unit{Platform: "offline", OfflinePolicy: "deny"}); u.OfflineNote == nil || !strings.Contains(u.OfflineNote.Staff.EN, "by hand") {
		t.Errorf("offline, deny: %+v", u.OfflineNote)
	}
	if u := state(Unit{Platform: "offline", OfflinePolicy: "allow_cached"}); u.OfflineNote == nil || !strings.Contains(u.OfflineNote.Person.EN, "recently") {
		t.Errorf("offline, allow_cached: %+v", u.OfflineNote)
	}
	if u := state(Unit{Platform: "online", FireAlarm: "normal"}); u.FireNotice != nil || u.TamperNote != nil {
		t.Errorf("a quiet unit has notices: %+v", u)
	}
}

// Issue #14, finding 6: the fire alarm's 🔥 rendered as a box on a unit without an emoji
// font. The page's own text uses only characters the CJK and Latin fonts have: icons are
// inline SVG.
func TestPageNeedsNoSymbolFont(t *testing.T) {
	for i, r := range string(page) {
		if r >= 0x2190 && !unicode.Is(unicode.Han, r) && !unicode.In(r, unicode.Hiragana, unicode.Katakana) &&
			!(r >= 0x3000 && r <= 0x303f) && !(r >= 0xff00 && r <= 0xffef) && r != 0x2014 {
			t.Errorf("page.html offset %d: %q (U+%04X) needs a symbol or emoji font: draw it as inline SVG", i, r, r)
		}
	}
	for _, want := range []string{`id="fire"`, `id="i-flame"`, `id="tamper"`, `id="offline"`, `id="v-staff"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %s", want)
		}
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
	if v.Verdict != "deny" || v.Text.ZH != Reasons["health_code_red"].Person.ZH || v.N != 1 {
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

// docs/screen.md shows every text the screen says.
func TestDocsShowEveryText(t *testing.T) {
	b, err := os.ReadFile("../../docs/screen.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var all []Message
	for _, m := range Reasons {
		all = append(all, m)
	}
	for _, m := range FaceReasons {
		all = append(all, m)
	}
	for _, m := range Offline {
		all = append(all, m)
	}
	all = append(all, FireAlarm, FireAlarmNoBarrier, Tamper)
	for _, m := range all {
		for _, s := range []string{m.Person.ZH, m.Person.EN, m.Staff.ZH, m.Staff.EN} {
			if !strings.Contains(doc, s) {
				t.Errorf("docs/screen.md lacks %q", s)
			}
		}
	}
	for _, p := range prompts {
		if !strings.Contains(doc, p.ZH) || !strings.Contains(doc, p.EN) {
			t.Errorf("docs/screen.md lacks the prompt %+v", p)
		}
	}
}

// Found by an adversarial round (2026-12-02): any local process could open /events without
// bound; 19,995 streams took 570 MB and every file descriptor (the status file, then the
// kiosk's own browser failed). Streams beyond MaxClients are refused with 503 and a retry
// hint; one that closes makes room.
func TestStreamClientsBounded(t *testing.T) {
	s := New(Options{MaxClients: 3})
	ts := httptest.NewServer(s)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var open []*http.Response
	for range 3 {
		resp, r := openStream(t, ctx, ts.URL)
		r.next(t)
		open = append(open, resp)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("stream %d: HTTP %d (Retry-After %q), want 503 with Retry-After", len(open)+1, resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if st := s.Stats(); st.Refused != 1 || st.Clients != 3 {
		t.Errorf("stats %+v, want 1 refused, 3 clients", st)
	}
	open[0].Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Clients != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the closed stream is still counted: %+v", s.Stats())
		}
		s.SetUnit(Unit{Device: time.Now().String()})
		time.Sleep(10 * time.Millisecond)
	}
	resp4, r4 := openStream(t, ctx, ts.URL)
	defer resp4.Body.Close()
	if name, _ := r4.next(t); name != "unit" {
		t.Errorf("after a close, a new stream got %q, want the unit", name)
	}
	for _, r := range open[1:] {
		r.Body.Close()
	}
	if New(Options{}).opt.MaxClients != DefaultMaxClients {
		t.Errorf("no default cap")
	}
}
