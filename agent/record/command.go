package record

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Command names: the <name> of <prefix>/<venue>/<device>/cmd/<name>.
const (
	CmdOpen     = "open"     // open the barrier once
	CmdReload   = "reload"   // read the config file again and apply what can change live
	CmdMode     = "mode"     // args.mode: normal | always_open | locked
	CmdSelftest = "selftest" // run the selftest
)

// Command results (CommandReply.Result).
const (
	ReplyOK          = "ok"
	ReplyFailed      = "failed"
	ReplyUnsupported = "unsupported"
	ReplyRefused     = "refused"
)

// Command is what an operator signs.
type Command struct {
	ID        string            `json:"id"` // unique; a nonce: an id is executed once
	Name      string            `json:"name"`
	Venue     string            `json:"venue"`
	Device    string            `json:"device"`
	IssuedAt  time.Time         `json:"issued_at"`
	ExpiresAt time.Time         `json:"expires_at"`
	Args      map[string]string `json:"args,omitempty"`
}

// SignedCommand is the payload on a command topic.
type SignedCommand struct {
	Cmd json.RawMessage `json:"cmd"`
	Sig string          `json:"sig"` // base64 Ed25519 signature of Cmd's bytes
}

// CommandReply is published on <prefix>/<venue>/<device>/cmd/<name>/reply.
type CommandReply struct {
	ID     string `json:"id"` // empty when the command could not be read
	Name   string `json:"name"`
	Result string `json:"result"` // ok | failed | unsupported | refused
	Detail string `json:"detail,omitempty"`
	Key    string `json:"key,omitempty"` // fingerprint of the operator key that signed it
	TS     string `json:"ts"`
	Device string `json:"device"`
	Venue  string `json:"venue"`
	Clock  string `json:"clock"`
}

// SignCommand signs cmd with an operator's private key: what an operator tool (and the
// tests) publish.
func SignCommand(priv ed25519.PrivateKey, cmd Command) ([]byte, error) {
	raw, err := json.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	return json.Marshal(SignedCommand{Cmd: raw, Sig: base64.StdEncoding.EncodeToString(ed25519.Sign(priv, raw))})
}

// KeyFingerprint names a public key in replies and events: the first 8 bytes of its
// SHA-256, in hex.
func KeyFingerprint(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}
