package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAPIVerifyFlags(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	empty := filepath.Join(dir, "empty")
	badFaults := filepath.Join(dir, "faults")
	_ = os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	_ = os.WriteFile(empty, []byte(" \n"), 0o600)
	_ = os.WriteFile(badFaults, []byte("ok\nslow\n"), 0o600)
	badKeys := filepath.Join(dir, "keys")
	_ = os.WriteFile(badKeys, []byte("# comment\nunit-a "+secret+"\nunit-b\n"), 0o600)
	dupKeys := filepath.Join(dir, "dup")
	_ = os.WriteFile(dupKeys, []byte("unit-a "+secret+"\nunit-a "+secret+"\n"), 0o600)
	noKeys := filepath.Join(dir, "nokeys")
	_ = os.WriteFile(noKeys, []byte("# none\n"), 0o600)
	missingSecret := filepath.Join(dir, "missing")
	_ = os.WriteFile(missingSecret, []byte("unit-a "+filepath.Join(dir, "nope")+"\n"), 0o600)
	badPub := filepath.Join(dir, "badpub")
	_ = os.WriteFile(badPub, []byte("unit-a - "+secret+"\n"), 0o600)
	pop := filepath.Join(dir, "p.csv")
	if code := run(context.Background(), []string{"population", "--out", pop}, env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}); code != 0 {
		t.Fatalf("population exit %d", code)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad dialect", []string{"--dialect", "hubei"}, 2, "--dialect"},
		{"key without secret", []string{"--app-key", "k"}, 2, "go together"},
		{"bad fault", []string{"--fault", "slow"}, 2, "unknown fault"},
		{"both fault flags", []string{"--fault", "hang", "--fault-file", badFaults}, 2, "exclude"},
		{"bad fault file", []string{"--fault-file", badFaults}, 1, "line 2"},
		{"empty secret", []string{"--app-key", "k", "--secret-file", empty}, 1, "empty"},
		{"bad window", []string{"--replay-window", "0s"}, 2, "--replay-window"},
		{"keys file line without a secret", []string{"--keys-file", badKeys}, 1, "line 3: want APP_KEY SECRET_FILE"},
		{"keys file with a key twice", []string{"--keys-file", dupKeys}, 1, "line 2: app key unit-a is listed twice"},
		{"keys file without keys", []string{"--keys-file", noKeys}, 1, "lists no app key"},
		{"keys file naming a missing secret", []string{"--keys-file", missingSecret}, 1, "line 1: secret file"},
		{"keys file naming a bad public key", []string{"--keys-file", badPub}, 1, "not a PEM"},
		{"empty app key", []string{"--app-key", "", "--secret-file", secret}, 2, "must not be empty"},
		{"unknown vendor dialect", []string{"--dialect", "vendor-rsa"}, 2, "vendor-sm2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			args := append([]string{"api", "--population", pop, "--listen", "127.0.0.1:0"}, tt.args...)
			code := run(context.Background(), args, env{stdout: &bytes.Buffer{}, stderr: &stderr})
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.code, tt.want)
			}
			if strings.Contains(stderr.String(), "s3cret") {
				t.Error("stderr quotes the secret")
			}
		})
	}
}
