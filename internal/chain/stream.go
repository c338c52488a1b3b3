package chain

import (
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
)

// streamAnalysis is the working state of one stream's analysis.
type streamAnalysis struct {
	a      *unitAnalysis
	name   string
	recs   []*rec                  // every distinct record, by seq then arrival
	good   map[int64][]*rec        // the records whose hash checks, distinct, by seq
	any    map[int64]bool          // seqs with any record, edited or not
	edited map[int64]bool          // seqs with an edited record
	byHash map[[HashSize]byte]*rec // claimed hash → record (one whose hash checks first)
	root   map[*rec][HashSize]byte // where each checked record's line begins (a prev value)
	anchor *StateStream            // what an earlier run verified, nil for none
	rep    StreamReport
}

func (a *unitAnalysis) stream(name string) StreamReport {
	s := &streamAnalysis{a: a, name: name, good: map[int64][]*rec{}, any: map[int64]bool{}, edited: map[int64]bool{},
		byHash: map[[HashSize]byte]*rec{}, root: map[*rec][HashSize]byte{}}
	s.rep.Stream = name
	if a.state != nil {
		if st, ok := a.state.Streams[name]; ok && st.Verified.Seq > 0 {
			s.anchor = &st
		}
	}
	if st := a.u.streams[name]; st != nil {
		s.rep.Messages, s.rep.Duplicates, s.rep.Reencoded = st.messages, st.duplicates, st.reencoded
		if st.unchained > 0 {
			a.add(Finding{Kind: KindUnchained, Stream: name, Detail: fmt.Sprintf(
				"%d record(s) without prev and hash (the first: %s): written by an agent without the chain, or stripped", st.unchained, st.firstUnch)})
		}
		for i := range st.recs {
			s.recs = append(s.recs, &st.recs[i])
		}
	}
	sort.SliceStable(s.recs, func(i, j int) bool { return s.recs[i].seq < s.recs[j].seq })
	s.rep.Records = len(s.recs)
	if len(s.recs) > 0 {
		s.rep.FirstSeq, s.rep.LastSeq = s.recs[0].seq, s.recs[len(s.recs)-1].seq
	}
	s.index()
	s.forks()
	s.links()
	s.reusedSeqs()
	s.gaps()
	s.verifiedRun()
	s.heads()
	return s.rep
}

// index sorts the records into good (hash checks) and edited, and finds the parents.
func (s *streamAnalysis) index() {
	for _, r := range s.recs {
		s.any[r.seq] = true
		if !r.hashOK {
			s.edited[r.seq] = true
			s.a.add(Finding{Kind: KindHashMismatch, Stream: s.name, Seq: r.seq, ID: r.id,
				Detail: "the record's content does not match its hash: it was changed after it was chained (an edited record)"})
			if s.byHash[r.hash] == nil {
				s.byHash[r.hash] = r
			}
			continue
		}
		if p := s.byHash[r.hash]; p != nil && p.hashOK {
			continue // the same record (its hash covers its id and seq)
		}
		s.byHash[r.hash] = r
		s.good[r.seq] = append(s.good[r.seq], r)
	}
}

func (s *streamAnalysis) goodSorted() []*rec {
	var out []*rec
	for _, r := range s.recs {
		if slices.Contains(s.good[r.seq], r) {
			out = append(out, r)
		}
	}
	return out
}

// forks finds records chained to one predecessor: a fork, or, at the genesis, a restart.
func (s *streamAnalysis) forks() {
	children := map[[HashSize]byte][]*rec{}
	var order [][HashSize]byte
	for _, r := range s.goodSorted() {
		if children[r.prev] == nil {
			order = append(order, r.prev)
		}
		children[r.prev] = append(children[r.prev], r)
	}
	for _, prev := range order {
		kids := children[prev]
		if len(kids) < 2 {
			continue
		}
		if s.a.isGenesis(prev) {
			continue // links names a restart
		}
		parent := "a record not in this capture"
		if p := s.byHash[prev]; p != nil {
			parent = fmt.Sprintf("the record at seq %d (id %s)", p.seq, p.id)
		}
		s.a.add(Finding{Kind: KindFork, Stream: s.name, Seq: kids[1].seq, ID: kids[1].id, Detail: fmt.Sprintf(
			"%d records are chained to %s, hash %s: %s: one of them replaced the other, or the chain was rewritten from there",
			len(kids), parent, shortHash(prev), idList(kids))})
	}
}

// links checks each record's prev against the record before it, and notes where each line
// of records begins (for reusedSeqs).
func (s *streamAnalysis) links() {
	earliest := int64(0)
	good := s.goodSorted()
	if len(good) > 0 {
		earliest = good[0].seq
	}
	var starts []*rec
	for _, r := range good {
		p := s.byHash[r.prev]
		switch {
		case s.a.isGenesis(r.prev):
			s.root[r] = r.prev
			starts = append(starts, r)
			if !s.a.genesis[r.prev] {
				s.a.add(Finding{Kind: KindBadGenesis, Stream: s.name, Seq: r.seq, ID: r.id, Detail: fmt.Sprintf(
					"the chain starts from the genesis of a key that is not the unit's trusted key (one a status named): the unit was re-provisioned, or the records are not its own")})
			}
		case s.anchor != nil && hexHash(r.prev) == s.anchor.Verified.Hash:
			s.root[r] = r.prev
			if r.seq != s.anchor.Verified.Seq+1 {
				s.broken(r, fmt.Sprintf("it is chained to the record verified before at seq %d but numbered %d: records were renumbered", s.anchor.Verified.Seq, r.seq))
			}
		case p != nil && p.seq < r.seq:
			s.root[r] = s.rootOf(p)
			if r.seq != p.seq+1 {
				s.broken(r, fmt.Sprintf("it is chained to the record at seq %d (id %s) but numbered %d: records were deleted and the rest renumbered", p.seq, p.id, r.seq))
			}
		default:
			s.root[r] = r.prev
			s.dangling(r, p)
		}
	}
	if len(starts) > 1 {
		s.a.add(Finding{Kind: KindRestarted, Stream: s.name, Seq: starts[1].seq, ID: starts[1].id, Detail: fmt.Sprintf(
			"the stream started again from its genesis: %d chains begin there (%s): the unit's database was replaced after its first records (reinstalled with a fresh database, or restored from a backup)",
			len(starts), idList(starts))})
	} else if len(starts) == 1 {
		s.genesisChild(starts[0], earliest)
	}
}

// dangling checks a record whose prev is no record of the capture, no genesis and not what
// an earlier run verified.
func (s *streamAnalysis) dangling(r, p *rec) {
	switch {
	case r.seq == 1 && len(s.a.genesis) > 0:
		s.a.add(Finding{Kind: KindBadGenesis, Stream: s.name, Seq: r.seq, ID: r.id, Detail: fmt.Sprintf(
			"the stream's first record does not start from the unit's genesis (its prev is %s): made with another key or for another unit, or the chain was rewritten", shortHash(r.prev))})
	case p != nil:
		s.broken(r, fmt.Sprintf("it is chained to the record at seq %d (id %s), not to one before it", p.seq, p.id))
	case s.any[r.seq-1]:
		s.broken(r, fmt.Sprintf("its prev is not the hash of the record at seq %d: that record was replaced, or records were deleted and the rest renumbered", r.seq-1))
	}
}

func (s *streamAnalysis) rootOf(p *rec) [HashSize]byte {
	if r, ok := s.root[p]; ok {
		return r
	}
	return p.prev // an edited record: its line begins at it
}

func (s *streamAnalysis) broken(r *rec, why string) {
	s.a.add(Finding{Kind: KindBrokenLink, Stream: s.name, Seq: r.seq, ID: r.id, Detail: why})
}

// genesisChild checks a record chained to the genesis: the first record of the stream, or
// of its chain when the records before it predate the chain (an upgraded unit).
func (s *streamAnalysis) genesisChild(r *rec, earliest int64) {
	restart := func(why string) {
		s.a.add(Finding{Kind: KindRestarted, Stream: s.name, Seq: r.seq, ID: r.id,
			Detail: "the stream started again from its genesis " + why + ": the unit's database was replaced (reinstalled with a fresh database, or restored from a backup)"})
	}
	switch {
	case s.anchor != nil && s.anchor.First != nil && r.seq == s.anchor.First.Seq && hexHash(r.hash) != s.anchor.First.Hash:
		restart(fmt.Sprintf("with another first record than the one an earlier run verified (hash %s…)", s.anchor.First.Hash[:12]))
	case s.anchor != nil && s.anchor.First == nil && r.seq <= s.anchor.Verified.Seq:
		restart(fmt.Sprintf("at seq %d, below seq %d verified before", r.seq, s.anchor.Verified.Seq))
	case r.seq > 1 && r.seq > earliest:
		restart(fmt.Sprintf("at seq %d, after chained records at lower seqs", r.seq))
	}
}

// reusedSeqs names two records at one seq that no fork or restart explains: lines of
// records that begin in different places meet at the same seq.
func (s *streamAnalysis) reusedSeqs() {
	seqs := make([]int64, 0, len(s.good))
	for q, rs := range s.good {
		if len(rs) > 1 {
			seqs = append(seqs, q)
		}
	}
	slices.Sort(seqs)
	for _, q := range seqs {
		rs := s.good[q]
		explained := true
		for _, r := range rs[1:] {
			a, b := s.root[rs[0]], s.root[r]
			explained = explained && (a == b || (s.a.isGenesis(a) && s.a.isGenesis(b)))
		}
		if !explained {
			s.a.add(Finding{Kind: KindReusedSeq, Stream: s.name, Seq: q, ID: rs[1].id, Detail: fmt.Sprintf(
				"%d different records carry seq %d (%s)", len(rs), q, idList(rs))})
		}
	}
}

// gaps names the seqs missing between the first record (or what an earlier run verified)
// and the last record or signed head.
func (s *streamAnalysis) gaps() {
	lo, hi := int64(0), s.rep.LastSeq
	switch {
	case s.anchor != nil:
		lo = s.anchor.Verified.Seq + 1
	case len(s.recs) > 0:
		lo = s.recs[0].seq
	default:
		return // nothing of the stream in this capture but heads: nothing to compare with
	}
	headSeq, headTS := int64(0), ""
	for _, h := range s.a.heads {
		if e, ok := h.head[s.name]; ok && e.Seq > headSeq {
			headSeq, headTS = e.Seq, h.ts
		}
	}
	hi = max(hi, headSeq)
	// From the seqs present, never seq by seq: a record or a head may claim any seq.
	present := make([]int64, 0, len(s.any))
	for q := range s.any {
		if q >= lo {
			present = append(present, q)
		}
	}
	slices.Sort(present)
	var ranges [][2]int64
	next := lo
	for _, q := range append(present, hi+1) {
		if q > next {
			ranges = append(ranges, [2]int64{next, q - 1})
			s.rep.Missing += q - next
		}
		next = max(next, q+1)
	}
	for i, g := range ranges {
		if i == maxGapFindings {
			s.a.add(Finding{Kind: KindGap, Stream: s.name, Seq: g[0], Detail: fmt.Sprintf("and %d more gaps, %d records missing in all", len(ranges)-i, s.rep.Missing)})
			break
		}
		what := fmt.Sprintf("seq %d", g[0])
		if g[1] > g[0] {
			what = fmt.Sprintf("seq %d-%d (%d records)", g[0], g[1], g[1]-g[0]+1)
		}
		vouch := ""
		if g[1] <= headSeq {
			vouch = fmt.Sprintf("; the unit's signed head (ts %s, seq %d) says they were stored", headTS, headSeq)
		}
		s.a.add(Finding{Kind: KindGap, Stream: s.name, Seq: g[0], Detail: what +
			" missing: never arrived: deleted before delivery, lost (a queue_loss notice says so), or still on the way when the capture ended" + vouch})
	}
}

// verifiedRun finds how far the stream verifies without a break from its start.
func (s *streamAnalysis) verifiedRun() {
	cur, curHash := int64(-1), [HashSize]byte{}
	if s.anchor != nil {
		cur = s.anchor.Verified.Seq
		if b, err := hex.DecodeString(s.anchor.Verified.Hash); err == nil && len(b) == HashSize {
			curHash = [HashSize]byte(b)
		}
		s.rep.StartsFrom = "state"
	}
	for _, r := range s.goodSorted() {
		if r.seq <= cur {
			continue
		}
		if r.seq != cur+1 && cur >= 0 || len(s.good[r.seq]) != 1 || s.edited[r.seq] {
			break
		}
		switch {
		case cur >= 0 && r.prev == curHash:
		case cur < 0 && s.a.genesis[r.prev]: // a trusted genesis
			s.rep.StartsFrom = "genesis"
			s.rep.first = &StreamHead{Seq: r.seq, Hash: hexHash(r.hash)}
		case cur < 0 && r.seq > 1:
			s.rep.StartsFrom = "capture"
		default:
			cur = max(cur, 0)
			s.setVerified(cur, curHash)
			return
		}
		cur, curHash = r.seq, r.hash
	}
	s.setVerified(max(cur, 0), curHash)
}

func (s *streamAnalysis) setVerified(seq int64, h [HashSize]byte) {
	s.rep.VerifiedSeq = seq
	if seq > 0 {
		s.rep.VerifiedHash = hexHash(h)
	}
}

// heads compares the valid signed heads with the records: a head must name the record
// delivered at its seq; the newest one within the verified run is the stream's head.
func (s *streamAnalysis) heads() {
	for _, h := range s.a.heads {
		e, ok := h.head[s.name]
		if !ok {
			continue
		}
		if rs := s.good[e.Seq]; len(rs) > 0 && !slices.ContainsFunc(rs, func(r *rec) bool { return hexHash(r.hash) == e.Hash }) {
			s.a.add(Finding{Kind: KindHeadMismatch, Stream: s.name, Seq: e.Seq, ID: rs[0].id, Detail: fmt.Sprintf(
				"the unit signed (%s, ts %s) seq %d as hash %s…, but the record delivered at seq %d has hash %s: the record was replaced after the head was signed",
				h.source, h.ts, e.Seq, e.Hash[:12], e.Seq, shortHash(rs[0].hash))})
			continue
		}
		if e.Seq > s.rep.VerifiedSeq || (s.rep.Head != nil && e.Seq <= s.rep.Head.Seq) {
			continue
		}
		rs := s.good[e.Seq]
		onRun := len(rs) == 1 && hexHash(rs[0].hash) == e.Hash ||
			s.anchor != nil && e.Seq == s.anchor.Verified.Seq && e.Hash == s.anchor.Verified.Hash
		if onRun {
			he := e
			s.rep.Head, s.rep.HeadTS = &he, h.ts
		}
	}
}
