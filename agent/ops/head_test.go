package ops

import (
	"context"
	"crypto/ed25519"
	"strings"
	"sync"
	"testing"

	"github.com/sentinel-edge/sentinel/internal/chain"
)

// heads is a head source whose head the test moves.
type heads struct {
	mu sync.Mutex
	h  chain.Head
}

func (s *heads) Heads(context.Context) (chain.Head, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h, nil
}

// TestStatusHead: with Options.Head the status carries the head, its signature with the
// status' own ts and the unit's key; a new signature alone is no change worth a status, a
// moved head is.
func TestStatusHead(t *testing.T) {
	u := &chain.Unit{Venue: "350582-0001", Device: "gate-01", Alg: chain.SHA256, Key: ed25519.NewKeyFromSeed(make([]byte, 32))}
	src := &heads{h: chain.Head{}}
	f := newFixture(t, t.TempDir(), ed25519.NewKeyFromSeed(make([]byte, 32)), func(o *Options) {
		o.Head = u.StatusHead(src, func(err error) { t.Error(err) })
	})
	s := f.o.Status(context.Background())
	if s.ChainKey != u.PublicKey() || s.HeadSig == "" || len(s.Head) != 0 {
		t.Fatalf("status with no stream yet: head %v sig %q key %q", s.Head, s.HeadSig, s.ChainKey)
	}
	src.mu.Lock()
	src.h = chain.Head{"event": chain.NewStreamHead(1, make([]byte, chain.HashSize))}
	src.mu.Unlock()
	s2 := f.o.Status(context.Background())
	if !chain.VerifyHead(u.Key.Public().(ed25519.PublicKey), "350582-0001", "gate-01", s2.TS, s2.Head, s2.HeadSig) || s2.Head["event"].Seq != 1 {
		t.Fatalf("status head %v sig %q does not verify with ts %s", s2.Head, s2.HeadSig, s2.TS)
	}
	if significant(s) == significant(s2) {
		t.Fatal("a moved head is not a change worth publishing")
	}
	s3 := s2
	s3.HeadSig, s3.TS = "other", "later"
	if significant(s3) != significant(s2) {
		t.Fatal("a new signature alone counts as a change")
	}
	// The will, made at connect time, carries the head too.
	if w := newControl(f.o).will(); !containsAll(string(w), `"head":{"event"`, `"head_sig":"`, `"chain_key":"`+u.PublicKey()) {
		t.Fatalf("the will lacks the signed head: %s", w)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
