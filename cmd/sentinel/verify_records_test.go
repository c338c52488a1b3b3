package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sentinel-edge/sentinel/internal/chain"
	"github.com/sentinel-edge/sentinel/internal/chain/chaintest"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
)

func writeCapture(t *testing.T, msgs []chaintest.Msg) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "capture.txt")
	var b bytes.Buffer
	if err := chaintest.WriteCapture(&b, msgs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runVerify(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(append([]string{"verify-records"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// The tamper cases of the issue on capture files, through the command: each exits 1 and
// names what it found; the clean capture exits 0.
func TestVerifyRecordsFiles(t *testing.T) {
	s := chaintest.Clean()
	edited := slices.Clone(s.Out)
	i := chaintest.Find(edited, "passage", 7)
	edited[i].Payload = bytes.Replace(edited[i].Payload, []byte(`"verdict":"pass"`), []byte(`"verdict":"dass"`), 1)
	deleted := slices.Delete(slices.Clone(s.Out), chaintest.Find(s.Out, "passage", 4), chaintest.Find(s.Out, "passage", 4)+1)
	old := s.Out[chaintest.Find(s.Out, "passage", 2)]
	replayed := append(slices.Clone(s.Out), chaintest.Msg{Topic: old.Topic, Payload: bytes.Replace(old.Payload, []byte(`"seq":2,`), []byte(`"seq":11,`), 1)})
	fresh := chaintest.New(chaintest.ExampleKey())
	fresh.NextID, fresh.Clock = 1000, s.Clock
	fresh.Status(false)
	fresh.Records("passage", 3)
	fresh.Status(false)
	reinstalled := append(slices.Clone(s.Out), fresh.Out...)
	dup := append(slices.Clone(s.Out), s.Out...)

	for _, tt := range []struct {
		name string
		msgs []chaintest.Msg
		code int
		want []string
	}{
		{"clean", s.Out, exitOK, []string{"result: OK", "TRUST ON FIRST USE", `passage\s+10\s+0\s+1-10\s`}},
		{"at-least-once duplicates", dup, exitOK, []string{"result: OK", `passage\s+10\s+10\s+1-10\s`}},
		{"edited byte", edited, exitFailure, []string{"FAIL hash_mismatch passage seq 7", "edited record"}},
		{"deleted before delivery", deleted, exitFailure, []string{"FAIL gap passage seq 4: seq 4 missing", "signed head"}},
		{"replayed with a new seq", replayed, exitFailure, []string{"FAIL replayed passage seq 11", "FAIL hash_mismatch passage seq 11"}},
		{"reinstalled with a fresh database", reinstalled, exitFailure, []string{"FAIL restarted passage seq 1", "FAIL head_backwards"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runVerify("--in", writeCapture(t, tt.msgs))
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out, errs)
			}
			for _, w := range tt.want {
				if !regexp.MustCompile(w).MatchString(out) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestVerifyRecordsKeysStateJSON(t *testing.T) {
	s := chaintest.Clean()
	capture := writeCapture(t, s.Out)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "350582-0001"), 0o755)
	os.WriteFile(filepath.Join(dir, "350582-0001", "gate-01.pub"), []byte(s.Unit.PublicKey()+"\n"), 0o644)
	code, out, errs := runVerify("--in", capture, "--keys", dir, "--json")
	var rep chain.Report
	if err := json.Unmarshal([]byte(out), &rep); code != exitOK || err != nil || !rep.OK || rep.TOFU || rep.Units[0].KeySource != chain.KeyFromFile {
		t.Fatalf("--keys --json: exit %d, %v\n%s%s", code, err, out, errs)
	}
	// Another unit's key on file: nothing of this unit verifies.
	os.WriteFile(filepath.Join(dir, "350582-0001", "gate-01.pub"), []byte(chain.EncodePublicKey(chaintest.Key(3).Public().(ed25519.PublicKey))+"\n"), 0o644)
	if code, out, _ := runVerify("--in", capture, "--keys", dir); code != exitFailure || !strings.Contains(out, "head_bad_signature") {
		t.Fatalf("wrong key: exit %d\n%s", code, out)
	}

	// --state: the second run continues from the first; a reinstall is then named although the
	// old records are not in its capture.
	state := filepath.Join(t.TempDir(), "state.json")
	if code, out, errs := runVerify("--in", capture, "--state", state); code != exitOK {
		t.Fatalf("run 1: %d\n%s%s", code, out, errs)
	}
	n := len(s.Out)
	s.Records("passage", 2)
	s.Status(false)
	if code, out, errs := runVerify("--in", writeCapture(t, s.Out[n:]), "--state", state); code != exitOK || !strings.Contains(out, "from state") {
		t.Fatalf("run 2: %d\n%s%s", code, out, errs)
	}
	fresh := chaintest.New(chaintest.ExampleKey())
	fresh.NextID = 1000
	fresh.Status(false)
	fresh.Records("passage", 2)
	if code, out, _ := runVerify("--in", writeCapture(t, fresh.Out), "--state", state); code != exitFailure || !strings.Contains(out, "FAIL restarted passage") {
		t.Fatalf("run 3: %d\n%s", code, out)
	}
}

func TestVerifyRecordsUsage(t *testing.T) {
	capture := writeCapture(t, chaintest.Clean().Out)
	emptyDir := t.TempDir()
	badKeys := t.TempDir()
	os.MkdirAll(filepath.Join(badKeys, "v"), 0o755)
	os.WriteFile(filepath.Join(badKeys, "v", "d.pub"), []byte("not a key\n"), 0o644)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "give --in FILE"},
		{[]string{"--in", capture, "--broker", "tcp://127.0.0.1:1"}, exitUsage, "one of them"},
		{[]string{"--broker", "127.0.0.1:1883"}, exitUsage, "--broker must be a URL"},
		{[]string{"--in", capture, "--ca", "x"}, exitUsage, "go with --broker"},
		{[]string{"--broker", "tcp://127.0.0.1:1", "--cert", "x"}, exitUsage, "--cert and --key"},
		{[]string{"--in", capture, "--prefix", "a/#"}, exitUsage, "wildcards"},
		{[]string{"--in", capture, "--keys", emptyDir}, exitUsage, "holds no key"},
		{[]string{"--in", capture, "--keys", badKeys}, exitUsage, "d.pub:1"},
		{[]string{"--in", capture, "extra"}, exitUsage, "unexpected argument"},
		{[]string{"--in", filepath.Join(emptyDir, "none")}, exitFailure, "no such file"},
		{[]string{"--in", emptyDir}, exitFailure, "verify-records: read " + emptyDir + ": is a directory"}, // once, not "read D: read D:"
		{[]string{"--broker", "tcp://127.0.0.1:1", "--wait", "2s"}, exitFailure, "connect to tcp://127.0.0.1:1"},
		{[]string{"--help"}, exitOK, ""},
	} {
		code, out, errs := runVerify(tt.args...)
		if code != tt.code || !strings.Contains(errs+out, tt.want) {
			t.Errorf("%q: exit %d, want %d with %q\n%s%s", tt.args, code, tt.code, tt.want, out, errs)
		}
	}
}

// Hostile capture files: an over-long line is named and fails the run; junk lines, empty
// payloads and other topics do not stop it; nothing at all is a failure.
func TestVerifyRecordsHostileFile(t *testing.T) {
	dir := t.TempDir()
	long := filepath.Join(dir, "long.txt")
	var b bytes.Buffer
	chaintest.WriteCapture(&b, chaintest.Clean().Out)
	b.WriteString("sentinel/v1/v/d/passage " + strings.Repeat("x", verifyMaxLine+10) + "\n")
	os.WriteFile(long, b.Bytes(), 0o644)
	if code, _, errs := runVerify("--in", long); code != exitFailure || !strings.Contains(errs, "longer than") {
		t.Errorf("long line: %d %s", code, errs)
	}
	junk := filepath.Join(dir, "junk.txt")
	b.Reset()
	chaintest.WriteCapture(&b, chaintest.Clean().Out)
	b.WriteString("\n\nsentinel/v1/350582-0001/gate-01/status \nno-space-line\nsentinel/v1/350582-0001/gate-01/cmd/open {}\r\n")
	os.WriteFile(junk, b.Bytes(), 0o644)
	if code, out, errs := runVerify("--in", junk); code != exitOK || !strings.Contains(out, "2 on other topics, 1 empty") {
		t.Errorf("junk lines: %d\n%s%s", code, out, errs)
	}
	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, nil, 0o644)
	if code, out, _ := runVerify("--in", empty); code != exitFailure || !strings.Contains(out, "nothing to verify") {
		t.Errorf("empty capture: %d\n%s", code, out)
	}
}

// Live from a real broker: the unit's traffic published as the agent does (the status
// retained), read until idle, verified; the same with one record edited fails.
func TestVerifyRecordsBroker(t *testing.T) {
	broker := mqtttest.Start(t)
	s := chaintest.Clean()
	publish := func(msgs []chaintest.Msg) {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("verify-test-pub"))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect: %v", tok.Error())
		}
		defer c.Disconnect(100)
		for _, m := range msgs {
			retained := strings.HasSuffix(m.Topic, "/status")
			if tok := c.Publish(m.Topic, 1, retained, m.Payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("publish: %v", tok.Error())
			}
		}
	}
	// Only the retained status and what comes after the subscription is seen live: publish
	// the records once the verifier listens.
	subscribed := make(chan struct{}, 1)
	hook := verifySubscribed
	verifySubscribed = func() { subscribed <- struct{}{} }
	t.Cleanup(func() { verifySubscribed = hook })
	live := func(msgs []chaintest.Msg, args ...string) (int, string, string) {
		done := make(chan struct{})
		var code int
		var out, errs string
		go func() {
			defer close(done)
			code, out, errs = runVerify(append([]string{"--broker", broker.URL(), "--idle", "1s"}, args...)...)
		}()
		select {
		case <-subscribed:
			publish(msgs)
		case <-done:
		}
		<-done
		return code, out, errs
	}
	code, out, errs := live(s.Out)
	if code != exitOK || !strings.Contains(out, "18 records on 4 streams") {
		t.Fatalf("live: exit %d\n%s%s", code, out, errs)
	}

	edited := slices.Clone(s.Out)
	i := chaintest.Find(edited, "audit", 2)
	edited[i].Payload = bytes.Replace(edited[i].Payload, []byte(`"result":"ok"`), []byte(`"result":"no"`), 1)
	code, out, errs = live(edited, "--filter", "sentinel/v1/+/+/+")
	if code != exitFailure || !strings.Contains(out, "FAIL hash_mismatch audit seq 2") {
		t.Fatalf("live, edited: exit %d\n%s%s", code, out, errs)
	}
}

// Live over TLS with a password file, as `report fleet` and the uplink connect: the right CA
// and password verify; another CA or a wrong password fail with the reason, exit 1.
func TestVerifyRecordsBrokerTLS(t *testing.T) {
	dir := t.TempDir()
	ca := mqtttest.NewCA(t, dir, "test-ca")
	cert, key := ca.Issue(t, "broker")
	broker := mqtttest.StartWith(t, mqtttest.Options{TLS: &mqtttest.TLSFiles{CAFile: ca.CertFile, CertFile: cert, KeyFile: key},
		DenyAnonymous: true, Users: map[string]string{"platform": "s3cret-pass", "unit": "unit-pass"}})
	// The unit's retained status, published over TLS: a verify run sees it at once.
	s := chaintest.New(chaintest.ExampleKey())
	st := s.Status(false)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("verify-tls-pub").
		SetTLSConfig(&tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}).SetUsername("unit").SetPassword("unit-pass"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	if tok := c.Publish(st.Topic, 1, true, st.Payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	c.Disconnect(100)
	user, pass, wrong := filepath.Join(dir, "user"), filepath.Join(dir, "pass"), filepath.Join(dir, "wrong")
	os.WriteFile(user, []byte("platform\n"), 0o600)
	os.WriteFile(pass, []byte("s3cret-pass\n"), 0o600)
	os.WriteFile(wrong, []byte("nope\n"), 0o600)
	other := mqtttest.NewCA(t, t.TempDir(), "other-ca")

	base := []string{"--broker", broker.URL(), "--idle", "500ms", "--wait", "5s", "--username-file", user}
	if code, out, errs := runVerify(append(base, "--ca", ca.CertFile, "--password-file", pass)...); code != exitOK || !strings.Contains(out, "result: OK") {
		t.Fatalf("right CA and password: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := runVerify(append(base, "--ca", other.CertFile, "--password-file", pass)...); code != exitFailure || !strings.Contains(errs, "verify against --ca") {
		t.Errorf("wrong CA: exit %d: %s", code, errs)
	}
	if code, _, errs := runVerify(append(base, "--ca", ca.CertFile, "--password-file", wrong)...); code != exitFailure || !strings.Contains(errs, "refused the credentials") {
		t.Errorf("wrong password: exit %d: %s", code, errs)
	}
	if strings.Contains(fmt.Sprint(runVerify(append(base, "--ca", ca.CertFile, "--password-file", wrong)...)), "nope") {
		t.Error("the password appears in the output")
	}
}
