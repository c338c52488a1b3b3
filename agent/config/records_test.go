package config

import (
	"strings"
	"testing"
)

// TestRecordsDefaults: records.chain_hash is sha256 and the key lies beside the queue, where
// the agent may create it; a key the config names must exist (CreateChainKey false).
func TestRecordsDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(queueBase+`uplink: {brokers: ["tcp://127.0.0.1:1883"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Records; r.ChainHash != "sha256" || r.ChainKeyFile != "/var/lib/sentinel/chain.key" || !r.CreateChainKey() {
		t.Fatalf("defaults %+v (create %v)", r, r.CreateChainKey())
	}
	c, err = Parse("t.yaml", []byte(queueBase+`uplink: {brokers: ["tcp://127.0.0.1:1883"]}
records: {chain_hash: sm3, chain_key_file: /etc/sentinel/secrets/chain.key}
`))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Records; r.ChainHash != "sm3" || r.ChainKeyFile != "/etc/sentinel/secrets/chain.key" || r.CreateChainKey() {
		t.Fatalf("explicit %+v (create %v)", r, r.CreateChainKey())
	}
}

// TestRecordsValidation: a bad records key is named, with its line.
func TestRecordsValidation(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{`records: {chain_hash: md5}`, `line 6: records.chain_hash: must be one of sha256, sm3, got "md5"`},
		{`records: {chain_hsh: sm3}`, `records.chain_hsh: unknown key`},
	} {
		_, err := Parse("t.yaml", []byte(queueBase+"uplink: {brokers: [\"tcp://h:1\"]}\n"+tt.yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.yaml, err, tt.want)
		}
	}
}
