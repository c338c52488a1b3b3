package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// testKey is the key of the worked example in docs/records.md: the seed 00 01 02 ... 1f.
func testKey() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

const examplePassage = `{"id":"0b5d1f3e-8c1a-4f7e-9a61-3c2d5e7f9a10","seq":1,"ts":"2026-11-25T08:00:01.123Z","device":"gate-01",` +
	`"venue":"350582-0001","credential":"qr","subject":{"id":"3505**********1231","name":"张*"},"verdict":"pass","reason":"ok",` +
	`"mode":"online","gate":"opened","policy":"sha256:f6849c7b9a81e61a","health_code":"green","nat_sampled_at":"2026-11-25T02:00:00Z",` +
	`"platform_request_id":"p-7f3a","decision_ms":3,"clock":"synced"}`

// The worked example of docs/records.md. The expected values were computed independently, in
// Python (json.dumps with sorted keys and no spaces, which is RFC 8785 for this record;
// hashlib's sha256 and OpenSSL's sm3; the cryptography package for the public key).
func TestWorkedExample(t *testing.T) {
	u := &Unit{Venue: "350582-0001", Device: "gate-01", Alg: SHA256, Key: testKey()}
	if got := u.PublicKey(); got != "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=" {
		t.Fatalf("public key %s", got)
	}
	for _, tt := range []struct {
		alg           Alg
		genesis, hash string
	}{
		{SHA256, "04d9606aa134b4b9c04451978e65039e8b952cc271c3df96e344451da12f289a", "9abb04bc1cbc7bcacc12560113d895bda69b39298648d0585fa8cd0f929b9048"},
		{SM3, "6f50a2086da0ccb03f9dd3625538ec59aeb04141fc8d46ae766041f74b3ff476", "9f9c269245b72e689298ecbdb94d3e3a756ebef5673994d66bd34fc12921bf57"},
	} {
		t.Run(tt.alg.String(), func(t *testing.T) {
			u.Alg = tt.alg
			if g := hex.EncodeToString(u.Genesis("passage")); g != tt.genesis {
				t.Fatalf("genesis %s, want %s", g, tt.genesis)
			}
			chained, hash, err := u.Link("passage", nil, []byte(examplePassage))
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(hash) != tt.hash {
				t.Fatalf("hash %x, want %s", hash, tt.hash)
			}
			algMember := ""
			if tt.alg == SM3 {
				algMember = `"hash_alg":"sm3",`
			}
			want := `{"clock":"synced","credential":"qr","decision_ms":3,"device":"gate-01","gate":"opened",` + algMember +
				`"health_code":"green","id":"0b5d1f3e-8c1a-4f7e-9a61-3c2d5e7f9a10","mode":"online","nat_sampled_at":"2026-11-25T02:00:00Z",` +
				`"platform_request_id":"p-7f3a","policy":"sha256:f6849c7b9a81e61a","prev":"` + tt.genesis + `","reason":"ok","seq":1,` +
				`"subject":{"id":"3505**********1231","name":"张*"},"ts":"2026-11-25T08:00:01.123Z","venue":"350582-0001","verdict":"pass",` +
				`"hash":"` + tt.hash + `"}`
			if string(chained) != want {
				t.Fatalf("chained\n%s\nwant\n%s", chained, want)
			}
			r, err := Check(chained)
			if err != nil || !r.Published || r.Seq != 1 || r.Alg != tt.alg || r.ID != "0b5d1f3e-8c1a-4f7e-9a61-3c2d5e7f9a10" ||
				hex.EncodeToString(r.Prev) != tt.genesis || r.Device != "gate-01" || r.Venue != "350582-0001" {
				t.Fatalf("Check: %+v, %v", r, err)
			}
		})
	}
}

// A stream of records chained one to the next: each checks, each prev is the hash before.
func TestLinkChain(t *testing.T) {
	u := &Unit{Venue: "v", Device: "d", Alg: SHA256, Key: testKey()}
	var prev []byte
	for seq := 1; seq <= 20; seq++ {
		payload := fmt.Appendf(nil, `{"id":"id-%d","seq":%d,"latency_ms":%d.25,"ok":true,"n":null,"a":[1,"x"]}`, seq, seq, seq)
		chained, hash, err := u.Link("audit", prev, payload)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Check(chained)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		want := prev
		if want == nil {
			want = u.Genesis("audit")
		}
		if !bytes.Equal(r.Prev, want) || !bytes.Equal(r.Hash, hash) || r.Seq != int64(seq) || !r.Published {
			t.Fatalf("seq %d: %+v", seq, r)
		}
		var v map[string]any
		if err := json.Unmarshal(chained, &v); err != nil {
			t.Fatalf("seq %d: not JSON: %v", seq, err)
		}
		prev = hash
	}
}

// Every single-byte change of a chained record is caught: it no longer parses, or its hash
// does not match (or, changed in its hash, it names another hash that does not match).
func TestCheckEditedByte(t *testing.T) {
	u := &Unit{Venue: "350582-0001", Device: "gate-01", Alg: SHA256, Key: testKey()}
	chained, _, err := u.Link("passage", nil, []byte(examplePassage))
	if err != nil {
		t.Fatal(err)
	}
	for i := range chained {
		for _, delta := range []byte{1, 0x20} {
			b := bytes.Clone(chained)
			b[i] ^= delta
			r, err := Check(b)
			if err == nil {
				t.Fatalf("byte %d ^ %#x (%q): still checks: %+v", i, delta, b, r)
			}
		}
	}
}

// A record re-encoded on the way (members reordered, white space, escapes) still checks: the
// hash is over the canonical form; Published says it is not as the unit wrote it.
func TestCheckReencoded(t *testing.T) {
	u := &Unit{Venue: "350582-0001", Device: "gate-01", Alg: SM3, Key: testKey()}
	chained, hash, err := u.Link("passage", nil, []byte(examplePassage))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(chained, &v); err != nil {
		t.Fatal(err)
	}
	re, _ := json.MarshalIndent(v, "", "  ") // Go sorts the keys, puts hash in the middle, escapes differently
	re = bytes.ReplaceAll(re, []byte("张"), []byte(`\u5f20`))
	r, err := Check(re)
	if err != nil || r.Published || !bytes.Equal(r.Hash, hash) {
		t.Fatalf("re-encoded: %+v, %v\n%s", r, err, re)
	}
}

func TestLinkRefuses(t *testing.T) {
	g := make([]byte, HashSize)
	for _, tt := range []struct {
		payload string
		want    error
	}{
		{`[1]`, ErrRecord},
		{`"x"`, ErrRecord},
		{`{"id":"a","seq":1,"prev":"x"}`, ErrRecord},
		{`{"id":"a","seq":1,"hash":"x"}`, ErrRecord},
		{`{"id":"a","seq":1,"hash_alg":"sm3"}`, ErrRecord},
		{`{"id":"a","seq":1,"id":"b"}`, ErrNotCanonicalizable},
		{`{"id":"a"`, ErrNotCanonicalizable},
		{"{\"id\":\"\xff\"}", ErrNotCanonicalizable},
	} {
		if _, _, err := Link(SHA256, g, []byte(tt.payload)); !errors.Is(err, tt.want) {
			t.Errorf("Link(%s) = %v, want %v", tt.payload, err, tt.want)
		}
	}
	if _, _, err := Link(SHA256, g[:31], []byte(`{}`)); !errors.Is(err, ErrRecord) {
		t.Errorf("short prev: %v", err)
	}
	if _, _, err := Link(Alg(9), g, []byte(`{}`)); !errors.Is(err, ErrAlg) {
		t.Errorf("bad alg: %v", err)
	}
	// The empty object chains too (prev is then its only member).
	if c, _, err := Link(SHA256, g, []byte(` {} `)); err != nil || !strings.HasPrefix(string(c), `{"prev":"0000`) {
		t.Errorf("empty object: %s, %v", c, err)
	}
}

func TestCheckRefuses(t *testing.T) {
	h := strings.Repeat("ab", HashSize)
	for _, tt := range []struct {
		payload string
		want    error
	}{
		{`{"id":"a","seq":1}`, ErrUnchained},
		{`[]`, ErrMalformed},
		{`{"id":"a","seq":1,"prev":"` + h + `"}`, ErrMalformed},
		{`{"id":"a","seq":1,"hash":"` + h + `"}`, ErrMalformed},
		{`{"id":"a","seq":1,"prev":"` + strings.ToUpper(h) + `","hash":"` + h + `"}`, ErrMalformed},
		{`{"id":"a","seq":1,"prev":"` + h[2:] + `","hash":"` + h + `"}`, ErrMalformed},
		{`{"id":"a","seq":0,"prev":"` + h + `","hash":"` + h + `"}`, ErrMalformed},
		{`{"id":"a","seq":1.5,"prev":"` + h + `","hash":"` + h + `"}`, ErrMalformed},
		{`{"seq":1,"prev":"` + h + `","hash":"` + h + `"}`, ErrMalformed},
		{`{"id":"a","prev":"` + h + `","hash":"` + h + `"}`, ErrMalformed},
		{`{"id":"a","seq":1,"hash_alg":"md5","prev":"` + h + `","hash":"` + h + `"}`, ErrMalformed},
		{`{"id":"a","seq":1,"prev":"` + h + `","hash":"` + h + `"}`, ErrHashMismatch},
		{`{"id":"a","seq":1,"seq":2,"prev":"` + h + `","hash":"` + h + `"}`, ErrNotCanonicalizable},
	} {
		if _, err := Check([]byte(tt.payload)); !errors.Is(err, tt.want) {
			t.Errorf("Check(%.60s) = %v, want %v", tt.payload, err, tt.want)
		}
	}
}

// Prepare once, link twice: what the writer does when an earlier record of its transaction
// was not stored and the seq (so the prev) changes.
func TestPreparedLinkAgain(t *testing.T) {
	p, err := Prepare([]byte(`{"id":"x","seq":3,"b":1,"a":2}`))
	if err != nil {
		t.Fatal(err)
	}
	a, ha, _ := p.Link(SHA256, bytes.Repeat([]byte{1}, HashSize))
	b, hb, _ := p.Link(SHA256, bytes.Repeat([]byte{2}, HashSize))
	a2, ha2, _ := p.Link(SHA256, bytes.Repeat([]byte{1}, HashSize))
	if bytes.Equal(ha, hb) || !bytes.Equal(ha, ha2) || !bytes.Equal(a, a2) || bytes.Equal(a, b) {
		t.Fatalf("relink: %s %s %s", a, b, a2)
	}
}

func TestGenesisDiffers(t *testing.T) {
	k1, k2 := testKey(), ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	p1, p2 := k1.Public().(ed25519.PublicKey), k2.Public().(ed25519.PublicKey)
	base := Genesis(SHA256, "v", "d", "passage", p1)
	for name, g := range map[string][]byte{
		"stream": Genesis(SHA256, "v", "d", "audit", p1),
		"device": Genesis(SHA256, "v", "e", "passage", p1),
		"venue":  Genesis(SHA256, "w", "d", "passage", p1),
		"key":    Genesis(SHA256, "v", "d", "passage", p2),
		"alg":    Genesis(SM3, "v", "d", "passage", p1),
		// Field boundaries cannot be moved: the statement is JSON.
		"shifted": Genesis(SHA256, "v", "dp", "assage", p1),
	} {
		if bytes.Equal(g, base) || len(g) != HashSize {
			t.Errorf("genesis with another %s is the same", name)
		}
	}
	if !bytes.Equal(base, Genesis(SHA256, "v", "d", "passage", p1)) {
		t.Error("genesis is not deterministic")
	}
}
