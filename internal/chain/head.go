package chain

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
)

// Head says where each of a unit's streams stands: the seq and hash of its last record.
// It is the status' and the queue_loss notice's "head" member:
//
//	{"passage":{"seq":42,"hash":"<hex>"},"event":{"seq":7,"hash":"<hex>"}}
type Head map[string]StreamHead

// StreamHead is one stream's entry in a Head.
type StreamHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"` // lower-case hex of HashSize bytes
}

// NewStreamHead returns the entry for a stream whose last record has seq and hash.
func NewStreamHead(seq int64, hash []byte) StreamHead {
	return StreamHead{Seq: seq, Hash: hex.EncodeToString(hash)}
}

// check reports what makes h unsignable: an empty stream name, a seq below 1, a hash that is
// not lower-case hex of HashSize bytes.
func (h Head) check() error {
	for s, e := range h {
		if s == "" {
			return fmt.Errorf("%w: empty stream name", ErrHead)
		}
		if e.Seq < 1 || e.Seq > MaxSeq {
			return fmt.Errorf("%w: stream %s: seq %d", ErrHead, s, e.Seq)
		}
		if _, ok := hashValue([]byte(`"` + e.Hash + `"`)); !ok {
			return fmt.Errorf("%w: stream %s: hash %q is not %d bytes in lower-case hex", ErrHead, s, e.Hash, HashSize)
		}
	}
	return nil
}

// Streams returns the head's stream names, sorted.
func (h Head) Streams() []string {
	out := make([]string, 0, len(h))
	for s := range h {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// HeadStatement returns the bytes a head signature signs: the RFC 8785 form of
//
//	{"device":D,"head":HEAD,"ts":TS,"type":"sentinel-head-v1","venue":V}
//
// where ts is the carrying message's own "ts", exactly as written there, and venue and device
// name the unit (the topic's levels).
func HeadStatement(venue, device, ts string, h Head) ([]byte, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	if h == nil {
		h = Head{}
	}
	raw, err := json.Marshal(struct {
		Device string `json:"device"`
		Head   Head   `json:"head"`
		TS     string `json:"ts"`
		Type   string `json:"type"`
		Venue  string `json:"venue"`
	}{device, h, ts, "sentinel-head-v1", venue})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHead, err)
	}
	return Canonical(nil, raw)
}

// SignHead returns the head signature: base64 (standard, padded) of the Ed25519 signature of
// HeadStatement(venue, device, ts, h) by key.
func SignHead(key ed25519.PrivateKey, venue, device, ts string, h Head) (string, error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("%w: private key has %d bytes", ErrKey, len(key))
	}
	st, err := HeadStatement(venue, device, ts, h)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, st)), nil
}

// VerifyHead reports whether sig is a valid head signature by pub.
func VerifyHead(pub ed25519.PublicKey, venue, device, ts string, h Head, sig string) bool {
	if len(pub) != ed25519.PublicKeySize {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return false
	}
	st, err := HeadStatement(venue, device, ts, h)
	if err != nil {
		return false
	}
	return ed25519.Verify(pub, st, raw)
}

// Unit is a unit's chain identity: what the queue needs to chain its records and the agent
// to sign its heads.
type Unit struct {
	Venue, Device string
	Alg           Alg
	Key           ed25519.PrivateKey
}

// PublicKey returns the unit's public key as the status' chain_key and the key files write
// it: base64 of its 32 bytes.
func (u *Unit) PublicKey() string { return EncodePublicKey(u.Key.Public().(ed25519.PublicKey)) }

// Genesis returns the prev of the first record of stream.
func (u *Unit) Genesis(stream string) []byte {
	return Genesis(u.Alg, u.Venue, u.Device, stream, u.Key.Public().(ed25519.PublicKey))
}

// Link chains payload, a record of stream as built, to prev, the hash of the stream's
// previous record; a nil prev means the stream has no chained record yet (its Genesis).
func (u *Unit) Link(stream string, prev, payload []byte) (chained, hash []byte, err error) {
	p, err := Prepare(payload)
	if err != nil {
		return nil, nil, err
	}
	defer p.Release()
	return u.LinkPrepared(stream, prev, p)
}

// LinkPrepared is Link for a record already prepared.
func (u *Unit) LinkPrepared(stream string, prev []byte, p *Prepared) (chained, hash []byte, err error) {
	if prev == nil {
		prev = u.Genesis(stream)
	}
	return p.Link(u.Alg, prev)
}

// SignHead signs h with ts, the carrying message's own "ts".
func (u *Unit) SignHead(ts string, h Head) (string, error) {
	return SignHead(u.Key, u.Venue, u.Device, ts, h)
}
