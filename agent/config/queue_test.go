package config

import (
	"strings"
	"testing"
)

const queueBase = `device: {id: g1, venue: v1, style: reduced_gate}
scanners: {qr: {driver: serial, port: /dev/ttyS1}}
platform: {url: "http://127.0.0.1:8700"}
queue: {path: /var/lib/sentinel/queue.db}
`

func TestQueueDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(queueBase+`uplink: {brokers: ["tcp://127.0.0.1:1883"]}
privacy: {platform_key_file: /etc/sentinel/platform.pub}
`))
	if err != nil {
		t.Fatal(err)
	}
	q, u := c.Queue, c.Uplink
	if q.MaxBytes != DefaultQueueMaxBytes || q.MaxRecords != DefaultQueueMaxRecords || q.Retention != DefaultQueueRetention || q.OnFull != "reject_new" {
		t.Errorf("queue defaults %+v", q)
	}
	if u.MaxInflight != 32 || u.DrainRate != 500 || u.DrainBytesPerS != 524288 || u.BackoffBase != DefaultBackoffBase || u.BackoffCap != DefaultBackoffCap || u.BackoffReset != DefaultBackoffReset {
		t.Errorf("uplink defaults %+v", u)
	}
	if c.Privacy.HashKeyFile != "/var/lib/sentinel/subject-hash.key" {
		t.Errorf("hash key default %q, want beside the queue", c.Privacy.HashKeyFile)
	}
	// Explicit zeros stay: no bound, no drain limit.
	c, err = Parse("t.yaml", []byte(queueBase+`uplink: {brokers: ["tcp://127.0.0.1:1883"], drain_rate: 0, drain_bytes_per_s: 0}
`))
	if err != nil || c.Uplink.DrainRate != 0 || c.Uplink.DrainBytesPerS != 0 || c.Privacy.HashKeyFile != "" {
		t.Fatalf("explicit zeros: %+v, %v", c.Uplink, err)
	}
}

func TestQueueValidation(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"on_full", `queue: {path: /q.db, on_full: drop_newest}
uplink: {brokers: ["tcp://h:1"]}`, "queue.on_full: must be one of reject_new, drop_oldest"},
		{"max_bytes tiny", `queue: {path: /q.db, max_bytes: 1000}
uplink: {brokers: ["tcp://h:1"]}`, "queue.max_bytes: must be 0 (no bound) or at least"},
		{"negative records", `queue: {path: /q.db, max_records: -1}
uplink: {brokers: ["tcp://h:1"]}`, "queue.max_records"},
		{"cert without key", `uplink: {brokers: ["ssl://h:8883"], tls: {cert_file: /c.pem}}`, "uplink.tls.key_file: is required"},
		{"tls without ssl broker", `uplink: {brokers: ["tcp://h:1883"], tls: {ca_file: /ca.pem}}`, "uplink.tls.ca_file: is set but no broker"},
		{"password without user", `uplink: {brokers: ["tcp://h:1"], password_file: /p}`, "uplink.username_file: is required"},
		{"backoff cap below base", `uplink: {brokers: ["tcp://h:1"], backoff_base: 2s, backoff_cap: 1s}`, "uplink.backoff_cap"},
		{"drain negative", `uplink: {brokers: ["tcp://h:1"], drain_rate: -5}`, "uplink.drain_rate"},
		{"inflight", `uplink: {brokers: ["tcp://h:1"], max_inflight: 70000}`, "uplink.max_inflight"},
		{"hash key alone", `uplink: {brokers: ["tcp://h:1"]}
privacy: {hash_key_file: /k}`, "privacy.hash_key_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := strings.Replace(queueBase, "queue: {path: /var/lib/sentinel/queue.db}\n", "", 1) + tt.yaml + "\n"
			if !strings.Contains(tt.yaml, "queue:") {
				y = queueBase + tt.yaml + "\n"
			}
			_, err := Parse("t.yaml", []byte(y))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "t.yaml: line ") {
				t.Errorf("no line number: %v", err)
			}
		})
	}
}
