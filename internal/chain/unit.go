package chain

import (
	"context"
	"fmt"
	"sync/atomic"
)

// OpenUnit returns a unit's chain identity: the hash function named by alg
// (records.chain_hash) and the signing key at keyFile. With create, a missing key file is
// made (mode 0600) and created says so; without, a missing key is an error (a provisioned
// unit's key is the one the platform was given).
func OpenUnit(venue, device, alg, keyFile string, create bool) (u *Unit, created bool, err error) {
	a, err := ParseAlg(alg)
	if err != nil {
		return nil, false, err
	}
	u = &Unit{Venue: venue, Device: device, Alg: a}
	if create {
		u.Key, created, err = LoadOrCreateKey(keyFile)
	} else {
		u.Key, err = LoadKey(keyFile)
	}
	if err != nil {
		return nil, false, err
	}
	return u, created, nil
}

// HeadSource reads where each stream stands; queue.Outbox is one.
type HeadSource interface {
	Heads(ctx context.Context) (Head, error)
}

// SignedHead reads src's head and signs it with ts, the carrying message's own "ts".
func (u *Unit) SignedHead(ctx context.Context, src HeadSource, ts string) (Head, string, error) {
	h, err := src.Heads(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("chain: read the head: %w", err)
	}
	sig, err := u.SignHead(ts, h)
	if err != nil {
		return nil, "", err
	}
	return h, sig, nil
}

// StatusHead returns the hook that puts the signed head into a status: given the status' ts,
// the head of src, its signature and the unit's public key (chain_key). When the head cannot
// be read, the status goes without it (the key still named) and onFail hears of it once per
// run of failures.
func (u *Unit) StatusHead(src HeadSource, onFail func(error)) func(ctx context.Context, ts string) (head Head, sig, key string) {
	key := u.PublicKey()
	var failing atomic.Bool
	return func(ctx context.Context, ts string) (Head, string, string) {
		h, sig, err := u.SignedHead(ctx, src, ts)
		if err != nil {
			if !failing.Swap(true) && onFail != nil {
				onFail(err)
			}
			return nil, "", key
		}
		failing.Store(false)
		return h, sig, key
	}
}
