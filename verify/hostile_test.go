package verify_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/verify"
)

// Findings of an adversarial round against a hostile platform (2026-12-02), each a test that
// failed on main before its fix.

// refAnswer is the reference mapping's sample answer with old replaced by new.
func refAnswer(t *testing.T, old, new string) []byte {
	t.Helper()
	s := verify.ReferenceMapping().Sample
	if !strings.Contains(s, old) {
		t.Fatalf("the reference sample has no %q", old)
	}
	return []byte(strings.Replace(s, old, new, 1))
}

// An answer that names a member twice in one object was read by its last value: red then
// green passed, not_found then ok passed, match false then true passed. It is refused.
func TestHostileDuplicateMembersRefused(t *testing.T) {
	m := verify.ReferenceMapping()
	if _, err := m.ParseAnswer([]byte(m.Sample)); err != nil {
		t.Fatalf("the sample itself: %v", err)
	}
	for name, answer := range map[string][]byte{
		"health code red then green": refAnswer(t, `"health_code": "green"`, `"health_code": "red", "health_code": "green"`),
		"code not_found then ok":     refAnswer(t, `"code": "ok"`, `"code": "not_found", "code": "ok"`),
		"match false then true":      refAnswer(t, `"match": true`, `"match": false, "match": true`),
		"in an unread object":        refAnswer(t, `"code": "ok"`, `"code": "ok", "extra": {"a": 1, "b": {"c": [1, {"d": 2, "d": 3}]}}`),
	} {
		_, err := m.ParseAnswer(answer)
		if !errors.Is(err, verify.ErrBadResponse) || !strings.Contains(err.Error(), "twice") {
			t.Errorf("%s: %v, want a bad response naming the member given twice", name, err)
		}
	}
	// The same name in different objects is not a duplicate.
	ok := refAnswer(t, `"code": "ok"`, `"code": "ok", "x": {"code": 1}, "y": [{"code": 2}, {"code": 3}]`)
	if _, err := m.ParseAnswer(ok); err != nil {
		t.Errorf("a name repeated in different objects: %v", err)
	}
}

// The platform's request id went unbounded and unchecked into every record and audit row: a
// 500,000-byte one, one with an ID number, a name and a newline (a forged log line). Such an
// answer is refused; an ordinary trace id and an 18-digit snowflake id are kept.
func TestHostileRequestIDRefused(t *testing.T) {
	m := verify.ReferenceMapping()
	const rid = `"request_id": "p-3f6c1c7e6a0b4a5e"`
	for name, v := range map[string]string{
		"500,000 bytes":         strings.Repeat("R", 500_000),
		"a newline":             `p-1\nlevel=error msg=forged`,
		"a name":                "p-1-张三",
		"an ID number":          "p-11010519491231002X-1",
		"spaces":                "p 1",
		"an ID number, alone":   "11010519491231002X",
		"129 bytes":             strings.Repeat("a", 129),
		"a control character":   "p-\u00011",
		"an ID number, lower x": "11010519491231002x",
	} {
		res, err := m.ParseAnswer(refAnswer(t, rid, `"request_id": `+quoteJSON(v)))
		if !errors.Is(err, verify.ErrBadResponse) || !strings.Contains(err.Error(), "request id") {
			t.Errorf("%s: %v (request id %d bytes kept), want a bad response naming the request id", name, err, len(res.RequestID))
		}
		if err != nil && (strings.Contains(err.Error(), "11010519491231002") || strings.Contains(err.Error(), "张三")) {
			t.Errorf("%s: the error shows personal data: %v", name, err)
		}
	}
	for _, v := range []string{"p-3f6c1c7e6a0b4a5e", "798765432109876543", "1798765432109876543", strings.Repeat("a", 128), "trace:0af7651916cd43dd8448eb211c80319c"} {
		res, err := m.ParseAnswer(refAnswer(t, rid, `"request_id": "`+v+`"`))
		if err != nil || res.RequestID != v {
			t.Errorf("request id %.40q: %v, kept %.40q; want it kept", v, err, res.RequestID)
		}
	}
}

// quoteJSON is s as a JSON string.
func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// A platform that puts an ID number and a name in its result code had them written into the
// daemon's passage log through the error ("code \"350582199001011237 张三\" in a 200
// answer"). The code is shown only when it cannot hold personal data.
func TestHostileCodeNotShown(t *testing.T) {
	m := verify.ReferenceMapping()
	for _, code := range []string{"350582199001011237 张三", "350582199001011237", "张三", strings.Repeat("E", 33)} {
		_, err := m.ParseAnswer(refAnswer(t, `"code": "ok"`, `"code": `+quoteJSON(code)))
		if !errors.Is(err, verify.ErrBadResponse) {
			t.Fatalf("code %d bytes: %v, want a bad response", len(code), err)
		}
		if strings.Contains(err.Error(), "350582") || strings.Contains(err.Error(), "张") || strings.Contains(err.Error(), "EEEE") {
			t.Errorf("the error shows the code: %v", err)
		}
		if !strings.Contains(err.Error(), "not shown") {
			t.Errorf("the error does not say the code is withheld: %v", err)
		}
	}
	_, err := m.ParseAnswer(refAnswer(t, `"code": "ok"`, `"code": "E1001"`))
	if err == nil || !strings.Contains(err.Error(), `"E1001"`) {
		t.Errorf("an ordinary code is not named: %v", err)
	}
}

// platform.mapping was read whole, whatever it was: a FIFO hung `check` (and `run`) for ever,
// /dev/zero ran out of memory. Like the config, it must be a regular file of at most 1 MiB.
func TestHostileMappingFileRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "m.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("name: big\n"+strings.Repeat("# padding\n", 120_000)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, "/dev/zero", dir, big} {
		done := make(chan error, 1)
		go func() { _, err := verify.LoadMapping(p); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, verify.ErrMapping) || !strings.Contains(err.Error(), p) {
				t.Errorf("%s: %v, want a bad mapping naming the file", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: LoadMapping still reading after 5 s", p)
		}
	}
}

// A value of the wrong type was reported without its key ("line 3: cannot unmarshal !!seq
// into string").
func TestMappingTypeErrorNamesKey(t *testing.T) {
	ref := verify.ReferenceMappingYAML()
	for old, want := range map[string]string{
		"\nname: reference\n":       "line 3: name: is a list, want string",
		"path: /api/v1/verify/qr}":  "endpoints.qr.path: is a mapping, want string",
		"score: {path: data.score}": "response.score.scale: is text, want float64",
	} {
		repl := map[string]string{
			"\nname: reference\n":       "\nname: [1, 2]\n",
			"path: /api/v1/verify/qr}":  "path: {a: 1}}",
			"score: {path: data.score}": "score: {path: data.score, scale: high}",
		}[old]
		if !strings.Contains(string(ref), old) {
			t.Fatalf("the reference mapping has no %q", old)
		}
		_, err := verify.ParseMapping([]byte(strings.Replace(string(ref), old, repl, 1)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", repl, err, want)
		}
	}
}
