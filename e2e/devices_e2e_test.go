package e2e_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	simpop "github.com/sentinel-edge/sentinel/sim/population"
)

// TestE2EIDCard runs the agent with a QR scanner and an ID-card reader, both on ptys served
// by sentinel-sim (the card reader speaks the SAM protocol), against the reference platform
// and Mosquitto. The card lying on the reader becomes one passage record with credential
// idcard and the card's masked ID number and name; the reader coming online is an event.
func TestE2EIDCard(t *testing.T) {
	broker := mqtttest.Start(t)
	w := newWorld(t)
	const venue, device = "350582-0001", "e2e-id-01"
	passages := broker.Subscribe(t, "sentinel/v1/"+venue+"/"+device+"/passage")
	events := broker.Subscribe(t, "sentinel/v1/"+venue+"/"+device+"/event")

	popFile := filepath.Join(w.Dir, "population.csv")
	pop, err := simpop.Load(popFile)
	if err != nil {
		t.Fatal(err)
	}
	person := pop.People()[0] // HC-GREEN-FRESH: green, fresh negative test
	idPort := filepath.Join(w.Dir, "ttyID")
	start(t, nil, filepath.Join(w.Bins, "sentinel-sim"), "card", "--port", idPort, "--population", popFile, "--present", "#1",
		"--fault", "noise", "--fault-every", "5").
		waitFor(t, regexp.MustCompile(`port ready`), 10*time.Second)

	ag := w.agent(t, fmt.Sprintf(`device: {id: %s, venue: "%s", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: %s, baud: 9600}
  idcard: {driver: sam, port: %s}
platform: {url: "http://%s", timeout: 800ms}
barrier: {driver: fake, pulse: 300ms}
queue: {path: %s}
uplink: {brokers: ["%s"], topic_prefix: sentinel/v1}
`, device, venue, w.Port, idPort, w.APIAddr, filepath.Join(w.Dir, "queue.db"), broker.URL()))

	ag.waitFor(t, regexp.MustCompile(`msg=passage .*credential=idcard`), 15*time.Second)
	msgs := passages.WaitN(1, 15*time.Second)
	var r record.Passage
	if err := json.Unmarshal(msgs[0].Payload, &r); err != nil {
		t.Fatal(err)
	}
	if r.Credential != "idcard" || r.Verdict != "pass" || r.Gate != "opened" {
		t.Errorf("record credential=%s verdict=%s reason=%s gate=%s, want idcard pass opened", r.Credential, r.Verdict, r.Reason, r.Gate)
	}
	if r.Subject.ID != privacy.MaskID(person.IDNumber) || r.Subject.Name != privacy.MaskName(person.Name) {
		t.Errorf("subject %q/%q, want the card's masked ID and name %q/%q", r.Subject.ID, r.Subject.Name, privacy.MaskID(person.IDNumber), privacy.MaskName(person.Name))
	}
	if idNumber.Match(msgs[0].Payload) {
		t.Error("the record carries an unmasked ID number")
	}
	// The card stays on the reader: no second passage.
	time.Sleep(500 * time.Millisecond)
	if n := len(passages.Messages()); n != 1 {
		t.Errorf("%d passages for one card laid once", n)
	}

	var types []string
	for _, m := range events.WaitN(1, 15*time.Second) {
		var ev record.Event
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		types = append(types, ev.Type+"/"+ev.Source)
	}
	if !strings.Contains(strings.Join(types, ","), "reader_online/") {
		t.Errorf("events %v, want a reader_online", types)
	}
	ag.stop(t)
	if idNumber.MatchString(ag.output()) {
		t.Error("the agent's log carries an unmasked ID number")
	}
}
