package idcard_test

import (
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/idcard"
	"github.com/sentinel-edge/sentinel/sim/card"
	"github.com/sentinel-edge/sentinel/sim/population"
)

// TestBadCheckCardDelivered (issue #11, finding 4): a card whose ID number fails the GB 11643
// check character, read without a fault, is a card: the driver delivers it once (the
// verifier denies it invalid_id_number) instead of retrying it as a failed exchange for as
// long as it lies there.
func TestBadCheckCardDelivered(t *testing.T) {
	r := newRig(t, card.Options{})
	r.wantState(true, 5*time.Second)
	bad := card.WithBadCheck(card.FromPerson(r.pop[0]))
	if population.ValidID(bad.IDNumber) {
		t.Fatal("the test card's ID number is valid")
	}
	r.sim.Present(&bad)
	r.wantCard(bad, 5*time.Second)
	r.noCard(300 * time.Millisecond) // lying there, polled again and again: one card
	st := r.drv.Stats()
	if st.Failures != 0 || st.BadText != 0 {
		t.Errorf("a well-read card counted as a failed exchange: %+v", st)
	}
	if st.Reads != 1 || st.InvalidID != 1 {
		t.Errorf("stats %+v, want one read with an invalid ID number", st)
	}
}

// TestDuplicateWindow: the same card taken off and laid again within the duplicate window is
// one card; after the window, or another card in between, it is a new one.
func TestDuplicateWindow(t *testing.T) {
	r := newRigWith(t, card.Options{}, idcard.Config{DuplicateWindow: 400 * time.Millisecond})
	r.wantState(true, 5*time.Second)
	a := r.present(0)
	r.wantCard(a, 5*time.Second)
	r.sim.Present(nil)
	waitFor(t, func() bool { return r.drv.Stats().NoCard > 0 })
	r.present(0)
	r.noCard(200 * time.Millisecond) // laid again within the window
	if r.drv.Stats().Duplicates == 0 {
		t.Errorf("no duplicate counted: %+v", r.drv.Stats())
	}
	b := r.present(1)
	r.wantCard(b, 5*time.Second) // another card is read at once
	a = r.present(0)
	r.wantCard(a, 5*time.Second) // and the first one after it
	r.sim.Present(nil)
	noCards := r.drv.Stats().NoCard
	waitFor(t, func() bool { return r.drv.Stats().NoCard > noCards })
	time.Sleep(500 * time.Millisecond) // past the window, which restarts with every read
	r.present(0)
	r.wantCard(a, 5*time.Second)
}
