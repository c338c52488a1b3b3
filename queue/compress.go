package queue

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"sync"
)

// Payload encodings, stored in outbox.enc. A released encoding never changes: a new
// dictionary is a new encoding number, so rows written by older versions stay readable.
const (
	encRaw     = 0 // the payload as given
	encDeflate = 1 // DEFLATE with dictDeflate1 as preset dictionary
)

// dictDeflate1 is the preset dictionary of encDeflate: the keys and common values of
// Sentinel's JSON records, so that a single small record compresses well (a passage record
// of ~600 bytes to ~290). It must never change.
var dictDeflate1 = []byte(`{"kind":"queue_loss","stream":"event","topic":"sentinel/v1/","first_seq":` +
	`"dropped_oldest":"rejected_full":"failed_writes":"alarm","input":"fire","state":"active","cleared",` +
	`{"id":"","seq":,"ts":"2026-11-25T08:00:00.000Z","device":"","venue":"","credential":"idcard","face",` +
	`"subject":{"id":"**********","name":"*","sealed":"","hash":""},"verdict":"deny","reason":"health_code_red",` +
	`"health_code_yellow","nat_expired","nat_missing","nat_positive","unknown_credential","malformed_scan",` +
	`"platform_unreachable","mode":"offline","gate":"not_opened","no_barrier",` +
	`"verdict":"pass","reason":"ok","mode":"online","gate":"opened","policy":"sha256:","health_code":"green",` +
	`"nat_sampled_at":"Z","platform_request_id":"p-","decision_ms":`)

// minCompress is the smallest payload worth compressing.
const minCompress = 64

var (
	flateWriters = sync.Pool{New: func() any {
		w, err := flate.NewWriterDict(io.Discard, flate.DefaultCompression, dictDeflate1)
		if err != nil {
			panic(err) // only for an invalid level, a programming error
		}
		return w
	}}
	flateReaders = sync.Pool{New: func() any { return flate.NewReaderDict(bytes.NewReader(nil), dictDeflate1) }}
)

// encode returns the stored form of payload and its encoding: compressed when that is
// smaller.
func encode(payload []byte) ([]byte, int) {
	if len(payload) < minCompress {
		return payload, encRaw
	}
	var buf bytes.Buffer
	buf.Grow(len(payload))
	w := flateWriters.Get().(*flate.Writer)
	w.Reset(&buf)
	_, err := w.Write(payload)
	if err == nil {
		err = w.Close()
	}
	flateWriters.Put(w)
	if err != nil || buf.Len() >= len(payload) {
		return payload, encRaw
	}
	return buf.Bytes(), encDeflate
}

// decode returns the payload a stored row holds.
func decode(stored []byte, enc int) ([]byte, error) {
	switch enc {
	case encRaw:
		return stored, nil
	case encDeflate:
		r := flateReaders.Get().(io.ReadCloser)
		defer flateReaders.Put(r)
		if err := r.(flate.Resetter).Reset(bytes.NewReader(stored), dictDeflate1); err != nil {
			return nil, fmt.Errorf("queue: decode payload: %w", err)
		}
		out, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("queue: decode payload: %w: %w", err, ErrCorrupt)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("queue: payload encoding %d is unknown (written by a newer agent?): %w", enc, ErrSchemaTooNew)
	}
}
