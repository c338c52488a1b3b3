package population

import (
	"errors"
	"testing"
	"time"
)

func TestCheckChar(t *testing.T) {
	tests := []struct {
		name    string
		first17 string
		want    byte
		wantErr error
	}{
		{name: "X check", first17: "11010519491231002", want: 'X'},
		{name: "digit check", first17: "35058219900101123", want: '1'},
		{name: "another digit", first17: "44030519800101001", want: '3'},
		{name: "too short", first17: "1101051949123100", wantErr: ErrBadID},
		{name: "too long", first17: "110105194912310021", wantErr: ErrBadID},
		{name: "letter", first17: "1101051949123100A", wantErr: ErrBadID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckChar(tt.first17)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("CheckChar = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want bool
	}{
		{name: "GB example with X", id: "11010519491231002X", want: true},
		{name: "lower-case x", id: "11010519491231002x", want: false},
		{name: "wrong check", id: "110105194912310021", want: false},
		{name: "valid digit check", id: "350582199001011231", want: true},
		{name: "spec sample has a wrong check char", id: "350582199001011237", want: false},
		{name: "short", id: "1101051949123100", want: false},
		{name: "empty", id: "", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidID(tt.id); got != tt.want {
				t.Errorf("ValidID(%s) = %v, want %v", Mask(tt.id), got, tt.want)
			}
		})
	}
}

func TestNewID(t *testing.T) {
	birth := time.Date(1949, 12, 31, 0, 0, 0, 0, time.UTC)
	id, err := NewID("110105", birth, 2)
	if err != nil {
		t.Fatal(err)
	}
	if id != "11010519491231002X" {
		t.Errorf("NewID = %s, want the GB 11643 example", Mask(id))
	}
	if _, err := NewID("11010", birth, 2); !errors.Is(err, ErrBadID) {
		t.Errorf("short area: err = %v, want ErrBadID", err)
	}
	if _, err := NewID("110105", birth, 1000); !errors.Is(err, ErrBadID) {
		t.Errorf("seq 1000: err = %v, want ErrBadID", err)
	}
}
