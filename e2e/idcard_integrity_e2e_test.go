package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	simcard "github.com/sentinel-edge/sentinel/sim/card"
	simpop "github.com/sentinel-edge/sentinel/sim/population"
)

// TestE2EIDCardBadCheckDigit (issue #11, finding 4): a card whose ID number fails the GB 11643
// check character, read fine by the reader, lies on it. The agent denies it once,
// invalid_id_number, with credential idcard and the masked subject, shows it on the screen,
// and never asks the platform; the card polled again and again stays one record.
func TestE2EIDCardBadCheckDigit(t *testing.T) {
	broker := mqtttest.Start(t)
	reqLog := filepath.Join(t.TempDir(), "requests.jsonl")
	w := newWorld(t, "--request-log", reqLog)
	const venue, device = "350582-0001", "e2e-id-bad"
	passages := broker.Subscribe(t, "sentinel/v1/"+venue+"/"+device+"/passage")

	popFile := filepath.Join(w.Dir, "population.csv")
	pop, err := simpop.Load(popFile)
	if err != nil {
		t.Fatal(err)
	}
	bad := simcard.WithBadCheck(simcard.FromPerson(pop.People()[0])) // green, fresh test: only the check digit is wrong
	if simpop.ValidID(bad.IDNumber) {
		t.Fatal("the test card's ID number is valid")
	}
	idPort := filepath.Join(w.Dir, "ttyID")
	start(t, nil, filepath.Join(w.Bins, "sentinel-sim"), "card", "--port", idPort, "--population", popFile, "--present", "badcheck:#1").
		waitFor(t, regexp.MustCompile(`port ready`), 10*time.Second)

	screenPort := freePort(t)
	ag := w.agent(t, fmt.Sprintf(`device: {id: %s, venue: "%s", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: %s, baud: 9600}
  idcard: {driver: sam, port: %s}
platform: {url: "http://%s", timeout: 800ms}
barrier: {driver: fake, pulse: 300ms}
queue: {path: %s}
uplink: {brokers: ["%s"], topic_prefix: sentinel/v1}
screen: {listen: "127.0.0.1:%d"}
metrics: {listen: "off"}
`, device, venue, w.Port, idPort, w.APIAddr, filepath.Join(w.Dir, "queue.db"), broker.URL(), screenPort))

	ag.waitFor(t, regexp.MustCompile(`msg=passage .*credential=idcard`), 15*time.Second)
	msgs := passages.WaitN(1, 15*time.Second)
	var r record.Passage
	if err := json.Unmarshal(msgs[0].Payload, &r); err != nil {
		t.Fatal(err)
	}
	if r.Credential != "idcard" || r.Verdict != "deny" || r.Reason != "invalid_id_number" || r.Gate != "not_opened" {
		t.Errorf("record credential=%s verdict=%s reason=%s gate=%s, want idcard deny invalid_id_number not_opened", r.Credential, r.Verdict, r.Reason, r.Gate)
	}
	if r.Subject.ID != privacy.MaskID(bad.IDNumber) || r.Subject.Name != privacy.MaskName(bad.Name) {
		t.Errorf("subject %q/%q, want the card's masked ID and name %q/%q", r.Subject.ID, r.Subject.Name, privacy.MaskID(bad.IDNumber), privacy.MaskName(bad.Name))
	}
	if idNumber.Match(msgs[0].Payload) {
		t.Error("the record carries an unmasked ID number")
	}

	// Shown on the verdict screen.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/state", screenPort))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Verdict *struct{ Verdict, Reason string } `json:"verdict"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Verdict == nil || st.Verdict.Verdict != "deny" || st.Verdict.Reason != "invalid_id_number" {
		t.Errorf("screen state %+v (%v), want the deny invalid_id_number", st.Verdict, err)
	}

	// The card lies there, polled every 250 ms: still one record, and no platform call.
	time.Sleep(1500 * time.Millisecond)
	if n := len(passages.Messages()); n != 1 {
		t.Errorf("%d passages for one bad card lying on the reader, want 1", n)
	}
	log, _ := os.ReadFile(reqLog)
	for _, l := range strings.Split(strings.TrimSpace(string(log)), "\n") {
		if strings.Contains(l, `"interface":"idcard"`) || strings.Contains(l, `"interface":"face"`) {
			t.Errorf("the platform was asked about the bad card: %s", l)
		}
	}
	ag.stop(t)
	if idNumber.MatchString(ag.output()) {
		t.Error("the agent's log carries an unmasked ID number")
	}
}

// TestE2EIdentityMismatch (issue #11, finding 3): the platform answers an ID-card query about
// another person (green, match true). The agent denies identity_mismatch, the barrier stays
// shut, the record keeps the card holder (masked), and an identity_mismatch alert naming both
// people, masked, reaches the broker.
func TestE2EIdentityMismatch(t *testing.T) {
	broker := mqtttest.Start(t)
	w := newWorld(t, "--fault", "other_person")
	const venue, device = "350582-0001", "e2e-id-other"
	passages := broker.Subscribe(t, "sentinel/v1/"+venue+"/"+device+"/passage")
	alerts := broker.Subscribe(t, "sentinel/v1/"+venue+"/"+device+"/alert")

	popFile := filepath.Join(w.Dir, "population.csv")
	pop, err := simpop.Load(popFile)
	if err != nil {
		t.Fatal(err)
	}
	holder := simcard.FromPerson(pop.People()[0])
	idPort := filepath.Join(w.Dir, "ttyID")
	start(t, nil, filepath.Join(w.Bins, "sentinel-sim"), "card", "--port", idPort, "--population", popFile, "--present", "#1").
		waitFor(t, regexp.MustCompile(`port ready`), 10*time.Second)
	ag := w.agent(t, fmt.Sprintf(`device: {id: %s, venue: "%s", style: gate_all_in_one}
scanners:
  qr: {driver: serial, port: %s, baud: 9600}
  idcard: {driver: sam, port: %s}
platform: {url: "http://%s", timeout: 800ms}
barrier: {driver: fake, pulse: 300ms}
queue: {path: %s}
uplink: {brokers: ["%s"], topic_prefix: sentinel/v1}
screen: {listen: "off"}
metrics: {listen: "off"}
`, device, venue, w.Port, idPort, w.APIAddr, filepath.Join(w.Dir, "queue.db"), broker.URL()))

	msgs := passages.WaitN(1, 15*time.Second)
	var r record.Passage
	if err := json.Unmarshal(msgs[0].Payload, &r); err != nil {
		t.Fatal(err)
	}
	if r.Credential != "idcard" || r.Verdict != "deny" || r.Reason != "identity_mismatch" || r.Gate != "not_opened" {
		t.Errorf("record credential=%s verdict=%s reason=%s gate=%s, want idcard deny identity_mismatch not_opened", r.Credential, r.Verdict, r.Reason, r.Gate)
	}
	if r.Subject.ID != privacy.MaskID(holder.IDNumber) || r.Subject.Name != privacy.MaskName(holder.Name) {
		t.Errorf("subject %q/%q, want the card holder's %q/%q", r.Subject.ID, r.Subject.Name, privacy.MaskID(holder.IDNumber), privacy.MaskName(holder.Name))
	}
	am := alerts.WaitN(1, 15*time.Second)
	var a record.Alert
	if err := json.Unmarshal(am[0].Payload, &a); err != nil {
		t.Fatal(err)
	}
	if a.Kind != "identity_mismatch" || a.Passage != r.ID || a.Subject.ID != r.Subject.ID || a.AnswerSubject == nil || a.AnswerSubject.ID == r.Subject.ID || a.AnswerSubject.ID == "" {
		t.Errorf("alert %+v, want identity_mismatch for passage %s naming the card holder and another person", a, r.ID)
	}
	for _, b := range [][]byte{msgs[0].Payload, am[0].Payload, []byte(ag.output())} {
		if idNumber.Match(b) {
			t.Errorf("an unmasked ID number: %s", b)
		}
	}
}
