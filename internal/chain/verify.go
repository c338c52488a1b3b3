package chain

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// VerifyOptions configure a Verifier.
type VerifyOptions struct {
	// Prefix is the topic prefix (uplink.topic_prefix); "" means "sentinel/v1".
	Prefix string
	// Keys are the units' public keys by "venue/device" (several for a unit whose key was
	// replaced). Nil means trust on first use: each unit's key is the chain_key of its
	// first status seen.
	Keys map[string][]ed25519.PublicKey
	// State is what an earlier run verified (State.Save); nil for none.
	State *State
	// MaxPayload bounds a message; larger ones are malformed. 0 means 1 MiB.
	MaxPayload int
}

// Verifier checks captured messages: feed it every message with Add, in arrival order, then
// call Report. It is not safe for concurrent use.
type Verifier struct {
	opts    VerifyOptions
	units   map[string]*unitState
	n       int // messages added
	ignored int // messages on topics that are neither records nor statuses
	cleared int // empty messages (cleared retained statuses)
}

// NewVerifier returns a Verifier.
func NewVerifier(opts VerifyOptions) *Verifier {
	if opts.Prefix == "" {
		opts.Prefix = "sentinel/v1"
	}
	opts.Prefix = strings.TrimSuffix(opts.Prefix, "/")
	if opts.MaxPayload <= 0 {
		opts.MaxPayload = 1 << 20
	}
	return &Verifier{opts: opts, units: map[string]*unitState{}}
}

// unitState is what the verifier collected for one unit.
type unitState struct {
	venue, device string
	keys          []unitKey // trusted, in the order learnt
	statusKeys    []string  // distinct chain_key values its statuses named, in order
	streams       map[string]*streamState
	heads         []headMsg
	headSigs      map[string]bool // signatures of the heads taken: a head again is a duplicate
	statuses      int
	findings      []Finding // found while adding
}

type unitKey struct {
	pub    ed25519.PublicKey
	source string // KeyFromFile, KeyFromStatus, KeyFromState
}

// Where a unit's key came from.
const (
	KeyFromFile   = "--keys"
	KeyFromStatus = "its first status, trust on first use"
	KeyFromState  = "the state of an earlier run"
)

// streamState is one stream of one unit.
type streamState struct {
	recs       []rec
	byID       map[string]int32   // id → index of its first record in recs
	moreIDs    map[string][]int32 // ids with more than one distinct record: the others
	messages   int
	duplicates int
	unchained  int
	reencoded  int
	firstUnch  string // the first unchained record's id and seq, for the finding
}

// rec is one distinct record.
type rec struct {
	seq        int64
	id         string
	prev, hash [HashSize]byte
	alg        Alg
	hashOK     bool
	arrival    int
}

// headMsg is a signed head as it arrived.
type headMsg struct {
	arrival   int
	source    string // "status" or "queue_loss"
	noticeSeq int64  // queue_loss: the notice's seq
	will      bool
	ts        string
	head      Head
	sig       string
}

func (v *Verifier) unit(venue, device string) *unitState {
	k := venue + "/" + device
	u := v.units[k]
	if u == nil {
		u = &unitState{venue: venue, device: device, streams: map[string]*streamState{}, headSigs: map[string]bool{}}
		for _, pub := range v.opts.Keys[k] {
			u.keys = append(u.keys, unitKey{pub, KeyFromFile})
		}
		if su := v.opts.State.unit(k); v.opts.Keys == nil && su != nil {
			for _, s := range su.Keys {
				if pub, err := ParsePublicKey(s); err == nil {
					u.keys = append(u.keys, unitKey{pub, KeyFromState})
				}
			}
		}
		v.units[k] = u
	}
	return u
}

// Add takes one message: a record on <prefix>/<venue>/<device>/<stream>, a status on
// <prefix>/<venue>/<device>/status; anything else is counted and ignored.
func (v *Verifier) Add(topic string, payload []byte) {
	v.n++
	rest, ok := strings.CutPrefix(topic, v.opts.Prefix+"/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		v.ignored++ // commands, replies, other applications
		return
	}
	if len(payload) == 0 {
		v.cleared++
		return
	}
	u := v.unit(parts[0], parts[1])
	if len(payload) > v.opts.MaxPayload {
		u.add(Finding{Kind: KindMalformed, Stream: parts[2], Detail: fmt.Sprintf("a message of %d bytes, more than %d", len(payload), v.opts.MaxPayload)})
		return
	}
	if parts[2] == "status" {
		v.addStatus(u, payload)
		return
	}
	v.addRecord(u, parts[2], payload)
}

func (u *unitState) add(f Finding) { u.findings = append(u.findings, f) }

// status is the part of a status message the verifier reads.
type status struct {
	TS       string `json:"ts"`
	Will     bool   `json:"will"`
	Head     Head   `json:"head"`
	HeadSig  string `json:"head_sig"`
	ChainKey string `json:"chain_key"`
	Device   string `json:"device"`
	Venue    string `json:"venue"`
}

func (v *Verifier) addStatus(u *unitState, payload []byte) {
	u.statuses++
	var s status
	if err := json.Unmarshal(payload, &s); err != nil {
		u.add(Finding{Kind: KindMalformed, Stream: "status", Detail: fmt.Sprintf("a status that cannot be read: %v", err)})
		return
	}
	if (s.Device != "" && s.Device != u.device) || (s.Venue != "" && s.Venue != u.venue) {
		u.add(Finding{Kind: KindMisplaced, Stream: "status", Detail: fmt.Sprintf("a status of %s/%s on this unit's topic", s.Venue, s.Device)})
	}
	if s.ChainKey != "" {
		v.statusKey(u, s.ChainKey)
	}
	switch {
	case s.Head == nil && s.HeadSig == "":
		return // a status without a head (an older agent); the report says when no head was seen
	case s.HeadSig == "":
		u.add(Finding{Kind: KindHeadUnsigned, Stream: "status", Detail: "a status carries a head without head_sig (ts " + s.TS + ")"})
		return
	}
	if err := s.Head.check(); err != nil {
		u.add(Finding{Kind: KindMalformed, Stream: "status", Detail: fmt.Sprintf("a status with a head that cannot be checked (ts %s): %v", s.TS, err)})
		return
	}
	if u.headSigs[s.HeadSig] {
		return // the same signed head again (redelivered, or captures joined): nothing new
	}
	u.headSigs[s.HeadSig] = true
	u.heads = append(u.heads, headMsg{arrival: v.n, source: "status", will: s.Will, ts: s.TS, head: s.Head, sig: s.HeadSig})
}

// statusKey notes a chain_key a status named: in trust-on-first-use the first one becomes
// the unit's key; a key that is not the unit's is a finding.
func (v *Verifier) statusKey(u *unitState, key string) {
	pub, err := ParsePublicKey(key)
	if err != nil {
		u.add(Finding{Kind: KindMalformed, Stream: "status", Detail: "chain_key: " + err.Error()})
		return
	}
	seen := false
	for _, k := range u.statusKeys {
		seen = seen || k == key
	}
	if !seen {
		u.statusKeys = append(u.statusKeys, key)
	}
	for _, k := range u.keys {
		if k.pub.Equal(pub) {
			return
		}
	}
	if len(u.keys) == 0 && v.opts.Keys == nil {
		u.keys = append(u.keys, unitKey{pub, KeyFromStatus})
		return
	}
	if !seen {
		u.add(Finding{Kind: KindKeyChanged, Stream: "status", Detail: fmt.Sprintf("a status names the key %s, not the unit's key %s (from %s): the unit was re-provisioned, or the status is not the unit's",
			key, EncodePublicKey(u.keys[0].pub), u.keys[0].source)})
	}
}

func (v *Verifier) addRecord(u *unitState, stream string, payload []byte) {
	st := u.streams[stream]
	if st == nil {
		st = &streamState{byID: map[string]int32{}, moreIDs: map[string][]int32{}}
		u.streams[stream] = st
	}
	st.messages++
	r, err := Check(payload)
	switch {
	case errors.Is(err, ErrUnchained):
		if st.unchained == 0 {
			st.firstUnch = fmt.Sprintf("seq %d, id %s", r.Seq, r.ID)
		}
		st.unchained++
		return
	case err != nil && !errors.Is(err, ErrHashMismatch):
		u.add(Finding{Kind: KindMalformed, Stream: stream, Seq: r.Seq, ID: r.ID, Detail: err.Error()})
		return
	}
	if !r.Published {
		st.reencoded++
	}
	if (r.Device != "" && r.Device != u.device) || (r.Venue != "" && r.Venue != u.venue) {
		u.add(Finding{Kind: KindMisplaced, Stream: stream, Seq: r.Seq, ID: r.ID,
			Detail: fmt.Sprintf("the record names unit %s/%s", r.Venue, r.Device)})
	}
	nr := rec{seq: r.Seq, id: r.ID, alg: r.Alg, hashOK: err == nil, arrival: v.n}
	copy(nr.prev[:], r.Prev)
	copy(nr.hash[:], r.Hash)
	if i, ok := st.byID[r.ID]; ok {
		// The same id: the same record again (at-least-once), or other content under it.
		// An edited copy keeps the claimed hash: only copies that check are duplicates.
		for _, j := range append([]int32{i}, st.moreIDs[r.ID]...) {
			if st.recs[j].hash == nr.hash && st.recs[j].hashOK && nr.hashOK {
				st.duplicates++
				return
			}
		}
		if st.recs[i].hash != nr.hash || st.recs[i].seq != nr.seq {
			u.add(Finding{Kind: KindReplayed, Stream: stream, Seq: r.Seq, ID: r.ID,
				Detail: fmt.Sprintf("the id of the record at seq %d came again at seq %d with other content: an old record replayed (or edited) under a new seq",
					st.recs[i].seq, r.Seq)})
		}
		st.moreIDs[r.ID] = append(st.moreIDs[r.ID], int32(len(st.recs)))
	} else {
		st.byID[r.ID] = int32(len(st.recs))
	}
	st.recs = append(st.recs, nr)
	if stream == "queue" {
		v.addNotice(u, payload, r.Seq)
	}
}

// addNotice takes the signed head of a queue_loss notice.
func (v *Verifier) addNotice(u *unitState, payload []byte, seq int64) {
	var n struct {
		Kind    string `json:"kind"`
		TS      string `json:"ts"`
		Head    Head   `json:"head"`
		HeadSig string `json:"head_sig"`
	}
	if json.Unmarshal(payload, &n) != nil || n.Kind != "queue_loss" || (n.Head == nil && n.HeadSig == "") {
		return
	}
	if err := n.Head.check(); err != nil {
		u.add(Finding{Kind: KindMalformed, Stream: "queue", Seq: seq, Detail: fmt.Sprintf("a queue_loss notice with a head that cannot be checked: %v", err)})
		return
	}
	if n.HeadSig == "" {
		u.add(Finding{Kind: KindHeadUnsigned, Stream: "queue", Seq: seq, Detail: "a queue_loss notice carries a head without head_sig"})
		return
	}
	u.heads = append(u.heads, headMsg{arrival: v.n, source: "queue_loss", noticeSeq: seq, ts: n.TS, head: n.Head, sig: n.HeadSig})
}
