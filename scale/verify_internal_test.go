package scale

import (
	"fmt"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/queue"
)

// The harnesses' checks must be able to fail: these run in make test.

func TestOrderSegments(t *testing.T) {
	for _, c := range []struct {
		seqs []int64
		want int
	}{
		{nil, 0},
		{[]int64{1, 2, 3}, 1},
		{[]int64{1, 2, 5, 3, 6, 4, 7}, 1},          // backlog 3..4 overtaken by live 5..7
		{[]int64{3, 1, 2}, 1},                      // live 3 ahead of backlog 1..2
		{[]int64{2, 1, 3, 1}, 1},                   // (duplicates are removed before; harmless)
		{[]int64{1, 3, 2, 5, 4}, 2},                // two connections' worth
		{[]int64{5, 4, 3, 2, 1}, 3},                // reversed: pairs at best (live 5, backlog 4; ...)
		{[]int64{1, 2, 10, 3, 11, 4, 12, 9, 5}, 2}, // 9 after 12, then 5 after 9
	} {
		if got := orderSegments(c.seqs); got != c.want {
			t.Errorf("orderSegments(%v) = %d, want %d", c.seqs, got, c.want)
		}
	}
}

func TestGaps(t *testing.T) {
	if got := fmt.Sprint(gaps([]int64{1, 2, 4, 7, 5})); got != "[3-3 6-6]" {
		t.Errorf("gaps = %s", got)
	}
	if got := gaps([]int64{3, 1, 2}); len(got) != 0 {
		t.Errorf("gaps of 1..3 = %v", got)
	}
}

func TestAnalyse(t *testing.T) {
	payload := func(id string, seq int64) []byte { return fmt.Appendf(nil, `{"id":%q,"seq":%d}`, id, seq) }
	m := func(stream, id string, seq int64) msg {
		return msg{at: time.Now(), topic: "sentinel/v1/" + venue + "/d1/" + stream, payload: payload(id, seq)}
	}
	stored := []queue.Entry{{ID: "a", Stream: "passage", Seq: 1}, {ID: "b", Stream: "passage", Seq: 2}, {ID: "c", Stream: "passage", Seq: 3}}
	logged := []rec{{ID: "a", Seq: 1, Stream: "passage"}, {ID: "x", Seq: 4, Stream: "passage"}}
	msgs := []msg{m("passage", "a", 1), m("passage", "c", 3), m("passage", "a", 1), m("passage", "z", 3), m("event", "e", 1)}
	reps := analyse("d1", stored, logged, msgs)
	p := reps["passage"]
	if len(p.lost) != 2 { // b never arrived; x was logged and never arrived
		t.Errorf("lost = %v, want b and x", p.lost)
	}
	if len(p.reused) != 1 { // seq 3 carried by c and z
		t.Errorf("reused = %v, want seq 3", p.reused)
	}
	if fmt.Sprint(p.gaps) != "[2-2]" || p.copies != 4 || p.distinct != 3 {
		t.Errorf("gaps %v copies %d distinct %d", p.gaps, p.copies, p.distinct)
	}
	if e := reps["event"]; e == nil || e.distinct != 1 || len(e.lost) != 0 {
		t.Errorf("event stream: %+v", e)
	}
}

func TestLedger(t *testing.T) {
	logs := `time=x level=INFO msg=passage part=pipeline passage=d1b0448e-5644-45d9-91f3-d5a0c0ec80cc seq=1 credential=qr
time=x level=INFO msg="uplink: connected"
time=x level=INFO msg=passage part=pipeline passage=9d884a0d-af63-48fa-88c4-d45393cd9b34 seq=2 credential=qr`
	l := ledger(logs)
	if len(l) != 2 || l[1].Seq != 2 || l[0].ID != "d1b0448e-5644-45d9-91f3-d5a0c0ec80cc" {
		t.Fatalf("ledger = %+v", l)
	}
}

func TestPlaintextIDs(t *testing.T) {
	got := plaintextIDs(map[string][]byte{"ok": []byte(`"id":"3505**********1231"`), "bad": []byte(`x 35058219900101123X y`)})
	if len(got) != 1 || got[0][:3] != "bad" {
		t.Fatalf("plaintextIDs = %v", got)
	}
}
