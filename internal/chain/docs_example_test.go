package chain

import (
	"encoding/hex"
	"testing"
)

// The second record and the signed head of the worked example in docs/records.md (checked
// independently in Python: the hash of the received bytes without the hash member, the hash
// of the re-canonicalised record, and the signature, with the cryptography package).
func TestDocsRecordsExample(t *testing.T) {
	u := &Unit{Venue: "350582-0001", Device: "gate-01", Alg: SHA256, Key: testKey()}
	_, h1, _ := u.Link("passage", nil, []byte(examplePassage))
	p2 := `{"id":"5f1c2a7e-3b4d-4e8f-a1c2-9d8e7f6a5b4c","seq":2,"ts":"2026-11-25T08:00:04.560Z","device":"gate-01","venue":"350582-0001",` +
		`"credential":"idcard","subject":{"id":"3505**********0017","name":"李*"},"verdict":"deny","reason":"health_code_red","mode":"online",` +
		`"gate":"not_opened","policy":"sha256:f6849c7b9a81e61a","health_code":"red","platform_request_id":"p-7f3b","decision_ms":4,"clock":"synced"}`
	c2, h2, err := u.Link("passage", h1, []byte(p2))
	if err != nil {
		t.Fatal(err)
	}
	const want2 = `{"clock":"synced","credential":"idcard","decision_ms":4,"device":"gate-01","gate":"not_opened","health_code":"red","id":"5f1c2a7e-3b4d-4e8f-a1c2-9d8e7f6a5b4c","mode":"online","platform_request_id":"p-7f3b","policy":"sha256:f6849c7b9a81e61a","prev":"9abb04bc1cbc7bcacc12560113d895bda69b39298648d0585fa8cd0f929b9048","reason":"health_code_red","seq":2,"subject":{"id":"3505**********0017","name":"李*"},"ts":"2026-11-25T08:00:04.560Z","venue":"350582-0001","verdict":"deny","hash":"7570f591c14066b36a5fd3fdb41c2da73953ccf903e918ff08540fe401f8c293"}`
	if string(c2) != want2 || hex.EncodeToString(h2) != "7570f591c14066b36a5fd3fdb41c2da73953ccf903e918ff08540fe401f8c293" {
		t.Fatalf("record 2:\n%s\n%x", c2, h2)
	}
	h := Head{"passage": NewStreamHead(2, h2)}
	st, _ := HeadStatement("350582-0001", "gate-01", "2026-11-25T08:00:05.000Z", h)
	sig, _ := u.SignHead("2026-11-25T08:00:05.000Z", h)
	if string(st) != `{"device":"gate-01","head":{"passage":{"hash":"7570f591c14066b36a5fd3fdb41c2da73953ccf903e918ff08540fe401f8c293","seq":2}},"ts":"2026-11-25T08:00:05.000Z","type":"sentinel-head-v1","venue":"350582-0001"}` ||
		sig != "0WAabaXoJhm9nIVcrSMiu7m8cUeuaIgFb6vKoiWj6mexZk1611TYVTdRRwTXA3N7F7ETfJHuIXxMRezndHfNAA==" {
		t.Fatalf("head:\n%s\n%s", st, sig)
	}
}
