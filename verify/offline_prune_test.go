package verify

import (
	"testing"
	"time"
)

// Past its bound the cache keeps the newest 90% and drops the oldest, in one pass.
func TestPassCachePruneKeepsNewest(t *testing.T) {
	c := newPassCache(time.Hour)
	base := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	for i := 0; i <= maxCacheEntries; i++ {
		var k [32]byte
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		c.entries[k] = base.Add(time.Duration(i) * time.Millisecond)
	}
	now := base.Add(time.Duration(maxCacheEntries) * time.Millisecond)
	c.put(Credential{Kind: KindQR, QRToken: "HC-NEWEST"}, "", now)
	if got, want := len(c.entries), maxCacheEntries*9/10; got != want {
		t.Fatalf("cache holds %d entries after pruning, want %d", got, want)
	}
	if !c.hit(Credential{Kind: KindQR, QRToken: "HC-NEWEST"}, now) {
		t.Error("the newest entry was pruned")
	}
	var oldest [32]byte // entry 0
	if _, ok := c.entries[oldest]; ok {
		t.Error("the oldest entry survived pruning")
	}
}
