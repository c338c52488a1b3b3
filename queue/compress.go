package queue

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
)

// Payload encodings, stored in outbox.enc. A released encoding never changes: a new
// dictionary is a new encoding number, so rows written by older versions stay readable.
const (
	encRaw     = 0 // the payload as given
	encDeflate = 1 // DEFLATE with dictDeflate1 as preset dictionary
	encSplit   = 2 // random strings kept apart in binary, the rest DEFLATE with dictDeflate2 (below)
	// encSplitCanonical is encSplit with dictDeflate3: records chained (docs/records.md), whose
	// members are in RFC 8785 order with prev and hash.
	encSplitCanonical = 3
)

// dictDeflate1 is the preset dictionary of encDeflate: the keys and common values of
// Sentinel's JSON records, so that a single small record compresses well (a passage record
// of ~600 bytes to ~290). It must never change.
var dictDeflate1 = []byte(`{"kind":"queue_loss","stream":"event","topic":"sentinel/v1/","first_seq":` +
	`"dropped_oldest":"rejected_full":"failed_writes":"alarm","input":"fire","state":"active","cleared",` +
	`{"id":"","seq":,"ts":"2026-11-25T08:00:00.000Z","device":"","venue":"","credential":"idcard","face",` +
	`"subject":{"id":"**********","name":"*","sealed":"","hash":""},"verdict":"deny","reason":"health_code_red",` +
	`"health_code_yellow","nat_expired","nat_missing","nat_positive","unknown_credential","malformed_scan",` +
	`"platform_unreachable","mode":"offline","gate":"not_opened","no_barrier",` +
	`"verdict":"pass","reason":"ok","mode":"online","gate":"opened","policy":"sha256:","health_code":"green",` +
	`"nat_sampled_at":"Z","platform_request_id":"p-","decision_ms":`)

// minCompress is the smallest payload worth compressing.
const minCompress = 64

var (
	flateWriters = sync.Pool{New: func() any {
		w, err := flate.NewWriterDict(io.Discard, flate.DefaultCompression, dictDeflate1)
		if err != nil {
			panic(err) // only for an invalid level, a programming error
		}
		return w
	}}
	flateReaders  = sync.Pool{New: func() any { return flate.NewReaderDict(bytes.NewReader(nil), dictDeflate1) }}
	flateWriters2 = sync.Pool{New: func() any {
		w, err := flate.NewWriterDict(io.Discard, flate.DefaultCompression, dictDeflate2)
		if err != nil {
			panic(err) // only for an invalid level, a programming error
		}
		return w
	}}
	flateWriters3 = sync.Pool{New: func() any {
		w, err := flate.NewWriterDict(io.Discard, flate.DefaultCompression, dictDeflate3)
		if err != nil {
			panic(err) // only for an invalid level, a programming error
		}
		return w
	}}
)

// encode returns the stored form of the payload of the record with the given id (its
// canonical UUID text) and its encoding: encSplitCanonical for a chained record (its hash
// last), encSplit for another, when that is smaller, else raw. New rows are never written
// with encDeflate; it stays readable.
func encode(payload []byte, id string) ([]byte, int) {
	if len(payload) < minCompress {
		return payload, encRaw
	}
	enc, pool := encSplit, &flateWriters2
	if chainedForm(payload) {
		enc, pool = encSplitCanonical, &flateWriters3
	}
	stored := encodeSplit(payload, id, pool)
	if len(stored) >= len(payload) {
		return payload, encRaw
	}
	return stored, enc
}

// chainedForm reports whether payload ends as a chained record does: ,"hash":"<64 hex>"}.
func chainedForm(p []byte) bool {
	const tail = len(`,"hash":""}`) + 64
	return len(p) > tail && string(p[len(p)-tail:len(p)-tail+9]) == `,"hash":"` && p[len(p)-2] == '"' && p[len(p)-1] == '}'
}

// decode returns the payload a stored row holds; id is the row's id (canonical UUID text).
func decode(stored []byte, enc int, id string) ([]byte, error) {
	switch enc {
	case encRaw:
		return stored, nil
	case encDeflate:
		return inflate(stored, dictDeflate1)
	case encSplit:
		return decodeSplit(stored, id, dictDeflate2)
	case encSplitCanonical:
		return decodeSplit(stored, id, dictDeflate3)
	default:
		return nil, fmt.Errorf("queue: payload encoding %d is unknown (written by a newer agent?): %w", enc, ErrSchemaTooNew)
	}
}

func deflate(dst *bytes.Buffer, pool *sync.Pool, b []byte) error {
	w := pool.Get().(*flate.Writer)
	defer pool.Put(w)
	w.Reset(dst)
	if _, err := w.Write(b); err != nil {
		return err
	}
	return w.Close()
}

func inflate(stored, dict []byte) ([]byte, error) {
	r := flateReaders.Get().(io.ReadCloser)
	defer flateReaders.Put(r)
	if err := r.(flate.Resetter).Reset(bytes.NewReader(stored), dict); err != nil {
		return nil, fmt.Errorf("queue: decode payload: %w", err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("queue: decode payload: %w: %w", err, ErrCorrupt)
	}
	return out, nil
}

// encSplit: a record's random strings (its own id, the base64 of a sealed box, hex hashes)
// cost more as text than as bytes, and they make the rest compress worse. They are cut out of
// the JSON (the quotes stay) and kept apart in binary; the rest, the skeleton, is DEFLATE
// with dictDeflate2. On the wire nothing changes: decode puts every string back, byte for
// byte. The stored form:
//
//	uvarint  number of holes
//	per hole uvarint position in the skeleton (from the previous hole's), byte kind,
//	         and for kinds holeHex and holeBase64: uvarint length, the bytes
//	byte     0: the skeleton follows raw; 1: it follows DEFLATE-compressed
//	...      the skeleton
//
// Only strings that come back exactly are cut out: the record's id (kind holeID, no bytes),
// lowercase hex of 8 bytes or more (holeHex), and canonical padded standard base64 of 12
// bytes or more (holeBase64). Any other byte sequence, JSON or not, is stored as it is.
const (
	holeID     = 1
	holeHex    = 2
	holeBase64 = 3

	minHoleText = 16 // shorter strings are not worth a hole
)

// dictDeflate2 is the preset dictionary of encSplit: dictDeflate1, then skeletons of
// Sentinel's records as the agent writes them (the most common last, closest to the data).
// It must never change.
var dictDeflate2 = append(append([]byte(nil), dictDeflate1...), ``+
	`{"id":"","seq":1,"ts":"2026-11-25T08:00:00.000Z","device":"","venue":"","clock":"synced","type":"alarm","source":"fire","state":"active","detail":"`+
	`{"id":"","seq":1,"ts":"2026-11-25T08:00:00.000Z","device":"","venue":"","interface":"qr","passage":"","purpose":"passage","attempt":1,"latency_ms":12.5,`+
	`"http_status":200,"platform_request_id":"p-","signature":"accepted","result":"ok","source":"live"}`+
	`{"id":"","seq":1,"ts":"2026-11-25T08:00:00.000Z","device":"","venue":"","credential":"idcard","subject":{"id":"**********","name":"*"},`+
	`"verdict":"deny","reason":"health_code_red","mode":"offline","gate":"not_opened","policy":"sha256:","health_code":"red",`+
	`"nat_sampled_at":"2026-11-25T08:00:00Z","platform_request_id":"p-","decision_ms":1,"fallback":"allow_and_flag","flagged":true,"clock":"unsynced"}`+
	`{"id":"","seq":1,"ts":"2026-11-25T08:00:00.000Z","device":"","venue":"","credential":"qr","subject":{"id":"**********","name":"*","sealed":"","hash":""},`+
	`"verdict":"pass","reason":"ok","mode":"online","gate":"opened","policy":"sha256:","health_code":"green",`+
	`"nat_sampled_at":"2026-11-25T08:00:00Z","platform_request_id":"p-","decision_ms":1,"clock":"synced"}`...)

// dictDeflate3 is the preset dictionary of encSplitCanonical: dictDeflate1, then skeletons of
// Sentinel's records as the chain stores them (RFC 8785 member order, prev, the hash last; the
// most common last; no queue_loss notice: they are rare, and a longer dictionary costs every
// compression). It must never change.
var dictDeflate3 = append(append([]byte(nil), dictDeflate1...), ``+
	`{"clock":"synced","detail":"","device":"","id":"","prev":"","seq":1,"source":"fire","state":"active","ts":"2026-11-25T08:00:00.000Z","type":"alarm","venue":"","hash":""}`+
	`{"attempt":1,"device":"","http_status":200,"id":"","interface":"qr","latency_ms":12.5,"passage":"","platform_request_id":"p-","prev":"","purpose":"passage","result":"ok","seq":1,"signature":"accepted","source":"live","ts":"2026-11-25T08:00:00.000Z","venue":"","hash":""}`+
	`{"clock":"unsynced","credential":"idcard","decision_ms":1,"device":"","fallback":"allow_and_flag","flagged":true,"gate":"not_opened","health_code":"red","id":"","mode":"offline","nat_sampled_at":"2026-11-25T08:00:00Z","platform_request_id":"p-","policy":"sha256:","prev":"","reason":"health_code_red","seq":1,"subject":{"id":"**********","name":"*"},"ts":"2026-11-25T08:00:00.000Z","venue":"","verdict":"deny","hash":""}`+
	`{"clock":"synced","credential":"qr","decision_ms":1,"device":"","gate":"opened","health_code":"green","id":"","mode":"online","nat_sampled_at":"2026-11-25T08:00:00Z","platform_request_id":"p-","policy":"sha256:","prev":"","reason":"ok","seq":1,"subject":{"hash":"","id":"**********","name":"*","sealed":""},"ts":"2026-11-25T08:00:00.000Z","venue":"","verdict":"pass","hash":""}`...)

// encodeSplit returns the encSplit form of payload, the skeleton compressed with a writer of
// pool (its dictionary names the encoding).
func encodeSplit(payload []byte, id string, pool *sync.Pool) []byte {
	out := make([]byte, 0, len(payload)/2+16)
	skel := make([]byte, 0, len(payload))
	var holes []byte
	nHoles, last, prevPos := 0, 0, 0
	for i := 0; i < len(payload); i++ {
		if payload[i] != '"' {
			continue
		}
		j, plain := stringEnd(payload, i+1)
		if j < 0 {
			break
		}
		s := payload[i+1 : j]
		kind, data := holeKind(s, id, plain)
		if kind != 0 {
			skel = append(skel, payload[last:i+1]...)
			holes = binary.AppendUvarint(holes, uint64(len(skel)-prevPos))
			holes = append(holes, kind)
			if kind != holeID {
				holes = binary.AppendUvarint(holes, uint64(len(data)))
				holes = append(holes, data...)
			}
			prevPos, last = len(skel), j
			nHoles++
		}
		i = j
	}
	skel = append(skel, payload[last:]...)
	out = binary.AppendUvarint(out, uint64(nHoles))
	out = append(out, holes...)
	var buf bytes.Buffer
	if len(skel) >= minCompress/2 && deflate(&buf, pool, skel) == nil && buf.Len() < len(skel) {
		out = append(out, 1)
		return append(out, buf.Bytes()...)
	}
	out = append(out, 0)
	return append(out, skel...)
}

// stringEnd returns the index of the quote that ends the string starting at i (just after
// its opening quote), or -1, and whether the string has no escapes.
func stringEnd(p []byte, i int) (int, bool) {
	plain := true
	for ; i < len(p); i++ {
		switch p[i] {
		case '\\':
			plain = false
			i++
		case '"':
			return i, plain
		}
	}
	return -1, false
}

// holeKind decides whether the string s is cut out, and how its bytes are kept.
func holeKind(s []byte, id string, plain bool) (byte, []byte) {
	if !plain || len(s) < minHoleText {
		return 0, nil
	}
	if id != "" && string(s) == id {
		return holeID, nil
	}
	if len(s)%2 == 0 && isLowerHex(s) {
		b := make([]byte, len(s)/2)
		if _, err := hex.Decode(b, s); err == nil {
			return holeHex, b
		}
	}
	if len(s)%4 == 0 {
		b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
		n, err := base64.StdEncoding.Decode(b, s)
		if err == nil && base64.StdEncoding.EncodedLen(n) == len(s) {
			b = b[:n]
			// Canonical only: padding bits zero, so encoding gives s back.
			if base64.StdEncoding.EncodeToString(b) == string(s) {
				return holeBase64, b
			}
		}
	}
	return 0, nil
}

func isLowerHex(s []byte) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// decodeSplit reverses encodeSplit; dict is the encoding's dictionary.
func decodeSplit(stored []byte, id string, dict []byte) ([]byte, error) {
	bad := func(what string) error {
		return fmt.Errorf("queue: decode payload: %s: %w", what, ErrCorrupt)
	}
	r := stored
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			return 0, false
		}
		r = r[n:]
		return v, true
	}
	nHoles, ok := uv()
	if !ok || nHoles > uint64(len(stored)) {
		return nil, bad("hole count")
	}
	type hole struct {
		pos  int
		kind byte
		data []byte
	}
	holes := make([]hole, 0, nHoles)
	pos := 0
	for range nHoles {
		d, ok := uv()
		if !ok || d > uint64(len(stored))*64 || len(r) == 0 {
			return nil, bad("hole position")
		}
		pos += int(d)
		h := hole{pos: pos, kind: r[0]}
		r = r[1:]
		switch h.kind {
		case holeID:
			if id == "" {
				return nil, bad("record id unknown")
			}
		case holeHex, holeBase64:
			n, ok := uv()
			if !ok || n > uint64(len(r)) {
				return nil, bad("hole length")
			}
			h.data, r = r[:n], r[n:]
		default:
			return nil, bad(fmt.Sprintf("hole kind %d", h.kind))
		}
		holes = append(holes, h)
	}
	if len(r) == 0 {
		return nil, bad("no skeleton")
	}
	skel := r[1:]
	switch r[0] {
	case 0:
	case 1:
		var err error
		if skel, err = inflate(skel, dict); err != nil {
			return nil, err
		}
	default:
		return nil, bad("skeleton flag")
	}
	out := make([]byte, 0, len(skel)+len(stored))
	last := 0
	for _, h := range holes {
		if h.pos > len(skel) {
			return nil, bad("hole past the end")
		}
		out = append(out, skel[last:h.pos]...)
		switch h.kind {
		case holeID:
			out = append(out, id...)
		case holeHex:
			out = hex.AppendEncode(out, h.data)
		case holeBase64:
			out = base64.StdEncoding.AppendEncode(out, h.data)
		}
		last = h.pos
	}
	return append(out, skel[last:]...), nil
}
