package chain

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// State is what a verification established, kept between runs (`verify-records --state
// FILE`): each unit's keys, and per stream the first record verified from the genesis, the
// last record verified and the highest signed head. The next run continues from it: records
// must continue the chain from there, heads must not go back, and a stream that starts again
// from its genesis is named restarted even when the earlier records are not in the capture.
type State struct {
	Version int                   `json:"version"`
	Units   map[string]*StateUnit `json:"units"` // by "venue/device"
}

// StateUnit is one unit's part of a State.
type StateUnit struct {
	Keys    []string               `json:"keys"`
	Streams map[string]StateStream `json:"streams"`
}

// StateStream is one stream's part of a State.
type StateStream struct {
	First    *StreamHead `json:"first,omitempty"` // the record chained to the genesis, once seen
	Verified StreamHead  `json:"verified"`
	Signed   *StreamHead `json:"signed,omitempty"`
}

// unit returns the state of unit k ("venue/device"), nil for none (and on a nil State).
func (s *State) unit(k string) *StateUnit {
	if s == nil {
		return nil
	}
	return s.Units[k]
}

// LoadState reads a state file; a missing file is an empty state.
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &State{Version: 1, Units: map[string]*StateUnit{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("chain: state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil || s.Version != 1 {
		return nil, fmt.Errorf("chain: state %s is not a verify-records state file (version 1): %v", path, err)
	}
	if s.Units == nil {
		s.Units = map[string]*StateUnit{}
	}
	return &s, nil
}

// Save writes the state atomically (a temporary file, synced, renamed).
func (s *State) Save(path string) error {
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return fmt.Errorf("chain: state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".verify-state-*")
	if err != nil {
		return fmt.Errorf("chain: state: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("chain: state %s: %w", path, err)
	}
	return nil
}

// NextState returns prev (which may be nil) advanced by what r verified: the keys heads
// were checked against, and per stream the verified run and the highest valid signed head,
// where they go further. Findings do not stop it: what verified, verified.
func (r *Report) NextState(prev *State) *State {
	next := &State{Version: 1, Units: map[string]*StateUnit{}}
	if prev != nil {
		for k, u := range prev.Units {
			cu := &StateUnit{Keys: append([]string(nil), u.Keys...), Streams: map[string]StateStream{}}
			for s, st := range u.Streams {
				cu.Streams[s] = st
			}
			next.Units[k] = cu
		}
	}
	for _, ur := range r.Units {
		k := ur.Venue + "/" + ur.Device
		u := next.Units[k]
		if u == nil {
			u = &StateUnit{Streams: map[string]StateStream{}}
			next.Units[k] = u
		}
		if ur.Key != "" && !slices.Contains(u.Keys, ur.Key) {
			u.Keys = append(u.Keys, ur.Key)
		}
		for _, sr := range ur.Streams {
			st := u.Streams[sr.Stream]
			if st.First == nil && sr.first != nil {
				st.First = sr.first
			}
			if sr.VerifiedSeq > st.Verified.Seq {
				st.Verified = StreamHead{Seq: sr.VerifiedSeq, Hash: sr.VerifiedHash}
			}
			if sr.Head != nil && (st.Signed == nil || sr.Head.Seq > st.Signed.Seq) {
				h := *sr.Head
				st.Signed = &h
			}
			if st.Verified.Seq > 0 || st.Signed != nil {
				u.Streams[sr.Stream] = st
			}
		}
	}
	return next
}
