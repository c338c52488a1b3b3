package queue

import (
	"crypto/tls"
	"strings"
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
