package agent

import (
	"context"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/qrscan"
	"github.com/sentinel-edge/sentinel/verify"
)

// Source yields credentials until its context ends: a QR scanner, an ID-card reader, a face
// camera. emit gets the credential and when it was read.
type Source interface {
	Run(ctx context.Context, emit func(verify.Credential, time.Time)) error
	String() string
}

// QRScanner is what the agent needs of a QR scanner driver; qrscan.Serial is one.
type QRScanner interface {
	Run(ctx context.Context, emit func(qrscan.Scan)) error
	String() string
}

// QRSource adapts a QR scanner to a Source.
type QRSource struct{ Scanner QRScanner }

func (q QRSource) String() string { return q.Scanner.String() }

// Run emits each scan as a QR credential.
func (q QRSource) Run(ctx context.Context, emit func(verify.Credential, time.Time)) error {
	return q.Scanner.Run(ctx, func(s qrscan.Scan) {
		emit(verify.Credential{Kind: verify.KindQR, QRToken: s.Token}, s.At)
	})
}
