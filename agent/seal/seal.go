package seal

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/verify"
)

// Options configure a Sealer.
type Options struct {
	// PlatformKey is the platform's public key (privacy.platform_key_file).
	PlatformKey *privacy.PublicKey
	// HashKey is this unit's look-up hash key (privacy.hash_key_file).
	HashKey []byte
	// KeepFace seals the deciding face into the subject too (camera.keep: sealed).
	KeepFace bool
	Log      *slog.Logger
}

// Sealer seals subjects; see the package comment.
type Sealer struct{ opt Options }

// New returns a sealer; opt.PlatformKey is required.
func New(opt Options) *Sealer {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	return &Sealer{opt: opt}
}

// Fingerprint names the platform key in logs: the first 8 bytes of its SHA-256, in hex.
func (s *Sealer) Fingerprint() string {
	fp := sha256.Sum256(s.opt.PlatformKey[:])
	return hex.EncodeToString(fp[:8])
}

// Seal sets s.Sealed to who (and face, when kept and given) sealed to the platform's key,
// and s.Hash to the look-up hash of the ID number. A subject the platform did not know stays
// empty. A failure leaves the record with masked fields only, and is logged without personal
// data.
func (s *Sealer) Seal(sub *record.Subject, who verify.Identity, face []byte) {
	if who.IDNumber == "" && who.Name == "" {
		return
	}
	in := privacy.Sealed{IDNumber: who.IDNumber, Name: who.Name}
	if s.opt.KeepFace {
		in.Face = face
	}
	sealed, err := privacy.Seal(s.opt.PlatformKey, in)
	if err != nil {
		s.opt.Log.Error("privacy: sealing failed; the record keeps masked fields only", "err", err)
		return
	}
	sub.Sealed = sealed
	if who.IDNumber != "" {
		sub.Hash = privacy.KeyedHash(s.opt.HashKey, who.IDNumber)
	}
}
