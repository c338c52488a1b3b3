package qrscan

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitter(t *testing.T) {
	tests := []struct {
		name              string
		chunks            []string
		want              []string
		overlong, garbage int
		pending           bool
	}{
		{"cr", []string{"AB\r"}, []string{"AB"}, 0, 0, false},
		{"lf", []string{"AB\n"}, []string{"AB"}, 0, 0, false},
		{"crlf", []string{"AB\r\nCD\r\n"}, []string{"AB", "CD"}, 0, 0, false},
		{"split across reads", []string{"A", "B", "\r", "\nC", "D\n"}, []string{"AB", "CD"}, 0, 0, false},
		{"partial", []string{"ABC"}, nil, 0, 0, true},
		{"empty lines", []string{"\r\n\r\n\n"}, nil, 0, 0, false},
		{"at max", []string{"12345678\r"}, []string{"12345678"}, 0, 0, false},
		{"over max", []string{"123456789\rOK\r"}, []string{"OK"}, 1, 0, false},
		{"over max over reads", []string{"12345", "67890", "12\r", "OK\n"}, []string{"OK"}, 1, 0, false},
		{"garbage", []string{"A\x00B\rOK\r"}, []string{"OK"}, 0, 1, false},
		{"escape", []string{"\x1b[2J\r"}, nil, 0, 1, false},
		{"utf8 kept", []string{"码\r"}, []string{"码"}, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Splitter{Max: 8}
			var got []string
			for _, c := range tt.chunks {
				got = append(got, s.Feed([]byte(c))...)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("lines %q, want %q", got, tt.want)
			}
			if s.Overlong != tt.overlong || s.Garbage != tt.garbage || s.Pending() != tt.pending {
				t.Errorf("overlong=%d garbage=%d pending=%v, want %d %d %v", s.Overlong, s.Garbage, s.Pending(), tt.overlong, tt.garbage, tt.pending)
			}
		})
	}
}

func FuzzSplitter(f *testing.F) {
	f.Add([]byte("HC-GREEN-FRESH\r\n"), 16)
	f.Add([]byte("\x00\xff\r\r\n\nABCDEFGHIJKLMNOPQRSTUVWXYZ\n"), 8)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		if max < 1 || max > 4096 {
			return
		}
		s := Splitter{Max: max}
		for _, l := range s.Feed(b) {
			if len(l) == 0 || len(l) > max || strings.ContainsAny(l, "\r\n\x00") {
				t.Fatalf("bad line of length %d", len(l))
			}
		}
	})
}
