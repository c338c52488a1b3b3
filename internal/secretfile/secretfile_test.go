package secretfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/secretfile/secretfiletest"
)

var (
	write  = secretfiletest.File
	within = secretfiletest.Within
)

func TestRefused(t *testing.T) {
	fifo := secretfiletest.FIFO(t)
	big := write(t, "big", strings.Repeat("a", DefaultMaxSize+1), 0o600)
	tests := []struct {
		name, path string
		opt        Options
		want       error
		say        []string
	}{
		{"dev zero", "/dev/zero", Options{}, ErrNotRegular, []string{"/dev/zero", "character device"}},
		{"dev zero public", "/dev/zero", Options{Public: true}, ErrNotRegular, nil},
		{"fifo", fifo, Options{}, ErrNotRegular, []string{"FIFO"}},
		{"directory", t.TempDir(), Options{}, ErrNotRegular, []string{"directory"}},
		{"missing", filepath.Join(t.TempDir(), "nope"), Options{}, ErrRead, []string{"no such file"}},
		{"oversize", big, Options{}, ErrTooLarge, []string{"65537 bytes"}},
		{"oversize by option", write(t, "s", "0123456789", 0o600), Options{MaxSize: 9}, ErrTooLarge, nil},
		{"world readable", write(t, "w", "a-secret", 0o644), Options{Key: "platform.secret_file"}, ErrTooOpen, []string{"mode 0644", "chmod 600 ", "platform.secret_file"}},
		{"group readable", write(t, "g", "a-secret", 0o640), Options{}, ErrTooOpen, []string{"mode 0640", "chmod 600"}},
		{"group writable", write(t, "gw", "a-secret", 0o620), Options{}, ErrTooOpen, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			within(t, 5*time.Second, func() {
				b, err := Read(tt.path, tt.opt)
				if !errors.Is(err, tt.want) || b != nil {
					t.Errorf("Read = %d bytes, %v; want %v", len(b), err, tt.want)
					return
				}
				var fe *Error
				if !errors.As(err, &fe) || fe.Path != tt.path {
					t.Errorf("error %v does not carry the path", err)
				}
				for _, s := range append(tt.say, tt.path) {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				if strings.Contains(err.Error(), "a-secret") {
					t.Errorf("error quotes the content: %v", err)
				}
			})
		})
	}
}

// TestFIFOWithWriter: even with a writer feeding it (reads would succeed), a FIFO is refused.
func TestFIFOWithWriter(t *testing.T) {
	fifo := secretfiletest.FIFO(t)
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	within(t, 5*time.Second, func() {
		if _, err := ReadSecret(fifo, Options{}); !errors.Is(err, ErrNotRegular) {
			t.Errorf("err = %v, want ErrNotRegular", err)
		}
	})
}

func TestMissingIsNotExist(t *testing.T) {
	_, err := Read(filepath.Join(t.TempDir(), "nope"), Options{})
	if !errors.Is(err, ErrRead) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrRead and os.ErrNotExist", err)
	}
}

func TestSymlinkToDevice(t *testing.T) {
	l := filepath.Join(t.TempDir(), "secret")
	if err := os.Symlink("/dev/zero", l); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecret(l, Options{}); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("err = %v, want ErrNotRegular", err)
	}
}

func TestAccepted(t *testing.T) {
	for _, mode := range []os.FileMode{0o600, 0o400} {
		p := write(t, "s", "  s3cret-value \n", mode)
		b, err := ReadSecret(p, Options{})
		if err != nil || string(b) != "s3cret-value" {
			t.Errorf("mode %04o: ReadSecret = %q, %v", mode, b, err)
		}
	}
	pub := write(t, "crt", "-----BEGIN CERTIFICATE-----\n", 0o644)
	if b, err := Read(pub, Options{Public: true}); err != nil || len(b) == 0 {
		t.Errorf("public 0644: %q, %v", b, err)
	}
	exact := write(t, "e", strings.Repeat("k", 100), 0o600)
	if b, err := Read(exact, Options{MaxSize: 100}); err != nil || len(b) != 100 {
		t.Errorf("a file of exactly MaxSize: %d bytes, %v", len(b), err)
	}
}

func TestReadSecretEmpty(t *testing.T) {
	for _, body := range []string{"", " \n\t\n"} {
		p := write(t, "s", body, 0o600)
		if _, err := ReadSecret(p, Options{Key: "platform.secret_file"}); !errors.Is(err, ErrEmpty) || !strings.Contains(err.Error(), "platform.secret_file") {
			t.Errorf("%q: err = %v, want ErrEmpty naming the key", body, err)
		}
	}
}

func TestReadLine(t *testing.T) {
	tests := []struct {
		name, body string
		want       string
		err        error
	}{
		{"lf", "gate-01\nignored\n", "gate-01", nil},
		{"crlf", "gate-01\r\nignored\n", "gate-01", nil},
		{"no line end", "gate-01", "gate-01", nil},
		{"spaces kept", " pa ss \n", " pa ss ", nil},
		{"empty file", "", "", ErrEmpty},
		{"empty first line", "\nsecond\n", "", ErrEmpty},
		{"crlf only", "\r\n", "", ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(t, "u", tt.body, 0o600)
			got, err := ReadLine(p, Options{Key: "uplink.password_file"})
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Errorf("ReadLine = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
	p := write(t, "u", "user\n", 0o644)
	if _, err := ReadLine(p, Options{}); !errors.Is(err, ErrTooOpen) {
		t.Errorf("a 0644 password file: err = %v, want ErrTooOpen", err)
	}
	if u, err := ReadLine(p, Options{Public: true}); err != nil || u != "user" {
		t.Errorf("a 0644 user-name file read as public: %q, %v", u, err)
	}
}
