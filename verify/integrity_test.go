package verify

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/internal/secretfile"
)

// listenOn starts an httptest server on a given loopback address.
func listenOn(t *testing.T, addr string, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestRedirectNotFollowed (issue #11, finding 2): a platform that answers with a redirect to
// another host must not have the body and the signing headers sent there, and the other
// host's answer must not decide the passage. Every 3xx is a platform_error, with the
// location's host (never its query) in the call.
func TestRedirectNotFollowed(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var other atomic.Int32
			elsewhere := listenOn(t, "127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				other.Add(1)
				answer(200, okAnswer)(w, r)
			}))
			target := elsewhere.URL + "/api/v1/verify/qr?token=leaked-TOKEN-1234"
			platform := listenOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", target)
				w.WriteHeader(status)
			}))
			s, err := NewSigner(SignHMACSHA256, "ak", []byte("a-long-enough-secret"))
			if err != nil {
				t.Fatal(err)
			}
			c := NewClient(ClientOptions{URL: platform.URL, Device: "gate-01", Venue: "v", Timeout: time.Second, Signer: s})
			v := NewVerifier(c, VerifierOptions{Policy: greenOnly})
			d := v.Decide(context.Background(), Credential{Kind: KindQR, QRToken: "HC-1"}, "pid")
			if d.Verdict != Deny || d.Reason != ReasonPlatformError || d.Mode != ModeOnline {
				t.Errorf("decision %s/%s/%s, want deny/platform_error/online (err %v)", d.Verdict, d.Reason, d.Mode, d.Err)
			}
			if n := other.Load(); n != 0 {
				t.Errorf("the other host received %d requests", n)
			}
			if !errors.Is(d.Err, ErrRedirect) || !errors.Is(d.Err, ErrPlatform) {
				t.Errorf("err = %v, want ErrRedirect and ErrPlatform", d.Err)
			}
			host := strings.TrimPrefix(elsewhere.URL, "http://")
			calls := d.Calls()
			if len(calls) != 1 {
				t.Fatalf("%d calls, want 1 (a redirect is not retried)", len(calls))
			}
			if c := calls[0]; c.RedirectHost != host || c.Result != ResultPlatformError || c.Status != status {
				t.Errorf("call redirect host %q result %s status %d, want %q platform_error %d", c.RedirectHost, c.Result, c.Status, host, status)
			}
			if d.Err == nil {
				return
			}
			if msg := d.Err.Error(); !strings.Contains(msg, host) || strings.Contains(msg, "leaked") || strings.Contains(msg, "token=") {
				t.Errorf("error %q should name the host and nothing of the query", msg)
			}
		})
	}
}

// A redirect to the same host is refused too, and so is a ping's.
func TestRedirectSameHostAndPing(t *testing.T) {
	var pinged atomic.Int32
	var srv *httptest.Server
	srv = listenOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			pinged.Add(1)
			answer(200, `{"code":"ok"}`)(w, r)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	var audited []Call
	c := NewClient(ClientOptions{URL: srv.URL, Timeout: time.Second, OnPing: func(c Call) { audited = append(audited, c) },
		HTTP: &http.Client{}}) // a caller's client that would follow redirects
	_, call, err := c.Verify(context.Background(), Credential{Kind: KindQR, QRToken: "HC-1"}, "")
	u, _ := url.Parse(srv.URL)
	if !errors.Is(err, ErrRedirect) || call.RedirectHost != u.Host {
		t.Errorf("verify: err %v, redirect host %q, want ErrRedirect to %s", err, call.RedirectHost, u.Host)
	}
	if _, err := c.Ping(context.Background()); !errors.Is(err, ErrRedirect) {
		t.Errorf("ping: err %v, want ErrRedirect", err)
	}
	if pinged.Load() != 0 {
		t.Errorf("the redirect target was requested %d times", pinged.Load())
	}
	if len(audited) != 1 || audited[0].RedirectHost != u.Host || audited[0].Result != ResultPlatformError {
		t.Errorf("ping audit %+v", audited)
	}
}

const (
	holder = "310115196002195076" // the card that was read
	other  = "440305197204270689" // the person the answer is about
)

func answerAbout(id string, match bool) fakeAnswer {
	return fakeAnswer{r: Result{Identity: Identity{IDNumber: id, Name: "李四", Match: match}, HealthCode: "green"}, c: Call{Result: ResultOK, Status: 200}}
}

// TestIdentityBound (issue #11, finding 3): the identity in an answer must be the
// credential's own for an ID card and for a face verified 1:1 with the card; otherwise the
// passage is denied identity_mismatch, the subject stays the card holder, and the decision
// names the other person for the alert. A QR token's and a 1:N face's identity is the
// platform's.
func TestIdentityBound(t *testing.T) {
	jpeg := []byte{0xFF, 0xD8, 0xFF, 0xD9}
	card := Credential{Kind: KindIDCard, IDNumber: holder, Name: "王五"}
	face := Credential{Kind: KindFace, IDNumber: holder, Name: "王五", FaceJPEG: jpeg}
	tests := []struct {
		name     string
		cred     Credential
		ans      fakeAnswer
		policy   Policy
		verdict  string
		reason   string
		subject  string
		mismatch string
	}{
		{"card, other person", card, answerAbout(other, true), greenOnly, Deny, ReasonIdentityMismatch, holder, other},
		{"card, other person, match ignored", card, answerAbout(other, true), Policy{HealthCodes: []string{"green"}, IgnoreIdentityMatch: true}, Deny, ReasonIdentityMismatch, holder, other},
		{"card, same person", card, answerAbout(holder, true), greenOnly, Pass, ReasonOK, holder, ""},
		{"card, lower-case x", Credential{Kind: KindIDCard, IDNumber: "11010519491231002X", Name: "张三"}, answerAbout("11010519491231002x", true), greenOnly, Pass, ReasonOK, "11010519491231002X", ""},
		{"card, answer names nobody", card, answerAbout("", true), greenOnly, Pass, ReasonOK, holder, ""},
		{"card, name mismatch", card, answerAbout(holder, false), greenOnly, Deny, ReasonIdentityMismatch, holder, ""},
		{"face 1:1, other person", face, answerAbout(other, true), greenOnly, Deny, ReasonIdentityMismatch, holder, other},
		{"face 1:1, same person", face, answerAbout(holder, true), greenOnly, Pass, ReasonOK, holder, ""},
		{"face 1:N: the platform's", Credential{Kind: KindFace, FaceJPEG: jpeg}, answerAbout(other, true), greenOnly, Pass, ReasonOK, other, ""},
		{"qr: the platform's", Credential{Kind: KindQR, QRToken: "HC-1"}, answerAbout(other, true), greenOnly, Pass, ReasonOK, other, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier(&fakePlatform{answers: []fakeAnswer{tt.ans}}, VerifierOptions{Policy: tt.policy, Offline: OfflineAllowCached,
				Now: func() time.Time { return time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC) }})
			d := v.Decide(context.Background(), tt.cred, "p")
			if d.Verdict != tt.verdict || d.Reason != tt.reason || d.Mode != ModeOnline {
				t.Errorf("decision %s/%s/%s, want %s/%s/online", d.Verdict, d.Reason, d.Mode, tt.verdict, tt.reason)
			}
			if d.Subject.IDNumber != tt.subject {
				t.Errorf("subject %s, want %s", privacy.MaskID(d.Subject.IDNumber), privacy.MaskID(tt.subject))
			}
			switch {
			case tt.mismatch == "" && d.Mismatch != nil:
				t.Errorf("mismatch %s, want none", privacy.MaskID(d.Mismatch.IDNumber))
			case tt.mismatch != "" && (d.Mismatch == nil || d.Mismatch.IDNumber != tt.mismatch):
				t.Errorf("mismatch %v, want the other person %s", d.Mismatch != nil, privacy.MaskID(tt.mismatch))
			}
			if tt.mismatch != "" && d.Subject.Name != tt.cred.Name {
				t.Errorf("subject name %s, want the card holder's", privacy.MaskName(d.Subject.Name))
			}
		})
	}
}

// A mismatched answer is no pass for the offline cache: neither the card holder nor the
// other person is admitted offline on its strength.
func TestIdentityMismatchNotCached(t *testing.T) {
	p := &fakePlatform{answers: []fakeAnswer{answerAbout(other, true), timedOut}}
	v := NewVerifier(p, VerifierOptions{Policy: greenOnly, Offline: OfflineAllowCached, ProbeInterval: time.Nanosecond,
		Now: func() time.Time { return time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC) }})
	card := Credential{Kind: KindIDCard, IDNumber: holder, Name: "王五"}
	if d := v.Decide(context.Background(), card, "a"); d.Reason != ReasonIdentityMismatch {
		t.Fatalf("first: %s", d.Reason)
	}
	for _, id := range []string{holder, other} {
		if d := v.Decide(context.Background(), Credential{Kind: KindIDCard, IDNumber: id, Name: "王五"}, "b"); d.Reason != ReasonOfflineNotCached {
			t.Errorf("offline after a mismatch: %s", d.Reason)
		}
	}
}

// TestReadSecretFile (issue #11, finding 9): the signing secret is read through secretfile.
func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte("a-secret\n"), 0o600)
	os.Chmod(open, 0o644)
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte(" a-secret \n"), 0o600)
	tests := []struct {
		path string
		want error
	}{
		{"/dev/zero", secretfile.ErrNotRegular},
		{dir, secretfile.ErrNotRegular},
		{open, secretfile.ErrTooOpen},
		{filepath.Join(dir, "missing"), secretfile.ErrRead},
	}
	for _, tt := range tests {
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err := ReadSecretFile(tt.path)
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrSigning) {
				t.Errorf("%s: err = %v, want %v and ErrSigning", tt.path, err, tt.want)
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: ReadSecretFile did not return", tt.path)
		}
	}
	if b, err := ReadSecretFile(good); err != nil || strings.TrimSpace(string(b)) != "a-secret" {
		t.Errorf("good: %q, %v", b, err)
	}
}
