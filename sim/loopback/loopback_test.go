package loopback

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		wantErr error // nil, ErrNotLoopback, or errAny
	}{
		{name: "ipv4 loopback", addr: "127.0.0.1:8080"},
		{name: "ipv4 loopback port 0", addr: "127.0.0.1:0"},
		{name: "other 127/8", addr: "127.1.2.3:80"},
		{name: "ipv6 loopback", addr: "[::1]:80"},
		{name: "localhost", addr: "localhost:1883"},
		{name: "empty host", addr: ":8080", wantErr: ErrNotLoopback},
		{name: "any v4", addr: "0.0.0.0:8080", wantErr: ErrNotLoopback},
		{name: "any v6", addr: "[::]:8080", wantErr: ErrNotLoopback},
		{name: "lan", addr: "192.168.1.10:8080", wantErr: ErrNotLoopback},
		{name: "name", addr: "example.com:80", wantErr: ErrNotLoopback},
		{name: "no port", addr: "127.0.0.1", wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.addr)
			switch {
			case tt.wantErr == errAny:
				if err == nil {
					t.Fatal("want an error")
				}
			case !errors.Is(err, tt.wantErr):
				t.Fatalf("Check(%q) = %v, want %v", tt.addr, err, tt.wantErr)
			}
		})
	}
}

var errAny = errors.New("any error")
