package face_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/face"
	"github.com/sentinel-edge/sentinel/drivers/camera"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
	"github.com/sentinel-edge/sentinel/verify"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// rig is the reference platform (sim/platform, real HTTP on loopback) with its request log,
// and an IP camera: an httptest server whose snapshot shows the face it is told to.
type rig struct {
	people   []population.Person
	platform *httptest.Server
	reqs     *lockedBuf
	showing  atomic.Value // the ID number of the face in front of the camera; "" = camera fails
	cam      *httptest.Server
	shots    atomic.Int64
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// entries are the platform's request log lines.
func (l *lockedBuf) entries(t *testing.T) []platform.LogEntry {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var es []platform.LogEntry
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var e platform.LogEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	return es
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{people: population.Generate(population.GenerateOptions{Seed: 11, Random: 2}), reqs: &lockedBuf{}}
	pop, err := population.New(r.people)
	if err != nil {
		t.Fatal(err)
	}
	r.platform = httptest.NewServer(platform.NewServer(pop, platform.Options{RequestLog: r.reqs}))
	t.Cleanup(r.platform.Close)
	r.showing.Store("")
	r.cam = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.shots.Add(1)
		id := r.showing.Load().(string)
		if id == "" {
			http.Error(w, "sensor failure", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		_, _ = w.Write(platform.FaceJPEG(id))
	}))
	t.Cleanup(r.cam.Close)
	return r
}

func (r *rig) person(t *testing.T, token string) population.Person {
	t.Helper()
	for _, p := range r.people {
		if p.QRToken == token {
			return p
		}
	}
	t.Fatalf("no person with token %s", population.Mask(token))
	return population.Person{}
}

func (r *rig) verifier() *verify.Verifier {
	c := verify.NewClient(verify.ClientOptions{URL: r.platform.URL, Device: "pillar-01", Venue: "v-1", Timeout: 2 * time.Second})
	return verify.NewVerifier(c, verify.VerifierOptions{Policy: verify.Policy{HealthCodes: []string{"green"}, NATMaxAge: 72 * time.Hour}, Budget: 3 * time.Second})
}

func (r *rig) check(t *testing.T, required bool, v *verify.Verifier) *face.CardCheck {
	t.Helper()
	cam, err := camera.NewHTTP(r.cam.URL+"/snapshot.jpg", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return face.NewCardCheck(face.CardCheckOptions{Camera: cam, Required: required, Budget: time.Second, PolicyHash: v.PolicyHash(), Log: quiet()})
}

// decide is what the pipeline does with the step and the verifier.
func decide(c *face.CardCheck, v *verify.Verifier, cred verify.Credential, id string) (verify.Credential, verify.Decision) {
	cred, early := c.Prepare(context.Background(), cred)
	if early != nil {
		return cred, *early
	}
	return cred, v.Decide(context.Background(), cred, id)
}

// TestCardCheck: with the reference platform's face endpoint and an httptest camera, an
// ID-card passage is decided by the face and the card's ID number (credential face); another
// person's face is an identity mismatch; a camera that fails falls back to the card alone
// under with_idcard and denies face_unavailable without a call under required; QR scans are
// not touched; the camera's failure and return are reported once each.
func TestCardCheck(t *testing.T) {
	r := newRig(t)
	green := r.person(t, population.TokenGreenFresh)
	red := r.person(t, population.TokenRed)
	card := verify.Credential{Kind: verify.KindIDCard, IDNumber: green.IDNumber, Name: green.Name}
	tests := []struct {
		name       string
		required   bool
		showing    string // face in front of the camera; "" fails the snapshot
		cred       verify.Credential
		verdict    string
		reason     string
		credential string
		iface      string // the platform interface called; "" none
	}{
		{"with_idcard, the card's face", false, green.IDNumber, card, verify.Pass, verify.ReasonOK, verify.KindFace, platform.IfaceFace},
		{"with_idcard, another face", false, red.IDNumber, card, verify.Deny, verify.ReasonIdentityMismatch, verify.KindFace, platform.IfaceFace},
		{"with_idcard, camera fails: card alone", false, "", card, verify.Pass, verify.ReasonOK, verify.KindIDCard, platform.IfaceIDCard},
		{"required, the card's face", true, green.IDNumber, card, verify.Pass, verify.ReasonOK, verify.KindFace, platform.IfaceFace},
		{"required, camera fails: denied without a call", true, "", card, verify.Deny, verify.ReasonFaceUnavailable, verify.KindFace, ""},
		{"QR untouched", true, green.IDNumber, verify.Credential{Kind: verify.KindQR, QRToken: population.TokenGreenFresh}, verify.Pass, verify.ReasonOK, verify.KindQR, platform.IfaceQR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := r.verifier()
			c := r.check(t, tt.required, v)
			r.showing.Store(tt.showing)
			before, shots := len(r.reqs.entries(t)), r.shots.Load()
			got, d := decide(c, v, tt.cred, "passage-1")
			if d.Verdict != tt.verdict || d.Reason != tt.reason || d.Credential != tt.credential {
				t.Errorf("decision %s/%s credential %s (err %v), want %s/%s %s", d.Verdict, d.Reason, d.Credential, d.Err, tt.verdict, tt.reason, tt.credential)
			}
			if d.Subject.IDNumber != green.IDNumber {
				t.Errorf("subject %s, want the card's %s", privacy.MaskID(d.Subject.IDNumber), privacy.MaskID(green.IDNumber))
			}
			if (got.Kind == verify.KindFace) != (len(got.FaceJPEG) > 0) {
				t.Errorf("credential %s with %d face bytes", got.Kind, len(got.FaceJPEG))
			}
			es := r.reqs.entries(t)[before:]
			switch {
			case tt.iface == "" && len(es) != 0:
				t.Errorf("the platform was called %d times", len(es))
			case tt.iface != "" && (len(es) != 1 || es[0].Interface != tt.iface || es[0].Passage != "passage-1"):
				t.Errorf("platform requests %+v, want one to %s for passage-1", es, tt.iface)
			}
			wantShots := int64(1)
			if tt.cred.Kind == verify.KindQR {
				wantShots = 0
			}
			if n := r.shots.Load() - shots; n != wantShots {
				t.Errorf("%d snapshots, want %d", n, wantShots)
			}
		})
	}

	// The camera's state: reported on change only.
	v := r.verifier()
	var states []string
	c := face.NewCardCheck(face.CardCheckOptions{Camera: mustHTTP(t, r.cam.URL), Budget: time.Second, Log: quiet(),
		OnState: func(on bool, _ error) { states = append(states, map[bool]string{true: "on", false: "off"}[on]) }})
	for _, showing := range []string{green.IDNumber, green.IDNumber, "", "", green.IDNumber} {
		r.showing.Store(showing)
		decide(c, v, card, "p")
	}
	if strings.Join(states, ",") != "on,off,on" {
		t.Errorf("camera states %v, want on,off,on", states)
	}
	if st := c.Stats(); st.Snapshots != 3 || st.Failures != 2 || st.Fallbacks != 2 {
		t.Errorf("stats %+v, want 3 snapshots, 2 failures, 2 fallbacks", st)
	}
}

func mustHTTP(t *testing.T, base string) *camera.HTTP {
	t.Helper()
	cam, err := camera.NewHTTP(base+"/snapshot.jpg", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return cam
}

// bigCam gives a snapshot larger than the platform takes.
type bigCam struct{ buf []byte }

func (b *bigCam) Snapshot(context.Context) ([]byte, error) { return b.buf, nil }
func (b *bigCam) String() string                           { return "big camera" }

// A snapshot over the platform's limit is refused like a failed one, and zeroed.
func TestCardCheckOversizeSnapshot(t *testing.T) {
	cam := &bigCam{buf: make([]byte, verify.MaxFaceJPEG+1)}
	cam.buf[0] = 0xFF
	c := face.NewCardCheck(face.CardCheckOptions{Camera: cam, Required: true, Log: quiet()})
	_, d := c.Prepare(context.Background(), verify.Credential{Kind: verify.KindIDCard, IDNumber: "350582199001011231"})
	if d == nil || d.Reason != verify.ReasonFaceUnavailable || d.Err == nil || !strings.Contains(d.Err.Error(), "more than the platform takes") {
		t.Fatalf("decision %+v", d)
	}
	if cam.buf[0] != 0 {
		t.Error("the oversize snapshot was not zeroed")
	}
}
