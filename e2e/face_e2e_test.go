package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/sim/platform"
	simpop "github.com/sentinel-edge/sentinel/sim/population"
)

// TestE2EFaceWithIDCard runs the agent binary as a gate all-in-one with an ID-card reader
// (sentinel-sim card on a pty) and an IP camera (an httptest snapshot server showing the
// card holder's face), against the reference platform: the card's passage is decided by the
// platform's face call (camera.verify defaults to with_idcard for this style), and the
// record says credential face, with the card's masked subject. No snapshot is stored.
func TestE2EFaceWithIDCard(t *testing.T) {
	broker := mqtttest.Start(t)
	w := newWorld(t)
	const venue, device = "350582-0001", "e2e-face-01"
	passages := broker.Subscribe(t, "sentinel/v1/"+venue+"/"+device+"/passage")
	pop, err := simpop.Load(filepath.Join(w.Dir, "population.csv"))
	if err != nil {
		t.Fatal(err)
	}
	person := pop.People()[0] // green, fresh negative test
	var shots atomic.Int64
	cam := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		shots.Add(1)
		rw.Header().Set("Content-Type", "image/jpeg")
		_, _ = rw.Write(platform.FaceJPEG(person.IDNumber))
	}))
	defer cam.Close()
	idPort := filepath.Join(w.Dir, "ttyID")
	start(t, nil, filepath.Join(w.Bins, "sentinel-sim"), "card", "--port", idPort, "--population", filepath.Join(w.Dir, "population.csv"), "--present", "#1").
		waitFor(t, regexp.MustCompile(`port ready`), 10*time.Second)

	ag := w.agent(t, fmt.Sprintf(`device: {id: %s, venue: "%s", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: %s, baud: 9600}
  idcard: {driver: sam, port: %s}
camera: {driver: http, url: "%s/snapshot.jpg", timeout: 1s}
platform: {url: "http://%s", timeout: 800ms}
barrier: {driver: fake, pulse: 300ms}
queue: {path: %s}
uplink: {brokers: ["%s"], topic_prefix: sentinel/v1}
`+opsOff, device, venue, w.Port, idPort, cam.URL, w.APIAddr, filepath.Join(w.Dir, "queue.db"), broker.URL()))

	ag.waitFor(t, regexp.MustCompile(`msg=passage .*credential=face`), 15*time.Second)
	msgs := passages.WaitN(1, 15*time.Second)
	var r record.Passage
	if err := json.Unmarshal(msgs[0].Payload, &r); err != nil {
		t.Fatal(err)
	}
	if r.Credential != "face" || r.Verdict != "pass" || r.Reason != "ok" || r.Gate != "opened" {
		t.Errorf("record credential=%s verdict=%s reason=%s gate=%s, want face pass ok opened", r.Credential, r.Verdict, r.Reason, r.Gate)
	}
	if r.Subject.ID != privacy.MaskID(person.IDNumber) || r.Subject.Sealed != "" {
		t.Errorf("subject %+v, want the card's masked ID and nothing sealed", r.Subject)
	}
	if shots.Load() != 1 {
		t.Errorf("%d snapshots for one card, want 1", shots.Load())
	}
	if idNumber.Match(msgs[0].Payload) {
		t.Error("the record carries an unmasked ID number")
	}
	ag.stop(t)
	if idNumber.MatchString(ag.output()) {
		t.Error("the agent's log carries an unmasked ID number")
	}
}
