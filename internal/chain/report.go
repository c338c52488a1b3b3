package chain

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Kind names a finding. The names are a contract (docs/records.md): added, never renamed.
type Kind string

// What the verifier finds. Every kind fails the verification.
const (
	KindHashMismatch  Kind = "hash_mismatch" // a record's hash is not the hash of its content: edited
	KindGap           Kind = "gap"           // seqs missing: deleted before delivery, lost, or still on their way
	KindReusedSeq     Kind = "reused_seq"    // two different records with one seq, not explained by a fork or restart
	KindReplayed      Kind = "replayed"      // a record's id again with other content (another seq)
	KindBrokenLink    Kind = "broken_link"   // prev is not the hash of the record before: that record was replaced, or records renumbered
	KindFork          Kind = "fork"          // two records chained to one previous record
	KindRestarted     Kind = "restarted"     // the stream started again from its genesis: a fresh database, a reinstall, a restored backup
	KindBadGenesis    Kind = "bad_genesis"   // a chain's first record does not start from the unit's genesis
	KindUnchained     Kind = "unchained"     // records without prev and hash
	KindMalformed     Kind = "malformed"     // a message that cannot be read as a record or a status
	KindMisplaced     Kind = "misplaced"     // a record or status naming another unit than its topic
	KindHeadBadSig    Kind = "head_bad_signature"
	KindHeadBackwards Kind = "head_backwards" // a signed head behind an earlier one (or the same seq with another hash)
	KindHeadMismatch  Kind = "head_mismatch"  // a signed head names a hash the record at its seq does not have
	KindHeadUnsigned  Kind = "head_unsigned"  // a head without a signature
	KindNoHead        Kind = "no_head"        // no valid signed head: the last records cannot be proven complete
	KindNoKey         Kind = "no_key"         // no public key for the unit: genesis and heads unchecked
	KindKeyChanged    Kind = "key_changed"    // a status names another key than the unit's
)

// Finding is one thing that did not verify.
type Finding struct {
	Kind   Kind   `json:"kind"`
	Stream string `json:"stream,omitempty"`
	Seq    int64  `json:"seq,omitempty"`
	ID     string `json:"id,omitempty"`
	Detail string `json:"detail"`
}

// Report is the outcome of a verification.
type Report struct {
	Messages int          `json:"messages"`
	Records  int          `json:"records"` // distinct records
	Ignored  int          `json:"ignored"` // messages on other topics (commands, replies)
	Cleared  int          `json:"cleared"` // empty messages (cleared retained statuses)
	TOFU     bool         `json:"trust_on_first_use"`
	Units    []UnitReport `json:"units"`
	OK       bool         `json:"ok"`
}

// UnitReport is one unit's part of a Report.
type UnitReport struct {
	Venue     string         `json:"venue"`
	Device    string         `json:"device"`
	Key       string         `json:"key,omitempty"` // the key heads were checked against
	KeySource string         `json:"key_source,omitempty"`
	Statuses  int            `json:"statuses"`
	Heads     int            `json:"heads"`       // signed heads seen (statuses and queue_loss notices)
	HeadsOK   int            `json:"heads_valid"` // of which the signature verified
	Streams   []StreamReport `json:"streams"`
	Findings  []Finding      `json:"findings"`
}

// StreamReport is one stream of one unit.
type StreamReport struct {
	Stream     string `json:"stream"`
	Messages   int    `json:"messages"`
	Records    int    `json:"records"`    // distinct records
	Duplicates int    `json:"duplicates"` // at-least-once copies, fine
	Reencoded  int    `json:"reencoded"`  // records not byte for byte as the unit publishes them (fine)
	FirstSeq   int64  `json:"first_seq"`
	LastSeq    int64  `json:"last_seq"`
	Missing    int64  `json:"missing"` // seqs in the gaps
	// VerifiedSeq, VerifiedHash: the stream's records verify, hash and link, from its start
	// (its genesis, the state of an earlier run, or the first record captured) to this one.
	VerifiedSeq  int64  `json:"verified_seq"`
	VerifiedHash string `json:"verified_hash,omitempty"`
	// Head: the last signed head (newest by seq) that verified and matches the records.
	Head   *StreamHead `json:"head,omitempty"`
	HeadTS string      `json:"head_ts,omitempty"`
	// StartsFrom says how the verified run begins: "genesis", "state", or "capture" (the
	// capture began after the stream's first records).
	StartsFrom string `json:"starts_from"`

	first *StreamHead // the record chained to the genesis, when the run starts there
}

// Problems counts the findings.
func (r *Report) Problems() int {
	n := 0
	for _, u := range r.Units {
		n += len(u.Findings)
	}
	return n
}

// WriteText writes the report for people: one block per unit, a table of its streams, each
// finding on its own line, and the verdict last.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	streams := 0
	for _, u := range r.Units {
		streams += len(u.Streams)
	}
	fmt.Fprintf(&b, "%d messages: %d records on %d streams of %d units; %d on other topics, %d empty\n",
		r.Messages, r.Records, streams, len(r.Units), r.Ignored, r.Cleared)
	if r.TOFU {
		b.WriteString("keys: TRUST ON FIRST USE: each unit's key was taken from its first status in this capture, so a unit\n" +
			"  re-keyed before the capture began cannot be told apart; give --keys DIR to check against the keys from provisioning\n")
	}
	for _, u := range r.Units {
		writeUnit(&b, &u)
	}
	if r.OK {
		b.WriteString("result: OK: every record and head verifies\n")
	} else {
		kinds := map[Kind]int{}
		bad := 0
		for _, u := range r.Units {
			if len(u.Findings) > 0 {
				bad++
			}
			for _, f := range u.Findings {
				kinds[f.Kind]++
			}
		}
		names := make([]string, 0, len(kinds))
		for k, n := range kinds {
			names = append(names, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(names)
		if len(r.Units) == 0 {
			b.WriteString("result: FAILED: no records and no statuses: nothing to verify (wrong --prefix or filter?)\n")
		} else {
			fmt.Fprintf(&b, "result: FAILED: %d problem(s) in %d of %d unit(s): %s\n", r.Problems(), bad, len(r.Units), strings.Join(names, ", "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeUnit(b *strings.Builder, u *UnitReport) {
	fmt.Fprintf(b, "\nunit %s/%s", u.Venue, u.Device)
	if u.Key != "" {
		fmt.Fprintf(b, "  key %s (from %s)", u.Key, u.KeySource)
	}
	fmt.Fprintf(b, "  statuses %d, signed heads %d (%d valid)\n", u.Statuses, u.Heads, u.HeadsOK)
	if len(u.Streams) > 0 {
		fmt.Fprintf(b, "  %-10s %9s %6s %-17s %8s %-22s %s\n", "stream", "records", "dups", "seq", "missing", "verified to", "signed head")
	}
	for _, s := range u.Streams {
		seq := fmt.Sprintf("%d-%d", s.FirstSeq, s.LastSeq)
		ver := fmt.Sprintf("%d", s.VerifiedSeq)
		if s.VerifiedSeq > 0 && s.StartsFrom != "genesis" {
			ver += " (from " + s.StartsFrom + ")"
		}
		head := "-"
		if s.Head != nil {
			head = fmt.Sprintf("%d at %s", s.Head.Seq, s.HeadTS)
		}
		fmt.Fprintf(b, "  %-10s %9d %6d %-17s %8d %-22s %s\n", s.Stream, s.Records, s.Duplicates, seq, s.Missing, ver, head)
	}
	for _, f := range u.Findings {
		b.WriteString("  FAIL ")
		b.WriteString(string(f.Kind))
		if f.Stream != "" {
			b.WriteString(" " + f.Stream)
		}
		if f.Seq > 0 {
			fmt.Fprintf(b, " seq %d", f.Seq)
		}
		if f.ID != "" {
			b.WriteString(" id " + f.ID)
		}
		b.WriteString(": " + f.Detail + "\n")
	}
	if len(u.Findings) == 0 {
		b.WriteString("  ok\n")
	}
}
