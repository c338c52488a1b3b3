package privacy

import "testing"

func TestMask(t *testing.T) {
	tests := []struct {
		name, in, want string
		f              func(string) string
	}{
		{"id 18", "350582199001011237", "3505**********1237", MaskID},
		{"id with X", "11010519491231002X", "1101**********002X", MaskID},
		{"id short", "1234", "****", MaskID},
		{"id 15", "350582900101123", "3505*******1123", MaskID},
		{"passport 9", "E12345678", "E1*****78", MaskID},
		{"permit 8", "H1234567", "H1****67", MaskID},
		{"seven", "1234567", "*******", MaskID},
		{"id empty", "", "", MaskID},
		{"name han", "张三丰", "张*", MaskName},
		{"name latin", "Li", "L*", MaskName},
		{"name empty", "", "", MaskName},
		{"token", "HC-GREEN-FRESH", "tok(14)", MaskToken},
		{"token empty", "", "tok(0)", MaskToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
