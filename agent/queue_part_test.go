package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/internal/mqtttest"
)

func TestQueueTLSAndCredentials(t *testing.T) {
	dir := t.TempDir()
	ca := mqtttest.NewCA(t, dir, "ca")
	cert, key := ca.Issue(t, "client")
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not pem"), 0o600)

	if c, err := queueTLS(config.UplinkTLS{}); c != nil || err != nil {
		t.Fatalf("no TLS keys: %v, %v", c, err)
	}
	c, err := queueTLS(config.UplinkTLS{CAFile: ca.CertFile, CertFile: cert, KeyFile: key})
	if err != nil || c.RootCAs == nil || len(c.Certificates) != 1 || c.MinVersion < 0x0303 {
		t.Fatalf("TLS config %+v, %v", c, err)
	}
	for _, tt := range []struct {
		tls  config.UplinkTLS
		want string
	}{
		{config.UplinkTLS{CAFile: junk}, "uplink.tls.ca_file: " + junk + " holds no PEM certificate"},
		{config.UplinkTLS{CAFile: filepath.Join(dir, "none.pem")}, "uplink.tls.ca_file"},
		{config.UplinkTLS{CertFile: cert, KeyFile: junk}, "uplink.tls.cert_file, uplink.tls.key_file"},
	} {
		if _, err := queueTLS(tt.tls); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err %v, want %q", tt.tls, err, tt.want)
		}
	}

	user := filepath.Join(dir, "user")
	os.WriteFile(user, []byte("gate-01\r\nignored\n"), 0o600)
	if v, err := readCredential("uplink.username_file", user); err != nil || v != "gate-01" {
		t.Fatalf("readCredential = %q, %v", v, err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	if _, err := readCredential("uplink.password_file", empty); err == nil || !strings.Contains(err.Error(), "uplink.password_file: "+empty+" is empty") {
		t.Fatalf("empty credential: %v", err)
	}
}
