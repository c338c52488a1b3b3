package card

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/sentinel-edge/sentinel/drivers/idcard"
	"github.com/sentinel-edge/sentinel/sim/population"
)

func testPop(t *testing.T) *population.Population {
	t.Helper()
	pop, err := population.New(population.Generate(population.GenerateOptions{Seed: 1, Random: 1}))
	if err != nil {
		t.Fatal(err)
	}
	return pop
}

func TestParseScript(t *testing.T) {
	pop := testPop(t)
	id := pop.People()[1].IDNumber
	steps, err := ParseScript(strings.NewReader("# a comment\npresent "+id+"\nwait 10ms\nfault checksum\nremove\npresent #1\nsam-fail\n"), "s.txt", pop)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 6 || steps[0].Card.IDNumber != id || steps[4].Card.IDNumber != pop.People()[0].IDNumber {
		t.Fatalf("steps %+v", steps)
	}
	for _, tt := range []struct{ in, want string }{
		{"present 110105199001011230", "s.txt:1: card: ID number not in the population: 11***"},
		{"present #99", "s.txt:1: card: no person #99"},
		{"wait soon", "s.txt:1: wait needs a duration"},
		{"\nfault gremlins", "s.txt:2: card: unknown fault \"gremlins\""},
		{"dance", "s.txt:1: unknown step \"dance\""},
	} {
		_, err := ParseScript(strings.NewReader(tt.in), "s.txt", pop)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err %v, want %q", tt.in, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "110105199001011230") {
			t.Errorf("error shows the ID number unmasked")
		}
	}
}

// loop is a ReadWriter whose reads come from a buffer of requests and whose writes are kept.
type loop struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (l *loop) Read(b []byte) (int, error)  { return l.in.Read(b) }
func (l *loop) Write(b []byte) (int, error) { return l.out.Write(b) }

// TestAnswers checks the replies to each command, with and without a card.
func TestAnswers(t *testing.T) {
	pop := testPop(t)
	var req []byte
	for _, c := range [][2]byte{idcard.CmdStatus, idcard.CmdFind, idcard.CmdSelect, idcard.CmdRead, {0x99, 0x01}} {
		req = append(req, idcard.EncodeCommand(c, nil)...)
	}
	for _, present := range []bool{false, true} {
		l := &loop{in: bytes.NewReader(req)}
		r := New(l, Options{})
		if present {
			info := FromPerson(pop.People()[0])
			r.Present(&info)
		}
		if err := r.Serve(context.Background()); err == nil || !strings.Contains(err.Error(), "EOF") {
			t.Fatalf("Serve: %v, want EOF at the end of the requests", err)
		}
		var d idcard.Decoder
		var got []idcard.Status
		var read []byte
		for _, p := range d.Feed(l.out.Bytes()) {
			resp, err := idcard.ParseResponse(p)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, resp.SW3)
			if len(resp.Data) > 1000 {
				read = resp.Data
			}
		}
		want := []idcard.Status{idcard.StatusOK, idcard.StatusNoCard, idcard.StatusSelectFailed, idcard.StatusReadFailed, idcard.StatusCommand}
		if present {
			want = []idcard.Status{idcard.StatusOK, idcard.StatusFound, idcard.StatusOK, idcard.StatusOK, idcard.StatusCommand}
		}
		if len(got) != len(want) {
			t.Fatalf("present=%v: %d replies, want %d", present, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("present=%v reply %d: %s, want %s", present, i, got[i], want[i])
			}
		}
		if present {
			c, err := idcard.ParseRead(read)
			if err != nil || c.IDNumber != pop.People()[0].IDNumber || c.Sex == "" || c.Birth != c.IDNumber[6:14] {
				t.Errorf("read reply parsed to %v (sex %q), %v", c.Info, c.Sex, err)
			}
		}
	}
}

func TestPlay(t *testing.T) {
	pop := testPop(t)
	steps, err := ParseScript(strings.NewReader("present #2\nwait 1ms\nremove\npresent #1\nsam-fail\n"), "s", pop)
	if err != nil {
		t.Fatal(err)
	}
	r := New(&loop{in: bytes.NewReader(nil)}, Options{})
	if err := Play(context.Background(), r, steps); err != nil {
		t.Fatal(err)
	}
	if c := r.Current(); c == nil || c.IDNumber != pop.People()[0].IDNumber || !r.samFail {
		t.Fatalf("after the script: card %v, SAM failing %v", c, r.samFail)
	}
}

// TestBadCheck: badcheck: presents a person's card whose ID number fails GB 11643 and
// differs from the right one only in its last character; it still encodes as a card.
func TestBadCheck(t *testing.T) {
	pop := testPop(t)
	for i, p := range pop.People() {
		ref := "badcheck:" + p.IDNumber
		if i%2 == 0 {
			ref = "badcheck:#" + strconv.Itoa(i+1)
		}
		info, err := Lookup(pop, ref)
		if err != nil {
			t.Fatalf("%s: %v", population.Mask(ref), err)
		}
		if population.ValidID(info.IDNumber) || info.IDNumber[:17] != p.IDNumber[:17] || info.Name != p.Name {
			t.Errorf("person %d: the bad-check card is not that person's card with a wrong check character", i+1)
		}
		if _, err := idcard.EncodeRead(info, nil); err != nil {
			t.Errorf("person %d: %v", i+1, err)
		}
	}
	steps, err := ParseScript(strings.NewReader("present badcheck:#1\n"), "s", pop)
	if err != nil || len(steps) != 1 || population.ValidID(steps[0].Card.IDNumber) {
		t.Fatalf("script: %v", err)
	}
	if _, err := Lookup(pop, "badcheck:#99"); err == nil {
		t.Error("badcheck:#99 accepted")
	}
}
