package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/drivers/camera"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
	"github.com/sentinel-edge/sentinel/verify"
)

// faceRig is the reference platform (sim/platform, real HTTP on loopback) with its request
// log, and an IP camera: an httptest server whose snapshot shows the face it is told to.
type faceRig struct {
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

func newFaceRig(t *testing.T) *faceRig {
	t.Helper()
	r := &faceRig{people: population.Generate(population.GenerateOptions{Seed: 11, Random: 2}), reqs: &lockedBuf{}}
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

// person is the population's person holding token.
func (r *faceRig) person(t *testing.T, token string) population.Person {
	t.Helper()
	for _, p := range r.people {
		if p.QRToken == token {
			return p
		}
	}
	t.Fatalf("no person with token %s", population.Mask(token))
	return population.Person{}
}

func (r *faceRig) decider(t *testing.T, mode string) *FaceDecider {
	t.Helper()
	c := verify.NewClient(verify.ClientOptions{URL: r.platform.URL, Device: "pillar-01", Venue: "v-1", Timeout: 2 * time.Second})
	v := verify.NewVerifier(c, verify.VerifierOptions{Policy: verify.Policy{HealthCodes: []string{"green"}, NATMaxAge: 72 * time.Hour}, Budget: 3 * time.Second})
	cam, err := camera.NewHTTP(r.cam.URL+"/snapshot.jpg", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &FaceDecider{Inner: v, Camera: cam, Mode: mode, Timeout: time.Second, PolicyHash: v.PolicyHash(), Log: quietLog()}
}

// TestFaceDecider: with the reference platform's face endpoint and an httptest camera, an
// ID-card passage is decided by the face and the card's ID number (credential face); another
// person's face is an identity mismatch; a camera that fails falls back to the card alone
// under with_idcard and denies face_unavailable without a call under required; QR scans are
// not touched; the camera's failure and return are reported once each.
func TestFaceDecider(t *testing.T) {
	r := newFaceRig(t)
	green := r.person(t, population.TokenGreenFresh)
	red := r.person(t, population.TokenRed)
	card := verify.Credential{Kind: verify.KindIDCard, IDNumber: green.IDNumber, Name: green.Name}
	tests := []struct {
		name        string
		mode        string
		showing     string // face in front of the camera; "" fails the snapshot
		cred        verify.Credential
		verdict     string
		reason      string
		credential  string
		iface       string // the platform interface called; "" none
		wantSubject bool
	}{
		{"with_idcard, the card's face", config.CameraVerifyWithIDCard, green.IDNumber, card, verify.Pass, verify.ReasonOK, verify.KindFace, platform.IfaceFace, true},
		{"with_idcard, another face", config.CameraVerifyWithIDCard, red.IDNumber, card, verify.Deny, verify.ReasonIdentityMismatch, verify.KindFace, platform.IfaceFace, true},
		{"with_idcard, camera fails: card alone", config.CameraVerifyWithIDCard, "", card, verify.Pass, verify.ReasonOK, verify.KindIDCard, platform.IfaceIDCard, true},
		{"required, the card's face", config.CameraVerifyRequired, green.IDNumber, card, verify.Pass, verify.ReasonOK, verify.KindFace, platform.IfaceFace, true},
		{"required, camera fails: denied without a call", config.CameraVerifyRequired, "", card, verify.Deny, verify.ReasonFaceUnavailable, verify.KindFace, "", true},
		{"QR untouched", config.CameraVerifyRequired, green.IDNumber, verify.Credential{Kind: verify.KindQR, QRToken: population.TokenGreenFresh}, verify.Pass, verify.ReasonOK, verify.KindQR, platform.IfaceQR, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd := r.decider(t, tt.mode)
			r.showing.Store(tt.showing)
			before, shots := len(r.reqs.entries(t)), r.shots.Load()
			d := fd.Decide(context.Background(), tt.cred, "passage-1")
			if d.Verdict != tt.verdict || d.Reason != tt.reason || d.Credential != tt.credential {
				t.Errorf("decision %s/%s credential %s (err %v), want %s/%s %s", d.Verdict, d.Reason, d.Credential, d.Err, tt.verdict, tt.reason, tt.credential)
			}
			if tt.wantSubject && d.Subject.IDNumber != green.IDNumber {
				t.Errorf("subject %s, want the card's %s", privacy.MaskID(d.Subject.IDNumber), privacy.MaskID(green.IDNumber))
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
			if got := r.shots.Load() - shots; got != wantShots {
				t.Errorf("%d snapshots, want %d", got, wantShots)
			}
			if img := fd.Take(); img != nil {
				t.Error("a snapshot is kept without camera.keep sealed")
			}
		})
	}

	// The camera's state: reported on change only.
	fd := r.decider(t, config.CameraVerifyWithIDCard)
	var states []bool
	fd.OnState = func(on bool, _ error) { states = append(states, on) }
	for _, showing := range []string{green.IDNumber, green.IDNumber, "", "", green.IDNumber} {
		r.showing.Store(showing)
		fd.Decide(context.Background(), card, "p")
	}
	var got []string
	for _, on := range states {
		got = append(got, map[bool]string{true: "on", false: "off"}[on])
	}
	if strings.Join(got, ",") != "on,off,on" {
		t.Errorf("camera states %v, want on,off,on", got)
	}
	if st := fd.Stats(); st.Snapshots != 3 || st.Failures != 2 || st.Fallbacks != 2 {
		t.Errorf("stats %+v, want 3 snapshots, 2 failures, 2 fallbacks", st)
	}
}

// zeroCam hands out one buffer and keeps it, so the test can see it zeroed.
type zeroCam struct{ buf []byte }

func (z *zeroCam) Snapshot(context.Context) ([]byte, error) { return z.buf, nil }
func (z *zeroCam) String() string                           { return "zero camera" }

// TestFaceSnapshotKept: without camera.keep the snapshot is zeroed once decided; with it,
// the record's sealed subject carries it and only the platform's key opens it.
func TestFaceSnapshotKept(t *testing.T) {
	r := newFaceRig(t)
	green := r.person(t, population.TokenGreenFresh)
	card := verify.Credential{Kind: verify.KindIDCard, IDNumber: green.IDNumber, Name: green.Name}
	c := verify.NewClient(verify.ClientOptions{URL: r.platform.URL, Timeout: 2 * time.Second})
	v := verify.NewVerifier(c, verify.VerifierOptions{Policy: verify.Policy{HealthCodes: []string{"green"}}, Budget: 3 * time.Second})

	z := &zeroCam{buf: platform.FaceJPEG(green.IDNumber)}
	fd := &FaceDecider{Inner: v, Camera: z, Mode: config.CameraVerifyWithIDCard, Timeout: time.Second, Log: quietLog()}
	if d := fd.Decide(context.Background(), card, "p1"); d.Credential != verify.KindFace || d.Reason != verify.ReasonOK {
		t.Fatalf("decision %s/%s", d.Credential, d.Reason)
	}
	for i, b := range z.buf {
		if b != 0 {
			t.Fatalf("the snapshot was not zeroed after the decision (byte %d)", i)
		}
	}

	// camera.keep sealed, through setupFace and the queue part's sealing.
	dir := t.TempDir()
	pub, priv, err := privacy.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "platform.pub")
	if err := os.WriteFile(keyFile, []byte(privacy.EncodeKey(*pub)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("face.yaml", []byte(`device: {id: pillar-01, venue: "350582-0001", style: pillar}
scanners:
  qr: {driver: serial, port: /dev/ttyS1}
  idcard: {driver: sam, port: /dev/ttyUSB0}
camera: {driver: http, url: "`+r.cam.URL+`/snapshot.jpg", keep: sealed}
platform: {url: "`+r.platform.URL+`"}
barrier: {driver: fake}
privacy: {platform_key_file: `+keyFile+`, hash_key_file: `+filepath.Join(dir, "hash.key")+`}
queue: {path: `+filepath.Join(dir, "q.db")+`}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FaceVerify() != config.CameraVerifyRequired {
		t.Fatalf("pillar camera.verify %q, want required", cfg.FaceVerify())
	}
	ob := &fakeOutbox{o: &order{}}
	d := &Daemon{Cfg: cfg, Log: quietLog(), Verifier: v,
		Pipeline: &Pipeline{Device: "pillar-01", Venue: "350582-0001", Topic: "t", Decider: v, Outbox: ob, Log: quietLog()}}
	if err := setupSealing(d); err != nil {
		t.Fatal(err)
	}
	cam, err := camera.NewHTTP(cfg.Camera.URL, cfg.Camera.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	if err := setupFace(d, cam, nil, quietLog()); err != nil {
		t.Fatal(err)
	}
	r.showing.Store(green.IDNumber)
	for _, cred := range []verify.Credential{card, {Kind: verify.KindQR, QRToken: population.TokenGreenFresh}} {
		if _, err := d.Pipeline.Handle(context.Background(), cred, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var recs []Record
	for _, b := range ob.recs {
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), green.IDNumber) {
			t.Error("a record carries the ID number unsealed")
		}
		recs = append(recs, rec)
	}
	if len(recs) != 2 || recs[0].Credential != verify.KindFace || recs[1].Credential != verify.KindQR {
		t.Fatalf("records %+v, want a face then a QR passage", recs)
	}
	for i, rec := range recs {
		s, err := privacy.Open(pub, priv, rec.Subject.Sealed)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if s.IDNumber != green.IDNumber {
			t.Errorf("record %d: sealed ID %s", i, privacy.MaskID(s.IDNumber))
		}
		wantFace := i == 0
		if (len(s.Face) > 0) != wantFace || (wantFace && platform.FaceID(s.Face) != green.IDNumber) {
			t.Errorf("record %d (%s): sealed face of %d bytes, want one: %v", i, rec.Credential, len(s.Face), wantFace)
		}
		if rec.Subject.Hash == "" {
			t.Errorf("record %d lost its look-up hash", i)
		}
	}
	if fd, ok := d.Pipeline.Decider.(*FaceDecider); !ok || fd.Take() != nil {
		t.Error("the snapshot is still held after its record was sealed")
	}
}
