package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/queue"
	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
)

// The commissioning commands (try, docking-check) against the reference platform of
// sim/platform, served on loopback, with the unit's config, secret and outbox on disk, as
// a field engineer runs them.

const (
	testAppKey = "unit-app-1"
	testSecret = "s3cr3t-issued-by-the-platform-0001"
)

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) lines() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), "\n")
}

// unit is one unit's files and the platform it talks to.
type unit struct {
	dir, cfg, queuePath string
	people              []population.Person
	log                 *syncLog
	url                 string
}

type unitOpts struct {
	dialect  string
	signed   bool          // the platform checks signatures
	unsigned bool          // the unit does not sign
	secret   string        // the unit's secret; testSecret when empty
	skew     time.Duration // the platform's clock minus the real one
	delay    time.Duration
	timeout  string
	faults   []platform.Fault
	extra    string // more platform keys
}

// newUnit starts a platform and writes a unit config for it. For vendor-sm2 the unit's
// secret file is a fresh SM2 private key, whose public key the platform knows.
func newUnit(t *testing.T, o unitOpts) *unit {
	t.Helper()
	u := &unit{dir: t.TempDir(), log: &syncLog{}}
	u.people = population.Generate(population.GenerateOptions{Seed: 5, Random: 2})
	pop, err := population.New(u.people)
	if err != nil {
		t.Fatal(err)
	}
	secret := o.secret
	if secret == "" {
		secret = testSecret
	}
	key := platform.Key{Secret: []byte(testSecret)}
	if o.dialect == platform.DialectVendorSM2 {
		priv, pub := sm2Keys(t)
		if o.secret == "" {
			secret = priv
		}
		key = platform.Key{SM2Public: pub}
	}
	opts := platform.Options{Dialect: o.dialect, RequestLog: u.log, Delay: o.delay, Faults: platform.NewScript(o.faults...)}
	if o.skew != 0 {
		opts.Now = func() time.Time { return time.Now().Add(o.skew) }
	}
	if o.signed {
		opts.Signing = &platform.Signing{Keys: map[string]platform.Key{testAppKey: key}}
	}
	srv := httptest.NewServer(platform.NewServer(pop, opts))
	t.Cleanup(srv.Close)
	u.url = srv.URL
	u.queuePath = filepath.Join(u.dir, "queue.db")
	mapping := ""
	if o.dialect != "" && o.dialect != platform.DialectReference {
		name := o.dialect
		if name == platform.DialectProvince {
			name = "province-gateway"
		}
		mapping = ", mapping: " + filepath.Join("..", "..", "configs", "mappings", name+".yaml")
	}
	signing := ""
	if !o.unsigned {
		sf := filepath.Join(u.dir, "platform.secret")
		if err := os.WriteFile(sf, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		signing = fmt.Sprintf(", app_key: %s, secret_file: %s", testAppKey, sf)
	}
	timeout := o.timeout
	if timeout == "" {
		timeout = "2s"
	}
	u.cfg = filepath.Join(u.dir, "sentinel.yaml")
	cfg := fmt.Sprintf(`device: {id: gate-07, venue: "350582-0001", style: handheld}
scanners: {qr: {driver: serial, port: /dev/null}}
platform: {url: "%s", timeout: %s%s%s%s}
policy: {health_codes: [green], nat_max_age: 72h}
queue: {path: %s}
uplink: {brokers: ["tcp://127.0.0.1:1"]}
`, u.url, timeout, mapping, signing, o.extra, u.queuePath)
	if err := os.WriteFile(u.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return u
}

// sm2Keys is a fresh SM2 key pair: the private key as PKCS#8 PEM, the public key.
func sm2Keys(t *testing.T) (string, *ecdsa.PublicKey) {
	t.Helper()
	k, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := smx509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), &k.PublicKey
}

func (u *unit) person(t *testing.T, token string) population.Person {
	for _, p := range u.people {
		if p.QRToken == token {
			return p
		}
	}
	t.Fatalf("no person with token %s", population.Mask(token))
	return population.Person{}
}

// runCmd runs a sentinel command line and returns its exit code and output.
func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// auditRows are the commissioning rows in the unit's outbox.
func (u *unit) auditRows(t *testing.T) []record.AuditRow {
	t.Helper()
	ob, err := queue.Open(u.queuePath, queue.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	es, err := ob.Pending(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var rows []record.AuditRow
	for _, e := range es {
		var r record.AuditRow
		if e.Stream != record.StreamAudit || json.Unmarshal(e.Payload, &r) != nil {
			t.Fatalf("outbox entry %s/%d is not an audit row", e.Stream, e.Seq)
		}
		if r.Purpose != record.PurposeCommissioning || r.Device != "gate-07" || e.Topic != "sentinel/v1/350582-0001/gate-07/audit" {
			t.Errorf("audit row %+v on %s", r, e.Topic)
		}
		rows = append(rows, r)
	}
	return rows
}

var idNumberRE = regexp.MustCompile(`\b\d{17}[\dXx]\b`) // bounded: a random hex nonce can hold 18 digits in a row

// noPersonalData fails when out shows a token or an ID number of the population unmasked.
func (u *unit) noPersonalData(t *testing.T, out string) {
	t.Helper()
	if idNumberRE.MatchString(out) {
		t.Errorf("output carries an unmasked ID number:\n%s", out)
	}
	for _, p := range u.people {
		if (p.QRToken != "" && strings.Contains(out, p.QRToken)) || (len([]rune(p.Name)) > 1 && strings.Contains(out, p.Name)) {
			t.Errorf("output carries a token or a name unmasked:\n%s", out)
			return
		}
	}
	if strings.Contains(out, testSecret) {
		t.Error("output carries the secret")
	}
}

func TestTryEveryDialect(t *testing.T) {
	for _, dialect := range []string{platform.DialectReference, platform.DialectProvince, platform.DialectVendorSorted, platform.DialectVendorMD5, platform.DialectVendorSHA256, platform.DialectVendorSM2} {
		t.Run(dialect, func(t *testing.T) {
			u := newUnit(t, unitOpts{dialect: dialect, signed: true})
			code, out, errb := runCmd("try", "--config", u.cfg, "--qr", population.TokenGreenFresh)
			if code != exitOK || !strings.Contains(out, "pass ok (online)") || !strings.Contains(out, "Result: OK") {
				t.Fatalf("exit %d\n%s\n%s", code, out, errb)
			}
			for _, want := range []string{"Request (audited, purpose commissioning", "signed string:", "signature:", "HTTP 200 in", "Mapped fields:", "nat_sampled_at", "tok(14)"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			signsSecret := dialect == platform.DialectVendorSorted || dialect == platform.DialectVendorMD5 || dialect == platform.DialectVendorSHA256
			signedLine := regexp.MustCompile(`signed string: .*`).FindString(out)
			if strings.Contains(out, "NOT RESOLVED") || strings.Contains(signedLine, "****") != signsSecret {
				t.Errorf("resolution or secret masking:\n%s", out)
			}
			u.noPersonalData(t, out+errb)
			rows := u.auditRows(t)
			if len(rows) != 1 || rows[0].Result != "ok" || rows[0].Signature != "accepted" || rows[0].Interface != "qr" || u.log.lines() != 1 {
				t.Errorf("audit %+v, platform saw %d requests", rows, u.log.lines())
			}
		})
	}
}

func TestTryCredentials(t *testing.T) {
	u := newUnit(t, unitOpts{dialect: platform.DialectVendorSorted, signed: true})
	fresh := u.person(t, population.TokenGreenFresh)
	face := filepath.Join(u.dir, "face.jpg")
	if err := os.WriteFile(face, platform.FaceJPEG(fresh.IDNumber), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"id card", []string{"--idcard", fresh.IDNumber, "--name", fresh.Name}, exitOK, "pass ok"},
		{"id card, wrong name", []string{"--idcard", fresh.IDNumber, "--name", "某某"}, exitOK, "deny identity_mismatch"},
		{"face", []string{"--face", face}, exitOK, "pass ok"},
		{"unknown token: the fields do not resolve", []string{"--qr", population.TokenUnknown}, exitFailure, "deny unknown_credential"},
		{"a token with no test on record", []string{"--qr", population.TokenGreenNoNAT}, exitFailure, "deny nat_missing"},
		{"a bad ID number: bad input, no call", []string{"--idcard", "110105194912310021", "--name", "张三"}, exitUsage, "no call was made"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errb := runCmd(append([]string{"try", "--config", u.cfg}, tt.args...)...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, want %d and %q:\n%s\n%s", code, tt.code, tt.want, out, errb)
			}
			u.noPersonalData(t, out+errb)
		})
	}
}

func TestTryRefusals(t *testing.T) {
	t.Run("wrong secret", func(t *testing.T) {
		u := newUnit(t, unitOpts{dialect: platform.DialectVendorMD5, signed: true, secret: "not-the-issued-secret"})
		code, out, _ := runCmd("try", "--config", u.cfg, "--qr", population.TokenGreenFresh)
		if code != exitFailure || !strings.Contains(out, "deny signature_rejected") || !strings.Contains(out, "HTTP 401") {
			t.Errorf("exit %d:\n%s", code, out)
		}
		if rows := u.auditRows(t); len(rows) != 1 || rows[0].Result != "signature_rejected" || rows[0].Signature != "rejected" {
			t.Errorf("audit %+v", rows)
		}
	})
	t.Run("a 5xx is asked once", func(t *testing.T) {
		u := newUnit(t, unitOpts{faults: []platform.Fault{{Kind: platform.Fault5xx}}})
		code, out, _ := runCmd("try", "--config", u.cfg, "--qr", population.TokenGreenFresh)
		if code != exitFailure || !strings.Contains(out, "deny platform_error") || u.log.lines() != 1 || len(u.auditRows(t)) != 1 {
			t.Errorf("exit %d, %d requests:\n%s", code, u.log.lines(), out)
		}
	})
	t.Run("no platform", func(t *testing.T) {
		u := newUnit(t, unitOpts{unsigned: true})
		cfg, _ := os.ReadFile(u.cfg)
		if err := os.WriteFile(u.cfg, []byte(strings.Replace(string(cfg), u.url, "http://127.0.0.1:1", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, _ := runCmd("try", "--config", u.cfg, "--qr", population.TokenGreenFresh)
		if code != exitFailure || !strings.Contains(out, "no answer") || !strings.Contains(out, "platform_unreachable") {
			t.Errorf("exit %d:\n%s", code, out)
		}
		if rows := u.auditRows(t); len(rows) != 1 || rows[0].Result != "unreachable" || rows[0].HTTPStatus != 0 {
			t.Errorf("audit %+v", rows)
		}
	})
	t.Run("no outbox: no call", func(t *testing.T) {
		u := newUnit(t, unitOpts{})
		if err := os.WriteFile(u.queuePath, []byte("not a database, a file someone left here\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errb := runCmd("try", "--config", u.cfg, "--qr", population.TokenGreenFresh)
		if code != exitFailure || !strings.Contains(errb, "queue.path: the outbox cannot be opened") || u.log.lines() != 0 {
			t.Errorf("exit %d, %d requests:\n%s\n%s", code, u.log.lines(), out, errb)
		}
	})
}

func TestTryUsage(t *testing.T) {
	u := newUnit(t, unitOpts{})
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"try", "--help"}, exitOK, "purpose\ncommissioning"},
		{[]string{"try", "--config", u.cfg}, exitUsage, "exactly one of"},
		{[]string{"try", "--config", u.cfg, "--qr", "a", "--idcard", "1"}, exitUsage, "exactly one of"},
		{[]string{"try", "--config", u.cfg, "--qr", "a", "--name", "x"}, exitUsage, "--name goes with --idcard"},
		{[]string{"try", "--config", u.cfg, "--face", filepath.Join(u.dir, "none.jpg")}, exitUsage, "--face"},
		{[]string{"try", "--qr", "a"}, exitUsage, "--config FILE is required"},
	} {
		code, out, errb := runCmd(tt.args...)
		if code != tt.code || !strings.Contains(out+errb, tt.want) {
			t.Errorf("%v: exit %d, want %d and %q:\n%s%s", tt.args, code, tt.code, tt.want, out, errb)
		}
	}
	if u.log.lines() != 0 {
		t.Error("a usage error called the platform")
	}
}
