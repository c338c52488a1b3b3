package population

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

const header = "id_number,name,health_code,nat_result,nat_sampled_at,vaccine_doses,qr_token\n"

// Valid made-up rows; the names are not real people.
const (
	rowA = "11010519491231002X,张三,green,negative,2026-11-24T08:00:00Z,3,HC-AAAA\n"
	rowB = "350582199001011231,李四,yellow,,,0,HC-BBBB\n"
	rowC = "440305198001010013,王五,red,positive,2026-11-24T08:00:00+08:00,1,\n"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantLen  int
		wantErr  error
		wantLine int
		wantCol  int
	}{
		{name: "valid", in: header + rowA + rowB + rowC, wantLen: 3},
		{name: "BOM and CRLF", in: "\xef\xbb\xbf" + strings.ReplaceAll(header+rowA, "\n", "\r\n"), wantLen: 1},
		{name: "spaces trimmed", in: header + "11010519491231002X, 张三 , green ,negative, 2026-11-24T08:00:00Z ,3, HC-AAAA\n", wantLen: 1},
		{name: "empty file", in: "", wantErr: ErrBadHeader, wantLine: 1},
		{name: "header only", in: header, wantErr: ErrEmpty, wantLine: 2},
		{name: "wrong header name", in: strings.Replace(header, "qr_token", "token", 1) + rowA, wantErr: ErrBadHeader, wantLine: 1, wantCol: 7},
		{name: "short header", in: "id_number,name\n" + rowA, wantErr: ErrBadHeader, wantLine: 1},
		{name: "bad colour", in: header + rowA + "350582199001011231,李四,blue,,,0,HC-BBBB\n", wantErr: ErrBadColour, wantLine: 3, wantCol: 3},
		{name: "missing colour", in: header + "350582199001011231,李四,,,,0,HC-BBBB\n", wantErr: ErrMissing, wantLine: 2, wantCol: 3},
		{name: "bad nat result", in: header + "350582199001011231,李四,green,maybe,2026-11-24T08:00:00Z,0,HC-BBBB\n", wantErr: ErrBadNATResult, wantLine: 2, wantCol: 4},
		{name: "bad time", in: header + "350582199001011231,李四,green,negative,2026-11-24 08:00,0,HC-BBBB\n", wantErr: ErrBadTime, wantLine: 2, wantCol: 5},
		{name: "result without time", in: header + "350582199001011231,李四,green,negative,,0,HC-BBBB\n", wantErr: ErrMissing, wantLine: 2, wantCol: 5},
		{name: "time without result", in: header + "350582199001011231,李四,green,,2026-11-24T08:00:00Z,0,HC-BBBB\n", wantErr: ErrMissing, wantLine: 2, wantCol: 4},
		{name: "bad number", in: header + "350582199001011231,李四,green,,,two,HC-BBBB\n", wantErr: ErrBadNumber, wantLine: 2, wantCol: 6},
		{name: "negative number", in: header + "350582199001011231,李四,green,,,-1,HC-BBBB\n", wantErr: ErrBadNumber, wantLine: 2, wantCol: 6},
		{name: "empty number", in: header + "350582199001011231,李四,green,,,,HC-BBBB\n", wantErr: ErrBadNumber, wantLine: 2, wantCol: 6},
		{name: "duplicate token", in: header + rowA + strings.Replace(rowB, "HC-BBBB", "HC-AAAA", 1), wantErr: ErrDuplicateToken, wantLine: 3, wantCol: 7},
		{name: "duplicate id", in: header + rowA + strings.Replace(rowB, "350582199001011231", "11010519491231002X", 1), wantErr: ErrDuplicateID, wantLine: 3, wantCol: 1},
		{name: "two without token", in: header + rowC + strings.Replace(rowB, "HC-BBBB", "", 1), wantLen: 2},
		{name: "bad id shape", in: header + "張三,11010519491231002X,green,,,0,HC-X\n", wantErr: ErrBadID, wantLine: 2, wantCol: 1},
		{name: "missing name", in: header + "350582199001011231,,green,,,0,HC-BBBB\n", wantErr: ErrMissing, wantLine: 2, wantCol: 2},
		{name: "too few fields", in: header + rowA + "350582199001011231,李四,green\n", wantErr: ErrBadCSV, wantLine: 3},
		{name: "bare quote", in: header + rowA + "3505821990\"01011231,李四,green,,,0,HC-B\n", wantErr: ErrBadCSV, wantLine: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pop, err := Parse(strings.NewReader(tt.in), "people.csv")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("err %T is not a *ParseError", err)
				}
				if pe.File != "people.csv" || pe.Line != tt.wantLine || (tt.wantCol != 0 && pe.Column != tt.wantCol) {
					t.Errorf("at %s:%d col %d, want people.csv:%d col %d", pe.File, pe.Line, pe.Column, tt.wantLine, tt.wantCol)
				}
				if !strings.HasPrefix(err.Error(), "population: people.csv:") {
					t.Errorf("message does not start with the file name: %v", err)
				}
				assertNoPersonalData(t, err.Error(), tt.in)
				return
			}
			if pop.Len() != tt.wantLen {
				t.Errorf("Len = %d, want %d", pop.Len(), tt.wantLen)
			}
		})
	}
}

// assertNoPersonalData fails when msg contains an ID number, name or token
// taken from the CSV text in (other than the header).
func assertNoPersonalData(t *testing.T, msg, in string) {
	t.Helper()
	lines := strings.Split(in, "\n")
	for i, line := range lines[1:] {
		f := strings.Split(line, ",")
		for _, col := range []int{colID, colName, colQRToken} {
			if col < len(f) {
				if v := strings.TrimSpace(f[col]); len(v) > 0 && strings.Contains(msg, v) {
					t.Errorf("error message contains personal data from line %d column %d", i+2, col+1)
				}
			}
		}
	}
}

func TestParseValues(t *testing.T) {
	pop, err := Parse(strings.NewReader(header+rowA+rowB+rowC), "people.csv")
	if err != nil {
		t.Fatal(err)
	}
	a, ok := pop.ByToken("HC-AAAA")
	if !ok {
		t.Fatal("token of row 1 not found")
	}
	wantTime := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	if a.HealthCode != Green || a.NATResult != Negative || !a.NATSampledAt.Equal(wantTime) || a.VaccineDoses != 3 {
		t.Errorf("row 1 parsed as %+v", a)
	}
	b, ok := pop.ByID("350582199001011231")
	if !ok || b.NATResult != NoNAT || !b.NATSampledAt.IsZero() || b.HealthCode != Yellow {
		t.Errorf("row 2 parsed as %v ok=%v", b, ok)
	}
	c, ok := pop.ByID("440305198001010013")
	if !ok || !c.NATSampledAt.Equal(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("row 3 parsed as %v ok=%v", c, ok)
	}
	if _, ok := pop.ByToken(""); ok {
		t.Error("empty token matched a person")
	}
	if _, ok := pop.ByToken("HC-NOPE"); ok {
		t.Error("unknown token matched a person")
	}
}

func TestGenerate(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	people := Generate(GenerateOptions{Now: now, Seed: 7, Random: -1})
	if len(people) != 6+DefaultRandom {
		t.Fatalf("generated %d people, want %d", len(people), 6+DefaultRandom)
	}
	for i, p := range people {
		if !ValidID(p.IDNumber) {
			t.Errorf("person %d: invalid ID number %s", i, Mask(p.IDNumber))
		}
		if p.Name == "" || p.QRToken == "" {
			t.Errorf("person %d: empty name or token", i)
		}
	}

	var buf bytes.Buffer
	if err := WriteCSV(&buf, people); err != nil {
		t.Fatal(err)
	}
	pop, err := Parse(&buf, "generated.csv")
	if err != nil {
		t.Fatalf("generated CSV does not parse: %v", err)
	}

	fixed := []struct {
		token string
		code  HealthCode
		nat   NATResult
		age   time.Duration // 0 when no test
		doses int           // -1 for any
	}{
		{TokenGreenFresh, Green, Negative, FreshAge, 3},
		{TokenGreenOld, Green, Negative, OldAge, -1},
		{TokenGreenNoNAT, Green, NoNAT, 0, -1},
		{TokenYellow, Yellow, Negative, FreshAge, -1},
		{TokenRed, Red, Negative, FreshAge, -1},
		{TokenGreenPos, Green, Positive, FreshAge, -1},
	}
	for _, f := range fixed {
		t.Run(f.token, func(t *testing.T) {
			p, ok := pop.ByToken(f.token)
			if !ok {
				t.Fatal("token missing")
			}
			if p.HealthCode != f.code || p.NATResult != f.nat {
				t.Errorf("code %s nat %q, want %s %q", p.HealthCode, p.NATResult, f.code, f.nat)
			}
			if f.age == 0 && !p.NATSampledAt.IsZero() {
				t.Error("sampled_at set without a test")
			}
			if f.age != 0 && !p.NATSampledAt.Equal(now.Add(-f.age)) {
				t.Errorf("sampled %v before now, want %v", now.Sub(p.NATSampledAt), f.age)
			}
			if f.doses >= 0 && p.VaccineDoses != f.doses {
				t.Errorf("doses %d, want %d", p.VaccineDoses, f.doses)
			}
		})
	}
	if _, ok := pop.ByToken(TokenUnknown); ok {
		t.Error("the unknown token is in the population")
	}

	again := Generate(GenerateOptions{Now: now, Seed: 7, Random: -1})
	for i := range people {
		if people[i] != again[i] {
			t.Fatalf("same seed, different person at %d", i)
		}
	}
}

func TestTokenList(t *testing.T) {
	people := Generate(GenerateOptions{Now: time.Now(), Seed: 1, Random: 20})
	tokens := TokenList(people, 1)
	if len(tokens) != len(people)+1 {
		t.Fatalf("%d tokens, want %d", len(tokens), len(people)+1)
	}
	seen := map[string]bool{}
	for _, tok := range tokens {
		if seen[tok] {
			t.Errorf("token %s listed twice", Mask(tok))
		}
		seen[tok] = true
	}
	if !seen[TokenUnknown] {
		t.Error("unknown token missing")
	}
	for i, p := range people {
		if !seen[p.QRToken] {
			t.Errorf("token of person %d missing", i)
		}
	}
	inOrder := true
	for i, p := range people {
		if tokens[i] != p.QRToken {
			inOrder = false
		}
	}
	if inOrder {
		t.Error("token list is in population order, want mixed")
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"张三", "***"},
		{"欧阳娜娜", "***"},
		{"HC-GREEN-FRESH", "HC***"},
		{"11010519491231002X", "11***"},
		{"司马相如之", "司马***"},
	}
	for _, tt := range tests {
		if got := Mask(tt.in); got != tt.want {
			t.Errorf("Mask of a %d-byte value = %q, want %q", len(tt.in), got, tt.want)
		}
	}
	if got := MaskLen("HC-GREEN-FRESH"); got != "HC***(len 14)" {
		t.Errorf("MaskLen = %q", got)
	}
}

func TestPersonStringMasks(t *testing.T) {
	p := Person{IDNumber: "11010519491231002X", Name: "张三", HealthCode: Green, QRToken: "HC-SECRET1"}
	s := p.String()
	for _, v := range []string{p.IDNumber, p.Name, p.QRToken} {
		if strings.Contains(s, v) {
			t.Errorf("String() leaks a value of length %d", len(v))
		}
	}
}
