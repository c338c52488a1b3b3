package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
)

// The members the chain adds to a record. A record as built must not have them.
const (
	memberPrev = "prev"
	memberHash = "hash"
	memberAlg  = "hash_alg" // present only when the algorithm is not SHA-256
)

// MaxSeq is the largest seq a record or head may carry: integers beyond 2^53 have no exact
// JSON number in I-JSON.
const MaxSeq = 1 << 53

// Prepared is a record canonicalised and ready to be linked: the part of chaining that does
// not depend on the previous record, so it can run on any goroutine before the seq order
// is known to hold.
type Prepared struct {
	canon []byte
	top   []member
}

// Prepare canonicalises payload, a record as built (a JSON object with its id and seq). It
// fails (ErrRecord, ErrNotCanonicalizable) for anything else, and for a record that already
// has a prev, hash or hash_alg member.
func Prepare(payload []byte) (*Prepared, error) {
	p := prepared.Get().(*Prepared)
	canon, top, err := canonical(p.canon[:0], payload, p.top)
	if err == nil && (len(canon) == 0 || canon[0] != '{') {
		err = fmt.Errorf("%w: the payload is not a JSON object", ErrRecord)
	}
	for _, m := range top {
		if n := m.name(canon); err == nil && (string(n) == memberPrev || string(n) == memberHash || string(n) == memberAlg) {
			err = fmt.Errorf("%w: it already has a %q member", ErrRecord, n)
		}
	}
	p.canon, p.top = canon, top
	if err != nil {
		p.Release()
		return nil, err
	}
	return p, nil
}

// prepared keeps Prepared records, and their buffers, for reuse (Release).
var prepared = sync.Pool{New: func() any { return new(Prepared) }}

// Release gives p's buffers back for reuse; p must not be used after it. Calling it is
// optional: it only spares the garbage collector.
func (p *Prepared) Release() {
	if cap(p.canon) <= 64<<10 {
		prepared.Put(p)
	}
}

// Link chains the prepared record to prev, the hash of the stream's previous record (the
// stream's Genesis for its first), with alg. It returns the record as it is stored and
// published and its hash, the stream's new head:
//
//	body    = the canonical record with "prev" (and "hash_alg" unless SHA-256) in place
//	hash    = H(prev ‖ body)
//	chained = body with ,"hash":"<hex>" added as its last member
//
// It is cheap (one hash of the record) and does not change p, so it may be called again
// with another prev.
func (p *Prepared) Link(alg Alg, prev []byte) (chained, hash []byte, err error) {
	if !alg.valid() {
		return nil, nil, fmt.Errorf("%w: %v", ErrAlg, alg)
	}
	if len(prev) != HashSize {
		return nil, nil, fmt.Errorf("%w: prev has %d bytes, want %d", ErrRecord, len(prev), HashSize)
	}
	var prevHex [2*HashSize + 2]byte
	prevHex[0], prevHex[len(prevHex)-1] = '"', '"'
	hex.Encode(prevHex[1:], prev)
	var add [2]extra
	n := 0
	if alg != SHA256 {
		add[n] = extra{[]byte(memberAlg), appendString(nil, []byte(alg.String()))}
		n++
	}
	add[n] = extra{[]byte(memberPrev), prevHex[:]}
	n++
	// prev and the body in one buffer: one hash call, no hasher to allocate.
	buf := make([]byte, HashSize, HashSize+len(p.canon)+len(prevHex)+len(`,"hash_alg":"sha256"`)+len(`,"hash":""}`)+2*HashSize+8)
	copy(buf, prev)
	buf = insertMembers(buf, p.canon, p.top, add[:n])
	hash = alg.sum1(buf)
	body := buf[HashSize:]
	chained = append(body[:len(body)-1], `,"hash":"`...)
	chained = hex.AppendEncode(chained, hash)
	chained = append(chained, '"', '}')
	return chained, hash, nil
}

// Link is Prepare and Prepared.Link at once.
func Link(alg Alg, prev, payload []byte) (chained, hash []byte, err error) {
	p, err := Prepare(payload)
	if err != nil {
		return nil, nil, err
	}
	defer p.Release()
	return p.Link(alg, prev)
}

// extra is a member to insert: its name and its canonical value.
type extra struct {
	name  []byte
	value []byte
}

// insertMembers writes the canonical object canon (its members top) with the members add
// (sorted by name, none already in it) merged in at their places.
func insertMembers(dst, canon []byte, top []member, add []extra) []byte {
	dst = append(dst, '{')
	i, j := 0, 0
	for i < len(top) || j < len(add) {
		if i+j > 0 {
			dst = append(dst, ',')
		}
		if j < len(add) && (i == len(top) || compareUTF16(add[j].name, top[i].name(canon)) < 0) {
			dst = appendString(dst, add[j].name)
			dst = append(dst, ':')
			dst = append(dst, add[j].value...)
			j++
			continue
		}
		dst = append(dst, canon[top[i].at:top[i].end]...)
		i++
	}
	return append(dst, '}')
}

// Genesis returns the prev of a stream's first record: H(canonical statement), where the
// statement names the unit, the stream and the unit's public key:
//
//	{"device":D,"key":"<base64 public key>","stream":S,"type":"sentinel-chain-genesis-v1","venue":V}
//
// A unit reinstalled with a fresh database starts again from the same genesis (or, with a
// new key, from another one): the verifier sees a second chain and names it restarted.
func Genesis(alg Alg, venue, device, stream string, pub ed25519.PublicKey) []byte {
	return alg.sum(genesisStatement(venue, device, stream, pub))
}

func genesisStatement(venue, device, stream string, pub ed25519.PublicKey) []byte {
	b := []byte(`{"device":`)
	b = appendString(b, []byte(device))
	b = append(b, `,"key":`...)
	b = appendString(b, []byte(base64.StdEncoding.EncodeToString(pub)))
	b = append(b, `,"stream":`...)
	b = appendString(b, []byte(stream))
	b = append(b, `,"type":"sentinel-chain-genesis-v1","venue":`...)
	b = appendString(b, []byte(venue))
	return append(b, '}')
}

// Record is what Check read from a chained record.
type Record struct {
	ID   string // "" when the record has none (a malformed record)
	Seq  int64
	Prev []byte
	Hash []byte // as the record claims it
	Alg  Alg
	// Published is true when the payload is byte for byte the form the unit publishes (the
	// canonical record and the hash last); false when it was re-encoded on the way, which
	// changes nothing for the chain.
	Published bool
	// Device, Venue are the record's own fields, when it has them.
	Device, Venue string
}

// Check reads a chained record and checks its hash. It returns ErrUnchained for a record
// without prev and hash, ErrMalformed (or ErrNotCanonicalizable) for one whose members are
// not as specified, and ErrHashMismatch, with the record read, when the hash is not the hash
// of its content.
func Check(payload []byte) (Record, error) {
	canon, top, err := canonical(make([]byte, 0, len(payload)+len(payload)/8), payload, nil)
	if err != nil {
		return Record{}, err
	}
	if top == nil && (len(canon) == 0 || canon[0] != '{') {
		return Record{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	var r Record
	hashAt := -1
	var prevOK, hashOK, anyChain bool
	for k, m := range top {
		v := canon[m.start:m.end]
		switch string(m.name(canon)) {
		case "id":
			r.ID, _ = unquote(v)
		case "device":
			r.Device, _ = unquote(v)
		case "venue":
			r.Venue, _ = unquote(v)
		case "seq":
			r.Seq, err = strconv.ParseInt(string(v), 10, 64)
			if err != nil || r.Seq < 1 || r.Seq > MaxSeq {
				return r, fmt.Errorf("%w: seq %s is not an integer from 1 to 2^53", ErrMalformed, v)
			}
		case memberPrev:
			r.Prev, prevOK = hashValue(v)
			anyChain = true
		case memberHash:
			r.Hash, hashOK = hashValue(v)
			hashAt, anyChain = k, true
		case memberAlg:
			s, _ := unquote(v)
			if r.Alg, err = ParseAlg(s); err != nil || s == "" {
				return r, fmt.Errorf("%w: hash_alg %s", ErrMalformed, v)
			}
		}
	}
	switch {
	case !anyChain:
		return r, ErrUnchained
	case !prevOK:
		return r, fmt.Errorf("%w: prev must be %d bytes in lower-case hex", ErrMalformed, HashSize)
	case !hashOK:
		return r, fmt.Errorf("%w: hash must be %d bytes in lower-case hex", ErrMalformed, HashSize)
	case r.ID == "":
		return r, fmt.Errorf("%w: no id", ErrMalformed)
	case r.Seq == 0:
		return r, fmt.Errorf("%w: no seq", ErrMalformed)
	}
	if r.Alg == 0 {
		r.Alg = SHA256
	}
	// body: the canonical record without its hash member.
	m := top[hashAt]
	from, to := m.at, m.end
	if hashAt > 0 {
		from-- // the comma before it
	} else if len(top) > 1 {
		to++ // the comma after it
	}
	body := append(canon[:from:from], canon[to:]...)
	// As published: body without its closing brace, then ,"hash":"<hex>"}.
	n := len(body) - 1
	r.Published = len(payload) == n+len(`,"hash":""}`)+2*HashSize && bytes.Equal(payload[:n], body[:n]) &&
		string(payload[n:n+9]) == `,"hash":"` && bytes.Equal(payload[n+8:len(payload)-1], canon[m.start:m.end]) &&
		payload[len(payload)-1] == '}'
	if !bytes.Equal(r.Alg.sum(r.Prev, body), r.Hash) {
		return r, ErrHashMismatch
	}
	return r, nil
}

// hashValue decodes a canonical JSON string holding 32 bytes in lower-case hex.
func hashValue(v []byte) ([]byte, bool) {
	if len(v) != 2*HashSize+2 || v[0] != '"' {
		return nil, false
	}
	s := v[1 : len(v)-1]
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, false
		}
	}
	b := make([]byte, HashSize)
	if _, err := hex.Decode(b, s); err != nil {
		return nil, false
	}
	return b, true
}

// unquote decodes a canonical JSON string (RFC 8785 escapes are a subset of Go's).
func unquote(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	s, err := strconv.Unquote(string(v))
	return s, err == nil
}
