package chain

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// The examples of RFC 8785: section 3.2.2 (the sample), section 3.2.3 (sorting), Appendix B
// (numbers).
func TestCanonicalRFC8785Examples(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{
			name: "3.2.2 sample",
			in: `{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
			want: `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
		},
		{
			name: "3.2.3 sorting by UTF-16 code units",
			in: `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`,
			want: "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\"," +
				"\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
		},
		{name: "nested objects sorted, arrays kept", in: `{"b":[{"z":1,"a":2},[]],"a":{}}`, want: `{"a":{},"b":[{"a":2,"z":1},[]]}`},
		{name: "scalars", in: ` "x" `, want: `"x"`},
		{name: "escapes kept minimal", in: `"\u2028\u007f\u001f\b\f\t"`, want: "\"\u2028\u007f\\u001f\\b\\f\\t\""},
		{name: "html characters literal", in: `"\u003c\u003e\u0026"`, want: `"<>&"`},
		{name: "integers", in: `[0,-0,1,-1,42,9007199254740992,9999999999999999,1e2,100.0]`, want: `[0,0,1,-1,42,9007199254740992,10000000000000000,100,100]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical(nil, []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestAppendNumberRFC8785AppendixB(t *testing.T) {
	vectors := []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	}
	for _, v := range vectors {
		f := math.Float64frombits(v.bits)
		if got := string(AppendNumber(nil, f)); got != v.want {
			t.Errorf("%#016x (%g): got %s, want %s", v.bits, f, got, v.want)
		}
		// And the same through the parser, from Go's own shortest text.
		in := string(AppendNumber(nil, f))
		if got, err := Canonical(nil, []byte(in)); err != nil || string(got) != v.want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", in, got, err, v.want)
		}
	}
	// The floats records carry.
	for in, want := range map[string]string{"12.5": "12.5", "0.1": "0.1", "3.0": "3", "1.5e3": "1500", "123456.789": "123456.789"} {
		if got, _ := Canonical(nil, []byte(in)); string(got) != want {
			t.Errorf("Canonical(%s) = %s, want %s", in, got, want)
		}
	}
}

// Input that is not I-JSON has no canonical form: each is refused with ErrNotCanonicalizable.
func TestCanonicalRefuses(t *testing.T) {
	for _, in := range []string{
		``, `{`, `{"a":1,}`, `[1,]`, `{"a" 1}`, `{"a":1 "b":2}`, `{"a":1}x`, `{"a":1}{}`,
		`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, // duplicate names, also when escaped
		`"\ud800"`, `"\udc00x"`, `"\ud800\u0041"`, "\"\xff\"", "\"\xc0\xaf\"", // lone surrogates, bad UTF-8
		"\"a\nb\"", `"\x"`, `"\u12"`, `01`, `-`, `1.`, `1e`, `.5`, `+1`, `1e400`, `-1e400`,
		`tru`, `nul`, `True`, `NaN`, `Infinity`,
		strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
		strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1),
	} {
		if got, err := Canonical(nil, []byte(in)); !errors.Is(err, ErrNotCanonicalizable) {
			t.Errorf("Canonical(%.40q) = %s, %v; want ErrNotCanonicalizable", in, got, err)
		}
	}
	// Just within the bound.
	deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if _, err := Canonical(nil, []byte(deep)); err != nil {
		t.Errorf("%d nested arrays: %v", maxDepth, err)
	}
}

// FuzzCanonical compares Canonical with the RFC 8785 implementation of the Go team's JSON v2
// (jsontext.Value.Canonicalize): where both accept the input they must agree byte for byte,
// and Canonical's output is its own fixed point.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{
		`{"id":"0b5d1f3e","seq":42,"latency_ms":12.5,"ok":true,"x":null,"s":{"b":1,"a":[1,2.25e-9,"\u00e9"]}}`,
		`{"\u20ac":1,"\ud83d\ude00":2,"\ufb33":3}`, `[1e21,1e-7,0.000001,-0,5e-324]`, `"\u0000\u001f\"\\/"`,
		`{"a":"<>&\u2028"}`, `123456789012345678901234567890`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := Canonical(nil, in)
		v := jsontext.Value(append([]byte(nil), in...))
		refErr := v.Canonicalize()
		if err == nil && refErr == nil && string(got) != string(v) {
			t.Fatalf("input %q\ngot %s\nref %s", in, got, v)
		}
		if err == nil {
			again, err := Canonical(nil, got)
			if err != nil || string(again) != string(got) {
				t.Fatalf("not a fixed point: %s -> %s, %v", got, again, err)
			}
		}
		if err == nil && refErr != nil && !strings.Contains(refErr.Error(), "precision") {
			// Accepting what the reference refuses would hash text another verifier cannot
			// canonicalise.
			t.Fatalf("input %q accepted (%s), the reference refuses: %v", in, got, refErr)
		}
	})
}
