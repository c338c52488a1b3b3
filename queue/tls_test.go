package queue

import (
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/mqtttest"
)

// TestUplinkMosquittoTLS: a TLS broker with a test CA: the uplink delivers over it with the
// CA configured, and refuses (saying why) with another CA.
func TestUplinkMosquittoTLS(t *testing.T) {
	dir := t.TempDir()
	ca := mqtttest.NewCA(t, dir, "test-ca")
	cert, key := ca.Issue(t, "broker")
	broker := mqtttest.StartWith(t, mqtttest.Options{TLS: &mqtttest.TLSFiles{CAFile: ca.CertFile, CertFile: cert, KeyFile: key}})
	col := broker.SubscribeWith(t, "sentinel/#", mqtttest.SubOptions{TLS: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}})

	t.Run("right CA", func(t *testing.T) {
		o, _ := openTemp(t, Options{})
		for range 5 {
			mustAppend(t, o, "s")
		}
		d := newDeliveries()
		log, _ := testLogger(t)
		u := NewUplink(o, fastBackoff(UplinkConfig{Brokers: []string{broker.URL()}, TLS: &tls.Config{RootCAs: ca.Pool()}, OnDelivered: d.add, Logger: log}))
		stop := runUplink(t, u)
		d.wait(t, 5, 10*time.Second)
		stop()
		if got := col.WaitN(5, 5*time.Second); len(got) < 5 {
			t.Fatalf("subscriber got %d of 5", len(got))
		}
	})
	t.Run("wrong CA", func(t *testing.T) {
		other := mqtttest.NewCA(t, t.TempDir(), "other-ca")
		o, _ := openTemp(t, Options{})
		mustAppend(t, o, "s")
		log, logs := testLogger(t)
		u := NewUplink(o, fastBackoff(UplinkConfig{Brokers: []string{broker.URL()}, TLS: &tls.Config{RootCAs: other.Pool()}, Logger: log}))
		runUplink(t, u)
		waitUntil(t, 10*time.Second, "the refusal logged", func() bool { return strings.Contains(logs.String(), "no broker reachable") })
		if u.Connected() {
			t.Fatal("connected with a CA that did not sign the broker's certificate")
		}
		l := logs.String()
		if !strings.Contains(l, "uplink.tls.ca_file") || !strings.Contains(l, "certificate") {
			t.Fatalf("the log does not say why:\n%s", l)
		}
	})
}

// TestUplinkMosquittoRefusedLogin: a broker that refuses the login: a clear log line, and
// the uplink keeps retrying.
func TestUplinkMosquittoRefusedLogin(t *testing.T) {
	broker := mqtttest.StartWith(t, mqtttest.Options{DenyAnonymous: true})
	o, _ := openTemp(t, Options{})
	log, logs := testLogger(t)
	u := NewUplink(o, fastBackoff(UplinkConfig{Brokers: []string{broker.URL()}, Username: "gate-01", Password: "wrong-password", Logger: log}))
	runUplink(t, u)
	waitUntil(t, 10*time.Second, "several refused attempts", func() bool { return strings.Count(logs.String(), "reconnect failed") >= 3 })
	l := logs.String()
	if !strings.Contains(l, "refused the credentials") || u.Connected() {
		t.Fatalf("refused login not explained:\n%s", l)
	}
	if strings.Contains(l, "wrong-password") {
		t.Fatal("the password was logged")
	}
}

// TestUplinkMosquittoPasswordFile: a broker with a Mosquitto password file (written by
// mosquitto_passwd) and no anonymous access. The right credentials connect and deliver; wrong
// ones are refused with a clear log line (once per outage), a status (LastError) that says
// why, and retried with backoff, and never logged.
func TestUplinkMosquittoPasswordFile(t *testing.T) {
	const user, pass = "gate-01", "Right-Pa55word"
	broker := mqtttest.StartWith(t, mqtttest.Options{DenyAnonymous: true, Users: map[string]string{user: pass, "platform": "platform-pw"}})
	col := broker.SubscribeWith(t, "sentinel/#", mqtttest.SubOptions{Username: "platform", Password: "platform-pw"})

	t.Run("right credentials", func(t *testing.T) {
		o, _ := openTemp(t, Options{})
		for range 3 {
			mustAppend(t, o, "s")
		}
		d := newDeliveries()
		log, _ := testLogger(t)
		u := NewUplink(o, fastBackoff(UplinkConfig{Brokers: []string{broker.URL()}, Username: user, Password: pass, OnDelivered: d.add, Logger: log}))
		stop := runUplink(t, u)
		d.wait(t, 3, 10*time.Second)
		if err := u.LastError(); err != nil || !u.Connected() {
			t.Fatalf("connected %v, LastError %v", u.Connected(), err)
		}
		stop()
		if got := col.WaitN(3, 5*time.Second); len(got) < 3 {
			t.Fatalf("subscriber got %d of 3", len(got))
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		o, _ := openTemp(t, Options{})
		mustAppend(t, o, "s")
		log, logs := testLogger(t)
		const wrong = "Wrong-Pa55word"
		u := NewUplink(o, UplinkConfig{Brokers: []string{broker.URL()}, Username: user, Password: wrong, Logger: log,
			BackoffBase: 20 * time.Millisecond, BackoffCap: 80 * time.Millisecond})
		var mu sync.Mutex
		var dials []time.Time
		u.dial = func(ctx context.Context, b string, cfg UplinkConfig) (conn, error) {
			mu.Lock()
			dials = append(dials, time.Now())
			mu.Unlock()
			return dialPaho(ctx, b, cfg)
		}
		runUplink(t, u)
		waitUntil(t, 15*time.Second, "5 refused attempts", func() bool { mu.Lock(); defer mu.Unlock(); return len(dials) >= 5 })
		l := logs.String()
		if u.Connected() {
			t.Fatal("connected with a wrong password")
		}
		if err := u.LastError(); err == nil || !strings.Contains(err.Error(), "refused the credentials (uplink.username_file, uplink.password_file)") {
			t.Fatalf("LastError = %v, want the refused credentials explained", err)
		}
		if n := strings.Count(l, "level=WARN"); n != 1 || !strings.Contains(l, "refused the credentials") {
			t.Fatalf("want one WARN explaining the refused credentials, got %d:\n%s", n, l)
		}
		if strings.Count(l, "reconnect failed") < 3 {
			t.Fatalf("the retries are not logged (DEBUG):\n%s", l)
		}
		if strings.Contains(l, wrong) || strings.Contains(l, pass) || strings.Contains(u.LastError().Error(), wrong) {
			t.Fatal("a password was logged")
		}
		// The retries are spaced by the backoff, not a tight loop: four full-jitter delays
		// (bounds 20, 40, 80, 80 ms) add up to less than 10 ms with a chance below 1e-4
		// (TestBackoffFullJitter checks the distribution itself).
		mu.Lock()
		span := dials[4].Sub(dials[0])
		mu.Unlock()
		if span < 10*time.Millisecond {
			t.Fatalf("5 attempts within %v: no backoff", span)
		}
	})
}
