package config

import (
	"path/filepath"
	"slices"
)

// The records: section (docs/records.md): the hash chain every stored record carries and the
// unit's Ed25519 key that signs its heads.
//
//	records:
//	  chain_hash: sha256                        # or sm3 (GB/T 32905-2016)
//	  chain_key_file: /etc/sentinel/secrets/chain.key

// Records configures the record chain.
type Records struct {
	// ChainHash is the chain's hash function: sha256 (default) or sm3.
	ChainHash string `yaml:"chain_hash"`
	// ChainKeyFile is the unit's Ed25519 signing key (PKCS #8 PEM, mode 0600 or 0400). Left
	// out, it is chain.key beside the queue (queue.path's directory), and the agent creates
	// it at its first start; a file the config names (sentinel provision writes
	// secrets/chain.key and names it here) must exist: a key the platform was never given
	// would make every record of the unit unverifiable.
	ChainKeyFile string `yaml:"chain_key_file"`

	keyDefaulted bool // ChainKeyFile was left out: the default path, created when missing
}

// Defaults of the records keys.
const (
	DefaultChainHash        = "sha256"
	DefaultChainKeyFileName = "chain.key"
)

// ChainHashes are the values records.chain_hash accepts.
var ChainHashes = []string{"sha256", "sm3"}

// CreateChainKey reports whether the agent may create records.chain_key_file when it does not
// exist: only when the key was left out (its default place beside the queue: a demo or a unit
// set up without sentinel provision, which logs the new public key). A key file the config
// names is the one provisioning made and gave to the platform: missing, it is an error.
func (r Records) CreateChainKey() bool { return r.keyDefaulted }

func recordsDefaults(c *Config, present func(string) bool) {
	r := &c.Records
	if r.ChainHash == "" {
		r.ChainHash = DefaultChainHash
	}
	if r.ChainKeyFile == "" && c.Queue.Path != "" {
		r.ChainKeyFile = filepath.Join(filepath.Dir(c.Queue.Path), DefaultChainKeyFileName)
		r.keyDefaulted = true
	}
}

func recordsValidate(c *Config) []Problem {
	var ps []Problem
	if !slices.Contains(ChainHashes, c.Records.ChainHash) {
		ps = append(ps, Problemf("records.chain_hash", "must be one of sha256, sm3, got %q", c.Records.ChainHash))
	}
	if c.Records.ChainKeyFile == "" {
		ps = append(ps, Problemf("records.chain_key_file", "is required (the unit's Ed25519 key that signs its record heads; sentinel provision makes it)"))
	}
	return ps
}
