package scale

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/sentinel-edge/sentinel/internal/chain"
)

// verifyChain runs `sentinel verify-records` on everything the platform's subscriber received
// from unit u (written as `topic payload` lines, as mosquitto_sub -F '%t %p' does), with the
// unit's public key (its chain.key, created beside the queue at its first start): every
// record's chain, every signed head. It waits (up to within) for a status whose head names
// each stream's last stored seq, and returns the summary for the soak's line.
func verifyChain(c *checks, u *unit, sub *capture, last map[string]int64, within time.Duration) string {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for !anyStatusCovers(sub.messages(), u.id, last) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	dir := filepath.Join(u.dir, "verify")
	keys := filepath.Join(dir, "keys")
	priv, err := chain.LoadKey(filepath.Join(u.dir, "chain.key"))
	if err == nil {
		err = os.MkdirAll(filepath.Join(keys, venue), 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(keys, venue, u.id+".pub"), []byte(chain.EncodePublicKey(priv.Public().(ed25519.PublicKey))+"\n"), 0o644)
	}
	var b bytes.Buffer
	for _, m := range sub.messages() {
		if strings.Split(m.topic, "/")[3] == u.id {
			fmt.Fprintf(&b, "%s %s\n", m.topic, m.payload)
		}
	}
	capture := filepath.Join(dir, "capture.txt")
	if err == nil {
		err = os.WriteFile(capture, b.Bytes(), 0o644)
	}
	if err != nil {
		c.check(u.id+": verify-records", false, "%v", err)
		return "chain=error"
	}
	out, err := exec.Command(filepath.Join(u.w.bins, "sentinel"), "verify-records", "--in", capture, "--keys", keys).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		c.check(u.id+": verify-records", false, "%v", err)
		return "chain=error"
	}
	c.check(u.id+": verify-records (every record chained, every head signed, nothing edited, missing or replayed)", err == nil,
		"exit %v:\n%s", err, out)
	result := "FAILED"
	if m := regexp.MustCompile(`(?m)^result: (\S+)`).FindSubmatch(out); m != nil {
		result = strings.TrimSuffix(string(m[1]), ":")
	}
	return fmt.Sprintf("chain=%s (verify-records, %d messages)", result, strings.Count(b.String(), "\n"))
}

// anyStatusCovers reports whether a status of device carries a signed head naming each
// stream at its seq in last.
func anyStatusCovers(msgs []msg, device string, last map[string]int64) bool {
	for _, m := range msgs {
		if !strings.HasSuffix(m.topic, "/"+device+"/status") {
			continue
		}
		var s struct {
			Head    chain.Head `json:"head"`
			HeadSig string     `json:"head_sig"`
		}
		if json.Unmarshal(m.payload, &s) != nil || s.HeadSig == "" {
			continue
		}
		ok := true
		for stream, seq := range last {
			ok = ok && s.Head[stream].Seq >= seq
		}
		if ok {
			return true
		}
	}
	return false
}
