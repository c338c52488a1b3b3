package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/internal/chain"
	"github.com/sentinel-edge/sentinel/internal/privacy"
)

func init() {
	register("provision", "create this unit's identity and config from a device-style template", cmdProvision)
}

// Where provision looks for templates and writes by default; tests point them elsewhere.
var (
	templateDirs               = []string{"/usr/share/sentinel/templates", "configs"}
	stdin            io.Reader = os.Stdin
	clientCertLife             = 825 * 24 * time.Hour
	defaultOwnerName           = "sentinel"
)

// Files provision writes under --out.
const (
	provAppSecret  = "secrets/app-secret"
	provClientKey  = "secrets/mqtt-client.key"
	provPassword   = "secrets/mqtt-password"
	provUsername   = "mqtt-username"
	provClientCSR  = "tls/client.csr"
	provClientCert = "tls/client.crt"
	provCA         = "tls/ca.crt"
	provPlatformPK = "platform.pub"
	provConfig     = "sentinel.yaml"
	provChainKey   = "secrets/chain.key" // the unit's record-signing key (docs/records.md)
	provChainPub   = "chain.pub"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type provisionArgs struct {
	style, deviceID, venue, platformURL, template, out, owner string
	appKey, signing, appSecretFile, platformKey               string
	caCert, caKey, clientCert, usernameFile, passwordFile     string
	scannerPort, barrierPin                                   string
	brokers                                                   listFlag
	force                                                     bool
}

func cmdProvision(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("provision", "provision --style STYLE --device-id ID --venue CODE --platform-url URL [flags]", stdout, stderr)
	var a provisionArgs
	fs.StringVar(&a.style, "style", "", "device style: "+strings.Join(config.Styles, ", "))
	fs.StringVar(&a.deviceID, "device-id", "", "this unit's id (device.id), e.g. gate-07")
	fs.StringVar(&a.venue, "venue", "", "the venue's code (device.venue), e.g. 350582-0001")
	fs.StringVar(&a.platformURL, "platform-url", "", "the verification platform (platform.url)")
	fs.StringVar(&a.template, "template", "", "template `FILE` (default: STYLE.yaml in /usr/share/sentinel/templates, else ./configs)")
	fs.StringVar(&a.out, "out", "/etc/sentinel", "`DIR` to write the config and the identity into")
	fs.StringVar(&a.owner, "owner", "", "`USER` the service runs as; secrets are made readable by it only (default sentinel, when run as root and it exists)")
	fs.StringVar(&a.appKey, "app-key", "", "the platform's app key for this unit (platform.app_key)")
	fs.StringVar(&a.signing, "signing", "", "hmac-sha256 or sm3-hmac (platform.signing; the config's default when empty)")
	fs.StringVar(&a.appSecretFile, "app-secret-file", "", "`FILE` holding the app secret the platform issued ('-': standard input); copied to secrets/app-secret, mode 0600")
	fs.StringVar(&a.platformKey, "platform-key", "", "`FILE` with the platform's X25519 public key for sealing, base64 (privacy.platform_key_file)")
	fs.Var(&a.brokers, "broker", "MQTT broker `URL` (uplink.brokers; repeat for failover)")
	fs.StringVar(&a.caCert, "ca-cert", "", "`FILE`: the CA that signs the broker's certificate (uplink.tls.ca_file)")
	fs.StringVar(&a.caKey, "ca-key", "", "`FILE`: the CA's key; with it the client certificate is issued here, without it a CSR is written for the CA")
	fs.StringVar(&a.clientCert, "client-cert", "", "`FILE`: the client certificate the CA issued for the CSR written earlier")
	fs.StringVar(&a.usernameFile, "mqtt-username-file", "", "`FILE` with the broker user name (uplink.username_file)")
	fs.StringVar(&a.passwordFile, "mqtt-password-file", "", "`FILE` with the broker password (uplink.password_file; copied, mode 0600)")
	fs.StringVar(&a.scannerPort, "scanner-port", "", "the QR scanner's serial device (scanners.qr.port; the template's when empty)")
	fs.StringVar(&a.barrierPin, "barrier-pin", "", "the relay's GPIO line (barrier.pin; the template's when empty)")
	fs.BoolVar(&a.force, "force", false, "replace an existing identity (client key)")
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	res, err := provision(a)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel provision: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitFailure
	}
	for _, l := range res {
		fmt.Fprintln(stdout, l)
	}
	return exitOK
}

// usageError is bad input: the command exits 2.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// provision checks every input, renders the config, and only then writes: secrets and keys
// first, the config last (each file atomically), so a refused run leaves nothing half done.
// It returns the lines to print.
func provision(a provisionArgs) ([]string, error) {
	switch {
	case a.style == "":
		return nil, usagef("--style is required (%s)", strings.Join(config.Styles, ", "))
	case !slices.Contains(config.Styles, a.style):
		return nil, usagef("--style %q is not a device style (%s)", a.style, strings.Join(config.Styles, ", "))
	case a.deviceID == "":
		return nil, usagef("--device-id is required (e.g. gate-07)")
	case a.deviceID == config.Unprovisioned:
		return nil, usagef("--device-id %q is the placeholder of an unprovisioned unit: give the unit its own id", a.deviceID)
	case a.venue == "":
		return nil, usagef("--venue is required (the venue's code, e.g. 350582-0001)")
	case a.venue == config.UnprovisionedVenue:
		return nil, usagef("--venue %q is the placeholder: give the venue's real code", a.venue)
	case a.platformURL == "":
		return nil, usagef("--platform-url is required")
	case a.caKey != "" && a.caCert == "":
		return nil, usagef("--ca-key needs --ca-cert")
	case a.clientCert != "" && a.caKey != "":
		return nil, usagef("give --ca-key (issue the certificate here) or --client-cert (one the CA issued), not both")
	case (a.appKey == "") != (a.appSecretFile == ""):
		return nil, usagef("--app-key and --app-secret-file go together: the platform issues both for the unit")
	}
	out, err := filepath.Abs(a.out)
	if err != nil {
		return nil, usagef("--out %s: %v", a.out, err)
	}
	p := func(rel string) string { return filepath.Join(out, rel) }

	tmplPath, tmpl, err := readTemplate(a)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(tmpl, &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, usagef("template %s is not a config mapping: %v", tmplPath, err)
	}
	root := doc.Content[0]
	if st := scalarAt(root, "device.style"); st != "" && st != a.style {
		return nil, usagef("template %s is for style %s, not %s: pick the template of the unit's style", tmplPath, st, a.style)
	}

	// The inputs that are secrets or keys, checked before anything is written.
	files := map[string]fileOut{} // relative path → content and mode
	set := map[string]any{
		"device.id": a.deviceID, "device.venue": a.venue, "device.style": a.style,
		"platform.url": a.platformURL,
	}
	if a.scannerPort != "" {
		set["scanners.qr.port"] = a.scannerPort
	}
	if a.barrierPin != "" {
		set["barrier.pin"] = a.barrierPin
	}
	if len(a.brokers) > 0 {
		set["uplink.brokers"] = []string(a.brokers)
	}
	var notes []string
	if a.appSecretFile != "" {
		secret, err := readInput(a.appSecretFile)
		if err != nil {
			return nil, usagef("--app-secret-file: %v", err)
		}
		if err := config.CheckSecret(secret); err != nil {
			return nil, usagef("--app-secret-file: the secret %v: use the secret the platform issued for this unit", err)
		}
		if n := len(bytes.TrimSpace(secret)); n < config.MinSecretLen {
			return nil, usagef("--app-secret-file: the secret has %d characters; at least %d are needed: use the secret the platform issued", n, config.MinSecretLen)
		}
		files[provAppSecret] = fileOut{append(bytes.TrimSpace(secret), '\n'), 0o600, true}
		set["platform.app_key"] = a.appKey
		set["platform.secret_file"] = p(provAppSecret)
		if a.signing != "" {
			set["platform.signing"] = a.signing
		}
	} else {
		notes = append(notes, "note: no --app-secret-file: platform requests are unsigned")
	}
	if a.platformKey != "" {
		b, err := readInput(a.platformKey)
		if err != nil {
			return nil, usagef("--platform-key: %v", err)
		}
		k, err := privacy.ParseKey(a.platformKey, b)
		if err != nil {
			return nil, usagef("--platform-key: %v", err)
		}
		files[provPlatformPK] = fileOut{[]byte(privacy.EncodeKey(k)), 0o644, false}
		set[config.PlatformKeyKey] = p(provPlatformPK)
	} else {
		notes = append(notes, "note: no --platform-key: records carry masked fields only, nothing sealed for the platform")
	}
	if a.usernameFile != "" {
		b, err := readInput(a.usernameFile)
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			return nil, usagef("--mqtt-username-file: empty or unreadable (%v)", err)
		}
		files[provUsername] = fileOut{append(bytes.TrimSpace(b), '\n'), 0o644, false}
		set["uplink.username_file"] = p(provUsername)
	}
	if a.passwordFile != "" {
		b, err := readInput(a.passwordFile)
		if err != nil {
			return nil, usagef("--mqtt-password-file: %v", err)
		}
		if err := config.CheckSecret(b); err != nil {
			return nil, usagef("--mqtt-password-file: the password %v", err)
		}
		files[provPassword] = fileOut{append(bytes.TrimSpace(b), '\n'), 0o600, true}
		set["uplink.password_file"] = p(provPassword)
	}

	// The MQTT client identity: a key made here, and a certificate from the CA or a CSR for it.
	clientID := scalarAt(root, "uplink.client_id")
	if clientID == "" {
		clientID = "sentinel-" + a.venue + "-" + a.deviceID
	}
	if a.caCert != "" {
		caPEM, err := os.ReadFile(a.caCert)
		if err != nil {
			return nil, usagef("--ca-cert: %v", err)
		}
		if _, err := firstCert(caPEM); err != nil {
			return nil, usagef("--ca-cert %s: %v", a.caCert, err)
		}
		files[provCA] = fileOut{caPEM, 0o644, false}
		set["uplink.tls.ca_file"] = p(provCA)

		key, keyPEM, err := clientKey(p(provClientKey), a.force)
		if err != nil {
			return nil, err
		}
		if keyPEM != nil {
			files[provClientKey] = fileOut{keyPEM, 0o600, true}
		}
		switch {
		case a.caKey != "":
			certPEM, err := issueClientCert(caPEM, a.caKey, key, clientID)
			if err != nil {
				return nil, err
			}
			files[provClientCert] = fileOut{certPEM, 0o644, false}
		case a.clientCert != "":
			certPEM, err := os.ReadFile(a.clientCert)
			if err != nil {
				return nil, usagef("--client-cert: %v", err)
			}
			if keyPEM != nil {
				return nil, usagef("--client-cert: this unit has no client key at %s yet: run provision without --client-cert first, to make the key and the CSR", p(provClientKey))
			}
			keyPEM, _ = os.ReadFile(p(provClientKey))
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
				return nil, usagef("--client-cert %s does not match this unit's key %s (%v): send the CSR %s to the CA again", a.clientCert, p(provClientKey), err, p(provClientCSR))
			}
			files[provClientCert] = fileOut{certPEM, 0o644, false}
		default:
			csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: clientID, OrganizationalUnit: []string{a.venue}}}, key)
			if err != nil {
				return nil, fmt.Errorf("make the CSR: %w", err)
			}
			files[provClientCSR] = fileOut{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o644, false}
			notes = append(notes, fmt.Sprintf("next: have the broker's CA sign %s, then run provision again with the same flags and --client-cert FILE", p(provClientCSR)))
		}
		if _, ok := files[provClientCert]; ok {
			set["uplink.tls.cert_file"] = p(provClientCert)
			set["uplink.tls.key_file"] = p(provClientKey)
		}
	}

	// The unit's Ed25519 key that signs its record heads: kept across runs, new with --force.
	chainPub, chainPEM, err := chain.ProvisionKey(p(provChainKey), a.force)
	if err != nil {
		return nil, err
	}
	if chainPEM != nil {
		files[provChainKey] = fileOut{chainPEM, 0o600, true}
	}
	files[provChainPub] = fileOut{[]byte(chainPub + "\n"), 0o644, false}
	if config.HasKey("records.chain_key_file") {
		set["records.chain_key_file"] = p(provChainKey)
	}
	notes = append(notes, "chain key: "+chainPub+" (the unit's Ed25519 public key: give "+p(provChainPub)+" to the platform, which verifies the unit's records with it)")

	// Render the template with the unit's values, and validate it as sentinel check would.
	for key, v := range set {
		if !config.HasKey(key) {
			return nil, fmt.Errorf("this build of sentinel has no config key %s: use a newer sentinel", key)
		}
		if err := setAt(root, key, v); err != nil {
			return nil, fmt.Errorf("template %s: %s: %v", tmplPath, key, err)
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2) // as the templates are written
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("render the config: %w", err)
	}
	body := buf.Bytes()
	header := fmt.Sprintf("# %s for unit %s at venue %s, written by sentinel provision on %s\n# from the template %s. Check it with: sentinel selftest --config %s\n",
		p(provConfig), a.deviceID, a.venue, time.Now().UTC().Format("2006-01-02"), tmplPath, p(provConfig))
	body = append([]byte(header), body...)
	if _, err := config.Parse(p(provConfig), body); err != nil {
		return nil, fmt.Errorf("the rendered config is not valid:\n%v", err)
	}

	// Write: directories, secrets and keys, then the config.
	owner, err := lookupOwner(a.owner)
	if err != nil {
		return nil, err
	}
	for _, d := range []struct {
		rel  string
		mode os.FileMode
	}{{"", 0o755}, {"secrets", 0o750}, {"tls", 0o755}} {
		if err := os.MkdirAll(p(d.rel), d.mode); err != nil {
			return nil, err
		}
		if d.rel == "secrets" {
			if err := os.Chmod(p(d.rel), d.mode); err != nil {
				return nil, err
			}
			if owner != nil {
				if err := os.Chown(p(d.rel), 0, owner.gid); err != nil {
					return nil, fmt.Errorf("chown %s: %w", p(d.rel), err)
				}
			}
		}
	}
	var lines []string
	rels := make([]string, 0, len(files))
	for rel := range files {
		rels = append(rels, rel)
	}
	slices.Sort(rels)
	for _, rel := range rels {
		f := files[rel]
		if err := writeAtomic(p(rel), f.data, f.mode, owner, f.secret); err != nil {
			return nil, err
		}
		lines = append(lines, fmt.Sprintf("wrote %s (%#o)", p(rel), f.mode))
	}
	if err := writeAtomic(p(provConfig), body, 0o644, nil, false); err != nil {
		return nil, err
	}
	lines = append(lines, fmt.Sprintf("wrote %s (device %s, venue %s, style %s)", p(provConfig), a.deviceID, a.venue, a.style))
	lines = append(lines, notes...)
	lines = append(lines, "next: sentinel selftest --config "+p(provConfig))
	return lines, nil
}

type fileOut struct {
	data   []byte
	mode   os.FileMode
	secret bool // owned by the service user when there is one
}

func readTemplate(a provisionArgs) (string, []byte, error) {
	if a.template != "" {
		b, err := os.ReadFile(a.template)
		if err != nil {
			return "", nil, usagef("--template: %v", err)
		}
		return a.template, b, nil
	}
	var tried []string
	for _, d := range templateDirs {
		path := filepath.Join(d, a.style+".yaml")
		b, err := os.ReadFile(path)
		if err == nil {
			return path, b, nil
		}
		tried = append(tried, path)
	}
	return "", nil, usagef("no template for style %s (tried %s): give --template FILE", a.style, strings.Join(tried, ", "))
}

// readInput reads a file, or standard input for "-".
func readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(io.LimitReader(stdin, 1<<20))
	}
	return os.ReadFile(path)
}

// clientKey returns the unit's MQTT client key: the one already at path (its PEM is nil, so
// it is not rewritten), or a new ECDSA P-256 key when there is none or replace is set.
func clientKey(path string, replace bool) (*ecdsa.PrivateKey, []byte, error) {
	if b, err := os.ReadFile(path); err == nil && !replace {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, nil, fmt.Errorf("%s is not a PEM key: move it aside or use --force", path)
		}
		k, err := x509.ParseECPrivateKey(blk.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v: move it aside or use --force", path, err)
		}
		return k, nil, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func firstCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("holds no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// issueClientCert signs a client certificate for key with the CA.
func issueClientCert(caPEM []byte, caKeyPath string, key *ecdsa.PrivateKey, cn string) ([]byte, error) {
	ca, err := firstCert(caPEM)
	if err != nil {
		return nil, usagef("--ca-cert: %v", err)
	}
	kb, err := os.ReadFile(caKeyPath)
	if err != nil {
		return nil, usagef("--ca-key: %v", err)
	}
	pair, err := tls.X509KeyPair(caPEM, kb)
	if err != nil {
		return nil, usagef("--ca-key %s does not belong to --ca-cert: %v", caKeyPath, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(clientCertLife),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, pair.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("issue the client certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

type owner struct{ uid, gid int }

// lookupOwner finds the service user: the named one, or "sentinel" when running as root and it
// exists; nil means files keep the current user.
func lookupOwner(name string) (*owner, error) {
	explicit := name != ""
	if !explicit {
		if os.Geteuid() != 0 {
			return nil, nil
		}
		name = defaultOwnerName
	}
	u, err := user.Lookup(name)
	if err != nil {
		if explicit {
			return nil, usagef("--owner %s: %v", name, err)
		}
		return nil, nil
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &owner{uid, gid}, nil
}

// writeAtomic writes data to path through a temp file, fsync and rename.
func writeAtomic(path string, data []byte, mode os.FileMode, o *owner, secret bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".provision-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if o != nil && secret {
		if err := tmp.Chown(o.uid, o.gid); err != nil {
			tmp.Close()
			return fmt.Errorf("chown %s: %w", path, err)
		}
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// scalarAt returns the scalar at a dotted key of a mapping node, "" when absent.
func scalarAt(m *yaml.Node, key string) string {
	n := m
	for _, part := range strings.Split(key, ".") {
		n = child(n, part)
		if n == nil {
			return ""
		}
	}
	if n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func child(m *yaml.Node, k string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == k {
			return m.Content[i+1]
		}
	}
	return nil
}

// setAt sets a dotted key of a mapping node, making the mappings on the way.
func setAt(m *yaml.Node, key string, v any) error {
	parts := strings.Split(key, ".")
	for _, part := range parts[:len(parts)-1] {
		c := child(m, part)
		if c == nil {
			c = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: part}, c)
		}
		if c.Kind != yaml.MappingNode {
			return fmt.Errorf("%s is not a mapping", part)
		}
		m = c
	}
	var val yaml.Node
	if err := val.Encode(v); err != nil {
		return err
	}
	if s, ok := v.(string); ok {
		val.Style = 0
		if needsQuotes(s) {
			val.Style = yaml.DoubleQuotedStyle
		}
	}
	if lst, ok := v.([]string); ok && len(lst) > 0 {
		val.Style = yaml.FlowStyle
		for _, it := range val.Content {
			it.Style = yaml.DoubleQuotedStyle
		}
	}
	last := parts[len(parts)-1]
	if c := child(m, last); c != nil {
		val.LineComment = c.LineComment
		*c = val
		return nil
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: last}, &val)
	return nil
}

// needsQuotes keeps values such as venue codes ("350582-0001") and URLs quoted, as the
// templates write them.
func needsQuotes(s string) bool {
	return strings.ContainsAny(s, ":#") || strings.Trim(s, "0123456789-") == ""
}
