package chain

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// maxGapFindings bounds the gap findings of one stream; the rest are summed up in one.
const maxGapFindings = 20

// Report analyses everything added so far. It may be called more than once.
func (v *Verifier) Report() *Report {
	rep := &Report{Messages: v.n, Ignored: v.ignored, Cleared: v.cleared}
	names := make([]string, 0, len(v.units))
	for k := range v.units {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		ur := v.analyseUnit(v.units[k])
		for _, s := range ur.Streams {
			rep.Records += s.Records
		}
		rep.TOFU = rep.TOFU || ur.KeySource == KeyFromStatus
		rep.Units = append(rep.Units, ur)
	}
	rep.OK = len(rep.Units) > 0 && rep.Problems() == 0
	return rep
}

// unitAnalysis is the working state of one unit's analysis.
type unitAnalysis struct {
	u       *unitState
	state   *StateUnit
	genesis map[[HashSize]byte]bool // the unit's genesis values (every stream, key, alg): trusted or not
	heads   []headMsg               // those whose signature verified
	out     []Finding
}

func (a *unitAnalysis) add(f Finding) { a.out = append(a.out, f) }

func (v *Verifier) analyseUnit(u *unitState) UnitReport {
	ur := UnitReport{Venue: u.venue, Device: u.device, Statuses: u.statuses, Heads: len(u.heads)}
	a := &unitAnalysis{u: u, out: slices.Clone(u.findings)}
	a.state = v.opts.State.unit(u.venue + "/" + u.device)
	streams := map[string]bool{}
	for s := range u.streams {
		streams[s] = true
	}
	for _, h := range u.heads {
		for s := range h.head {
			streams[s] = true
		}
	}
	names := make([]string, 0, len(streams))
	for s := range streams {
		names = append(names, s)
	}
	sort.Strings(names)

	if len(u.keys) > 0 {
		ur.Key, ur.KeySource = EncodePublicKey(u.keys[0].pub), u.keys[0].source
	} else if len(u.streams) > 0 || len(u.heads) > 0 {
		a.add(Finding{Kind: KindNoKey, Detail: "no public key for this unit: its genesis and its heads cannot be checked; give --keys DIR, or capture its retained status"})
	}
	a.genesis = map[[HashSize]byte]bool{}
	for _, k := range a.allKeys() {
		for _, s := range names {
			for _, alg := range []Alg{SHA256, SM3} {
				a.genesis[[HashSize]byte(Genesis(alg, u.venue, u.device, s, k.pub))] = k.trusted
			}
		}
	}
	a.checkHeadSignatures()
	ur.HeadsOK = len(a.heads)
	for _, s := range names {
		ur.Streams = append(ur.Streams, a.stream(s))
	}
	a.checkHeadOrder()
	if len(u.streams) > 0 && len(a.heads) == 0 && len(u.keys) > 0 {
		a.add(Finding{Kind: KindNoHead, Detail: "no valid signed head from this unit: nothing proves its last records complete (capture its status, or wait for a heartbeat)"})
	}
	ur.Findings = dedupe(a.out)
	return ur
}

// allKeys are the keys a chain of the unit may start from: the trusted ones, and those its
// statuses named (a unit re-keyed when it was reinstalled starts a new chain with its new
// key, which the verifier must recognise to name it restarted) or an earlier run trusted.
func (a *unitAnalysis) allKeys() []genesisKey {
	var out []genesisKey
	add := func(pub ed25519.PublicKey, trusted bool) {
		for _, k := range out {
			if k.pub.Equal(pub) {
				return
			}
		}
		out = append(out, genesisKey{pub, trusted})
	}
	for _, k := range a.u.keys {
		add(k.pub, true)
	}
	for _, s := range a.u.statusKeys {
		if pub, err := ParsePublicKey(s); err == nil {
			add(pub, false)
		}
	}
	if a.state != nil {
		for _, s := range a.state.Keys {
			if pub, err := ParsePublicKey(s); err == nil {
				add(pub, false)
			}
		}
	}
	return out
}

type genesisKey struct {
	pub     ed25519.PublicKey
	trusted bool
}

// isGenesis reports whether h is a genesis of the unit, by any key it is known to have had.
func (a *unitAnalysis) isGenesis(h [HashSize]byte) bool {
	_, ok := a.genesis[h]
	return ok
}

func (a *unitAnalysis) checkHeadSignatures() {
	if len(a.u.keys) == 0 {
		return // no_key says it
	}
	for _, h := range a.u.heads {
		ok := false
		for _, k := range a.u.keys {
			ok = ok || VerifyHead(k.pub, a.u.venue, a.u.device, h.ts, h.head, h.sig)
		}
		if ok {
			a.heads = append(a.heads, h)
			continue
		}
		f := Finding{Kind: KindHeadBadSig, Detail: fmt.Sprintf("the head of a %s (ts %s) is not signed by the unit's key: forged, altered, or signed by another key", h.source, h.ts)}
		if h.source == "queue_loss" {
			f.Stream, f.Seq = "queue", h.noticeSeq
		}
		a.add(f)
	}
}

// checkHeadOrder: the statuses' heads, in the order they arrived (the unit publishes them in
// order on one connection), and the queue_loss notices' heads, in seq order, never go back.
// A will is left out: the broker publishes it long after the unit wrote it.
func (a *unitAnalysis) checkHeadOrder() {
	var statuses, notices []headMsg
	for _, h := range a.heads {
		switch {
		case h.source == "queue_loss":
			notices = append(notices, h)
		case !h.will:
			statuses = append(statuses, h)
		}
	}
	sort.SliceStable(notices, func(i, j int) bool { return notices[i].noticeSeq < notices[j].noticeSeq })
	for _, list := range [][]headMsg{statuses, notices} {
		top := Head{}
		if a.state != nil {
			for s, st := range a.state.Streams {
				if st.Signed != nil {
					top[s] = *st.Signed
				}
			}
		}
		for _, h := range list {
			if behind := behindOf(top, h.head); len(behind) > 0 {
				a.add(Finding{Kind: KindHeadBackwards, Stream: behind[0].stream, Seq: behind[0].now, Detail: fmt.Sprintf(
					"a signed head of a %s (ts %s) is behind a head signed before (%s): the unit's records were rolled back, replaced or rewritten (a fresh database, a restored backup)",
					h.source, h.ts, describeBehind(behind))})
				top = Head{} // judge the heads after it against it: one finding per step back
			}
			for s, e := range h.head {
				if e.Seq >= top[s].Seq {
					top[s] = e
				}
			}
		}
	}
}

type behind struct {
	stream    string
	was, now  int64
	rewritten bool // the same seq with another hash
}

// behindOf lists the streams of top that now is behind: a lower seq, a missing stream, or
// the same seq with another hash.
func behindOf(top, now Head) []behind {
	var out []behind
	for _, s := range top.Streams() {
		was, cur := top[s], now[s]
		if cur.Seq < was.Seq || (cur.Seq == was.Seq && cur.Hash != was.Hash) {
			out = append(out, behind{s, was.Seq, cur.Seq, cur.Seq == was.Seq})
		}
	}
	return out
}

func describeBehind(bs []behind) string {
	parts := make([]string, len(bs))
	for i, b := range bs {
		if b.rewritten {
			parts[i] = fmt.Sprintf("%s seq %d names another record", b.stream, b.now)
		} else {
			parts[i] = fmt.Sprintf("%s %d, was %d", b.stream, b.now, b.was)
		}
	}
	return strings.Join(parts, "; ")
}

func dedupe(fs []Finding) []Finding {
	seen := map[Finding]bool{}
	out := make([]Finding, 0, len(fs))
	for _, f := range fs {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Stream != out[j].Stream {
			return out[i].Stream < out[j].Stream
		}
		return out[i].Seq < out[j].Seq
	})
	return out
}

func hexHash(h [HashSize]byte) string { return hex.EncodeToString(h[:]) }

func shortHash(h [HashSize]byte) string { return hex.EncodeToString(h[:6]) + "…" }

// idList names the records of a list for a finding.
func idList(recs []*rec) string {
	parts := make([]string, len(recs))
	for i, r := range recs {
		parts[i] = fmt.Sprintf("seq %d id %s", r.seq, r.id)
	}
	return strings.Join(parts, ", ")
}
