package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sentinel-edge/sentinel/internal/privacy"
)

func init() {
	commands = append(commands, command{"keygen", "make a platform X25519 key pair for sealing (privacy.platform_key_file)", runKeygen})
}

// runKeygen writes a platform key pair: the public key for the units'
// privacy.platform_key_file and the private key the platform opens sealed subjects with.
// Both files hold base64 of 32 bytes and a newline. Existing files are never overwritten.
func runKeygen(_ context.Context, args []string, e env) error {
	fs := newFlags("keygen", "--public FILE --private FILE",
		"Writes an X25519 key pair, base64 of 32 bytes each: the public key (mode 0644) for the\n"+
			"units' privacy.platform_key_file and the private key (mode 0600) that opens the sealed\n"+
			"subjects of their records. Existing files are left alone.", e)
	pubPath := fs.String("public", "", "`FILE` to write the public key to")
	privPath := fs.String("private", "", "`FILE` to write the private key to")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if *pubPath == "" || *privPath == "" {
		return usagef("--public and --private are required")
	}
	pub, priv, err := privacy.GenerateKeyPair()
	if err != nil {
		return err
	}
	if err := writeNew(*privPath, privacy.EncodeKey(*priv), 0o600); err != nil {
		return err
	}
	if err := writeNew(*pubPath, privacy.EncodeKey(*pub), 0o644); err != nil {
		_ = os.Remove(*privPath)
		return err
	}
	fmt.Fprintf(e.stdout, "public key %s, private key %s\n", *pubPath, *privPath)
	return nil
}

// writeNew creates path with content and mode, refusing to replace an existing file.
func writeNew(path, content string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists; it was left alone (remove it to make a new key)", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
