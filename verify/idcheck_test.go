package verify

import (
	"strings"
	"testing"
	"time"
)

var idNow = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

// checkChar computes the GB 11643 check character independently of CheckIDNumber: the
// weights are 2^(17-i) mod 11 and the character is (12 - sum mod 11) mod 11, 10 written X.
func checkChar(first17 string) byte {
	sum, w := 0, 1
	ws := make([]int, 17)
	for i := 16; i >= 0; i-- {
		w = w * 2 % 11
		ws[i] = w
	}
	for i := 0; i < 17; i++ {
		sum += int(first17[i]-'0') * ws[i]
	}
	c := (12 - sum%11) % 11
	if c == 10 {
		return 'X'
	}
	return byte('0' + c)
}

func TestCheckIDNumber(t *testing.T) {
	valid := "11010519491231002X" // GB 11643's own example
	tests := []struct {
		name, id string
		ok       bool
	}{
		{"standard example", valid, true},
		{"lower-case x", "11010519491231002x", true},
		{"another", "350582199001011237"[:17] + string(checkChar("35058219900101123")), true},
		{"wrong check digit", "110105194912310021", false},
		{"17 characters", valid[:17], false},
		{"19 characters", valid + "1", false},
		{"letter inside", "1101051949A231002X", false},
		{"X not last", "X10105194912310021", false},
		{"area starts with 0", "010105194912310020"[:17] + string(checkChar("01010519491231002")), false},
		{"month 13", "110105194913310020"[:17] + string(checkChar("11010519491331002")), false},
		{"30 February", "110105194902300020"[:17] + string(checkChar("11010519490230002")), false},
		{"born 1899", "110105189912310020"[:17] + string(checkChar("11010518991231002")), false},
		{"born in the future", "110105202712310020"[:17] + string(checkChar("11010520271231002")), false},
		{"empty", "", false},
		{"15-digit old number", "110105491231002", false},
		{"full-width digits", "１１０１０５１９４９１２３１００２Ｘ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckIDNumber(tt.id, idNow)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckIDNumber(case %q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
			if err != nil && len(tt.id) >= 8 && strings.Contains(err.Error(), tt.id[4:len(tt.id)-2]) {
				t.Errorf("the error quotes the digits")
			}
		})
	}
}

// FuzzCheckIDNumber: the validator never panics, accepts only 18-character numbers whose
// check character matches the independent computation, and never quotes its input.
func FuzzCheckIDNumber(f *testing.F) {
	for _, s := range []string{"11010519491231002X", "110105194912310021", "", "X", "1234567890123456789", "11010519490230002X", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := CheckIDNumber(id, idNow)
		if err == nil {
			if len(id) != 18 {
				t.Fatalf("accepted %d bytes", len(id))
			}
			want := checkChar(id[:17])
			if got := NormalizeIDNumber(id)[17]; got != want {
				t.Fatalf("accepted check character %q, want %q", got, want)
			}
			if _, perr := time.Parse("20060102", id[6:14]); perr != nil {
				t.Fatalf("accepted a birth date that does not parse")
			}
			return
		}
		if len(id) >= 6 && strings.Contains(err.Error(), id) {
			t.Fatalf("the error quotes the input")
		}
	})
}
