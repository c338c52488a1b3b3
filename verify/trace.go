package verify

import (
	"context"
	"net/http"
	"time"
)

// Exchange is one request to the platform and its answer, as a commissioning command shows
// it (`sentinel try`). It holds personal data, the signature and the answer: the caller masks
// what it prints. The secret is never in it.
type Exchange struct {
	Method string
	URL    string // with the query
	Header http.Header
	Body   []byte
	// Signed is the string that was signed, with the secret replaced by ****; Signature is
	// the signature as computed (and put). Both empty when the request was not signed.
	Signed    string
	Signature string
	// Corrupted says the signature was deliberately spoiled (WithWrongSignature).
	Corrupted bool

	Status     int // 0 when no answer came
	RespHeader http.Header
	Answer     []byte
	Latency    time.Duration
	Err        error // why no answer came, or why it was refused
}

type traceKey struct{}

type wrongSigKey struct{}

// WithTrace returns a context whose platform calls each report their Exchange to fn, once
// the answer (or the failure) is known. fn runs on the calling goroutine.
func WithTrace(ctx context.Context, fn func(Exchange)) context.Context {
	return context.WithValue(ctx, traceKey{}, fn)
}

// WithWrongSignature returns a context whose signed requests carry a deliberately wrong
// signature (well formed, one character changed), for a docking verification that the
// platform refuses it. Nothing else uses it.
func WithWrongSignature(ctx context.Context) context.Context {
	return context.WithValue(ctx, wrongSigKey{}, true)
}

func traceOf(ctx context.Context) func(Exchange) {
	fn, _ := ctx.Value(traceKey{}).(func(Exchange))
	return fn
}

func wrongSignature(ctx context.Context) bool {
	v, _ := ctx.Value(wrongSigKey{}).(bool)
	return v
}
