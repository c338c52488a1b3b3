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
	"flag"
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
	scannerPort, idcardPort, barrierPin, queuePath            string
	cameraURL, cameraDevice, cameraVerify                     string
	inputPins                                                 map[string]*string // inputs.NAME.pin by input name
	install                                                   map[string]*string // install.KEY by key
	brokers, sets                                             listFlag
	force                                                     bool
}

// provisionInstallKeys are the install.* keys, each with its flag --install-KEY (with - for _).
var provisionInstallKeys = []string{"unit", "location", "brand", "style_label", "status"}

// define declares the flags into a.
func (a *provisionArgs) define(fs *flag.FlagSet) {
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
	fs.StringVar(&a.scannerPort, "scanner-port", "", "the QR scanner's serial `device` (scanners.qr.port; the template's when empty)")
	fs.StringVar(&a.idcardPort, "idcard-port", "", "the ID-card reader's serial `device` (scanners.idcard.port; the template's when empty)")
	fs.StringVar(&a.cameraURL, "camera-url", "", "an IP camera's snapshot `URL` (camera.driver http, camera.url)")
	fs.StringVar(&a.cameraDevice, "camera-device", "", "a USB camera's `device`, e.g. /dev/video0 (camera.driver v4l2, camera.device)")
	fs.StringVar(&a.cameraVerify, "camera-verify", "", "`when` a snapshot is verified: never, with_idcard or required (camera.verify; by style when empty)")
	fs.StringVar(&a.barrierPin, "barrier-pin", "", "the relay's GPIO `line` (barrier.pin; the template's when empty)")
	a.inputPins = map[string]*string{}
	for _, name := range []string{"exit_button", "door_sensor", "fire_alarm", "tamper"} {
		a.inputPins[name] = fs.String(flagName(name)+"-pin", "", "the "+strings.ReplaceAll(name, "_", " ")+"'s GPIO `line` (inputs."+name+".pin; the template's when empty)")
	}
	fs.StringVar(&a.queuePath, "queue-path", "", "the outbox `FILE` (queue.path; the template's when empty)")
	a.install = map[string]*string{}
	for _, k := range provisionInstallKeys {
		a.install[k] = fs.String("install-"+flagName(k), "", "install."+k+installHelp[k])
	}
	fs.Var(&a.sets, "set", "`KEY=VALUE`: set any other config key, the value in YAML (e.g. screen.listen=127.0.0.1:8081); repeatable")
	fs.BoolVar(&a.force, "force", false, "replace an existing identity (client key)")
}

var installHelp = map[string]string{
	"unit": ": the `name` of the unit (organisation) the terminal serves, for the city's table", "location": ": where it is installed (`text`)",
	"brand": ": the product `brand`", "style_label": ": the product style as the city's table names it (`text`; default device.style)",
	"status": ": `installed` or installing (default installing: say installed once it is)",
}

func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

func cmdProvision(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("provision", "provision --style STYLE --device-id ID --venue CODE --platform-url URL [flags]", stdout, stderr)
	var a provisionArgs
	a.define(fs)
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

// provisionPlan is what provision will do, built from the flags and the template before
// anything is written: the config keys to set (and which flag each comes from), the keys to
// remove, the files to write.
type provisionPlan struct {
	out   string // --out, absolute
	tmpl  string // the template's path
	doc   yaml.Node
	root  *yaml.Node
	set   map[string]any    // config key → value (string, []string or *yaml.Node)
	from  map[string]string // config key → the flag it comes from, with its value
	drop  []string          // config keys removed from the template
	files map[string]fileOut
	notes []string
}

func (pl *provisionPlan) path(rel string) string { return filepath.Join(pl.out, rel) }

// put sets a config key from a flag.
func (pl *provisionPlan) put(key string, v any, flagName, flagValue string) {
	pl.set[key] = v
	pl.from[key] = fmt.Sprintf("%s %q", flagName, flagValue)
}

// provision checks every input, renders the config and validates it, and only then writes:
// secrets and keys first, the config last (each file atomically), so a refused run leaves
// nothing half done. A bad flag is a usage error naming the flag. It returns the lines to
// print.
func provision(a provisionArgs) ([]string, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	pl, err := newPlan(a)
	if err != nil {
		return nil, err
	}
	for _, step := range []func(provisionArgs) error{pl.unitValues, pl.setFlags, pl.platformSecrets, pl.brokerLogin, pl.clientIdentity, pl.chainKey} {
		if err := step(a); err != nil {
			return nil, err
		}
	}
	body, err := pl.render(a)
	if err != nil {
		return nil, err
	}
	return pl.write(a, body)
}

// check refuses missing and contradicting flags.
func (a provisionArgs) check() error {
	switch {
	case a.style == "":
		return usagef("--style is required (%s)", strings.Join(config.Styles, ", "))
	case !slices.Contains(config.Styles, a.style):
		return usagef("--style %q is not a device style (%s)", a.style, strings.Join(config.Styles, ", "))
	case a.deviceID == "":
		return usagef("--device-id is required (e.g. gate-07)")
	case a.deviceID == config.Unprovisioned:
		return usagef("--device-id %q is the placeholder of an unprovisioned unit: give the unit its own id", a.deviceID)
	case a.venue == "":
		return usagef("--venue is required (the venue's code, e.g. 350582-0001)")
	case a.venue == config.UnprovisionedVenue:
		return usagef("--venue %q is the placeholder: give the venue's real code", a.venue)
	case a.platformURL == "":
		return usagef("--platform-url is required")
	case a.caKey != "" && a.caCert == "":
		return usagef("--ca-key needs --ca-cert")
	case a.clientCert != "" && a.caKey != "":
		return usagef("give --ca-key (issue the certificate here) or --client-cert (one the CA issued), not both")
	case (a.appKey == "") != (a.appSecretFile == ""):
		return usagef("--app-key and --app-secret-file go together: the platform issues both for the unit")
	case a.cameraURL != "" && a.cameraDevice != "":
		return usagef("give --camera-url (an IP camera) or --camera-device (a USB camera), not both")
	}
	return nil
}

// newPlan reads the template: it must be a config mapping for the unit's style.
func newPlan(a provisionArgs) (*provisionPlan, error) {
	out, err := filepath.Abs(a.out)
	if err != nil {
		return nil, usagef("--out %s: %v", a.out, err)
	}
	tmplPath, tmpl, err := readTemplate(a)
	if err != nil {
		return nil, err
	}
	pl := &provisionPlan{out: out, tmpl: tmplPath, set: map[string]any{}, from: map[string]string{}, files: map[string]fileOut{}}
	if err := yaml.Unmarshal(tmpl, &pl.doc); err != nil || len(pl.doc.Content) == 0 || pl.doc.Content[0].Kind != yaml.MappingNode {
		return nil, usagef("template %s is not a config mapping: %v", tmplPath, err)
	}
	pl.root = pl.doc.Content[0]
	if st := scalarAt(pl.root, "device.style"); st != "" && st != a.style {
		return nil, usagef("template %s is for style %s, not %s: pick the template of the unit's style", tmplPath, st, a.style)
	}
	return pl, nil
}

// unitValues are the unit's identity, devices, queue and installation facts.
func (pl *provisionPlan) unitValues(a provisionArgs) error {
	pl.put("device.id", a.deviceID, "--device-id", a.deviceID)
	pl.put("device.venue", a.venue, "--venue", a.venue)
	pl.put("device.style", a.style, "--style", a.style)
	pl.put("platform.url", a.platformURL, "--platform-url", a.platformURL)
	for key, f := range map[string]struct{ flag, v string }{
		"scanners.qr.port": {"--scanner-port", a.scannerPort}, "scanners.idcard.port": {"--idcard-port", a.idcardPort},
		"barrier.pin": {"--barrier-pin", a.barrierPin}, "queue.path": {"--queue-path", a.queuePath},
		"camera.verify": {"--camera-verify", a.cameraVerify},
	} {
		if f.v != "" {
			pl.put(key, f.v, f.flag, f.v)
		}
	}
	// A reader the template lacks gets its driver; a camera the flag names replaces the
	// template's.
	if a.scannerPort != "" && scalarAt(pl.root, "scanners.qr.driver") == "" {
		pl.put("scanners.qr.driver", "serial", "--scanner-port", a.scannerPort)
	}
	if a.idcardPort != "" && scalarAt(pl.root, "scanners.idcard.driver") == "" {
		pl.put("scanners.idcard.driver", "sam", "--idcard-port", a.idcardPort)
	}
	switch {
	case a.cameraURL != "":
		pl.put("camera.driver", "http", "--camera-url", a.cameraURL)
		pl.put("camera.url", a.cameraURL, "--camera-url", a.cameraURL)
		pl.drop = append(pl.drop, "camera.device")
	case a.cameraDevice != "":
		pl.put("camera.driver", "v4l2", "--camera-device", a.cameraDevice)
		pl.put("camera.device", a.cameraDevice, "--camera-device", a.cameraDevice)
		pl.drop = append(pl.drop, "camera.url")
	}
	for name, pin := range a.inputPins {
		if *pin != "" {
			pl.put("inputs."+name+".pin", *pin, "--"+flagName(name)+"-pin", *pin)
		}
	}
	for key, v := range a.install {
		if *v != "" {
			pl.put("install."+key, *v, "--install-"+flagName(key), *v)
		}
	}
	if len(a.brokers) > 0 {
		pl.put("uplink.brokers", []string(a.brokers), "--broker", strings.Join(a.brokers, " "))
	}
	if a.signing != "" {
		pl.put("platform.signing", a.signing, "--signing", a.signing)
	}
	return nil
}

// setFlags are the --set KEY=VALUE flags: a key this build has, a YAML value.
func (pl *provisionPlan) setFlags(a provisionArgs) error {
	for _, kv := range a.sets {
		key, val, ok := strings.Cut(kv, "=")
		key = strings.TrimSpace(key)
		switch {
		case !ok || key == "":
			return usagef("--set %q: give KEY=VALUE, e.g. screen.listen=127.0.0.1:8081", kv)
		case !config.HasKey(key):
			return usagef("--set %q: this build of sentinel has no config key %s (sentinel check names the known keys)", kv, key)
		}
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(val), &n); err != nil {
			return usagef("--set %q: the value is not YAML: %v", kv, err)
		}
		v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ""}
		if len(n.Content) > 0 {
			v = n.Content[0]
		}
		pl.put(key, v, "--set", kv)
	}
	return nil
}

// platformSecrets are the app secret and the platform's sealing key.
func (pl *provisionPlan) platformSecrets(a provisionArgs) error {
	if a.appSecretFile != "" {
		secret, err := readInput(a.appSecretFile)
		if err != nil {
			return usagef("--app-secret-file: %v", err)
		}
		if err := config.CheckSecret(secret); err != nil {
			return usagef("--app-secret-file: the secret %v: use the secret the platform issued for this unit", err)
		}
		if n := len(bytes.TrimSpace(secret)); n < config.MinSecretLen {
			return usagef("--app-secret-file: the secret has %d characters; at least %d are needed: use the secret the platform issued", n, config.MinSecretLen)
		}
		pl.files[provAppSecret] = fileOut{append(bytes.TrimSpace(secret), '\n'), 0o600, true}
		pl.put("platform.app_key", a.appKey, "--app-key", a.appKey)
		pl.put("platform.secret_file", pl.path(provAppSecret), "--app-secret-file", a.appSecretFile)
	} else {
		pl.notes = append(pl.notes, "note: no --app-secret-file: platform requests are unsigned")
	}
	if a.platformKey == "" {
		pl.notes = append(pl.notes, "note: no --platform-key: records carry masked fields only, nothing sealed for the platform")
		return nil
	}
	b, err := readInput(a.platformKey)
	if err != nil {
		return usagef("--platform-key: %v", err)
	}
	k, err := privacy.ParseKey(a.platformKey, b)
	if err != nil {
		return usagef("--platform-key: %v", err)
	}
	pl.files[provPlatformPK] = fileOut{[]byte(privacy.EncodeKey(k)), 0o644, false}
	pl.put(config.PlatformKeyKey, pl.path(provPlatformPK), "--platform-key", a.platformKey)
	return nil
}

// brokerLogin is the broker's user name and password.
func (pl *provisionPlan) brokerLogin(a provisionArgs) error {
	if a.usernameFile != "" {
		b, err := readInput(a.usernameFile)
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			return usagef("--mqtt-username-file: empty or unreadable (%v)", err)
		}
		pl.files[provUsername] = fileOut{append(bytes.TrimSpace(b), '\n'), 0o644, false}
		pl.put("uplink.username_file", pl.path(provUsername), "--mqtt-username-file", a.usernameFile)
	}
	if a.passwordFile != "" {
		b, err := readInput(a.passwordFile)
		if err != nil {
			return usagef("--mqtt-password-file: %v", err)
		}
		if err := config.CheckSecret(b); err != nil {
			return usagef("--mqtt-password-file: the password %v", err)
		}
		pl.files[provPassword] = fileOut{append(bytes.TrimSpace(b), '\n'), 0o600, true}
		pl.put("uplink.password_file", pl.path(provPassword), "--mqtt-password-file", a.passwordFile)
	}
	return nil
}

// clientIdentity is the MQTT client identity: a key made here, and a certificate from the CA
// (--ca-key), one it issued (--client-cert), or a CSR for it.
func (pl *provisionPlan) clientIdentity(a provisionArgs) error {
	if a.caCert == "" {
		return nil
	}
	clientID := scalarAt(pl.root, "uplink.client_id")
	if clientID == "" {
		clientID = "sentinel-" + a.venue + "-" + a.deviceID
	}
	caPEM, err := os.ReadFile(a.caCert)
	if err != nil {
		return usagef("--ca-cert: %v", err)
	}
	if _, err := firstCert(caPEM); err != nil {
		return usagef("--ca-cert %s: %v", a.caCert, err)
	}
	pl.files[provCA] = fileOut{caPEM, 0o644, false}
	pl.put("uplink.tls.ca_file", pl.path(provCA), "--ca-cert", a.caCert)
	key, keyPEM, err := clientKey(pl.path(provClientKey), a.force)
	if err != nil {
		return err
	}
	if keyPEM != nil {
		pl.files[provClientKey] = fileOut{keyPEM, 0o600, true}
	}
	var certPEM []byte
	switch {
	case a.caKey != "":
		if certPEM, err = issueClientCert(caPEM, a.caKey, key, clientID); err != nil {
			return err
		}
	case a.clientCert != "":
		if certPEM, err = os.ReadFile(a.clientCert); err != nil {
			return usagef("--client-cert: %v", err)
		}
		if keyPEM != nil {
			return usagef("--client-cert: this unit has no client key at %s yet: run provision without --client-cert first, to make the key and the CSR", pl.path(provClientKey))
		}
		keyPEM, _ = os.ReadFile(pl.path(provClientKey))
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			return usagef("--client-cert %s does not match this unit's key %s (%v): send the CSR %s to the CA again", a.clientCert, pl.path(provClientKey), err, pl.path(provClientCSR))
		}
	default:
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: clientID, OrganizationalUnit: []string{a.venue}}}, key)
		if err != nil {
			return fmt.Errorf("make the CSR: %w", err)
		}
		pl.files[provClientCSR] = fileOut{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o644, false}
		pl.notes = append(pl.notes, fmt.Sprintf("next: have the broker's CA sign %s, then run provision again with the same flags and --client-cert FILE", pl.path(provClientCSR)))
		return nil
	}
	pl.files[provClientCert] = fileOut{certPEM, 0o644, false}
	pl.put("uplink.tls.cert_file", pl.path(provClientCert), "--ca-cert", a.caCert)
	pl.put("uplink.tls.key_file", pl.path(provClientKey), "--ca-cert", a.caCert)
	return nil
}

// chainKey is the unit's Ed25519 key that signs its record heads (docs/records.md): kept
// across runs, new with --force.
func (pl *provisionPlan) chainKey(a provisionArgs) error {
	chainPub, chainPEM, err := chain.ProvisionKey(pl.path(provChainKey), a.force)
	if err != nil {
		return err
	}
	if chainPEM != nil {
		pl.files[provChainKey] = fileOut{chainPEM, 0o600, true}
	}
	pl.files[provChainPub] = fileOut{[]byte(chainPub + "\n"), 0o644, false}
	if config.HasKey("records.chain_key_file") {
		pl.put("records.chain_key_file", pl.path(provChainKey), "--out", pl.out)
	}
	pl.notes = append(pl.notes, "chain key: "+chainPub+" (the unit's Ed25519 public key: give "+pl.path(provChainPub)+" to the platform, which verifies the unit's records with it)")
	return nil
}

// render writes the unit's values into the template and validates the result as sentinel
// check would. A problem of a key a flag set is a usage error naming the flag; one of the
// template's own keys names the template.
func (pl *provisionPlan) render(a provisionArgs) ([]byte, error) {
	for _, key := range pl.drop {
		dropAt(pl.root, key)
	}
	keys := make([]string, 0, len(pl.set))
	for key := range pl.set {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		if !config.HasKey(key) {
			return nil, fmt.Errorf("this build of sentinel has no config key %s: use a newer sentinel", key)
		}
		if err := setAt(pl.root, key, pl.set[key]); err != nil {
			return nil, usagef("%s: template %s: %s: %v", pl.from[key], pl.tmpl, key, err)
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2) // as the templates are written
	if err := enc.Encode(&pl.doc); err != nil {
		return nil, fmt.Errorf("render the config: %w", err)
	}
	header := fmt.Sprintf("# %s for unit %s at venue %s, written by sentinel provision on %s\n# from the template %s. Check it with: sentinel selftest --config %s\n",
		pl.path(provConfig), a.deviceID, a.venue, time.Now().UTC().Format("2006-01-02"), pl.tmpl, pl.path(provConfig))
	body := append([]byte(header), buf.Bytes()...)
	_, err := config.Parse(pl.path(provConfig), body)
	var ce *config.Error
	if errors.As(err, &ce) {
		return nil, usageError{pl.blame(ce)}
	}
	if err != nil {
		return nil, fmt.Errorf("the rendered config is not valid: %w", err)
	}
	return body, nil
}

// blame turns the rendered config's problems into the flags (or template keys) that caused
// them: "--device-id "gate 08": device.id: must be ...".
func (pl *provisionPlan) blame(ce *config.Error) error {
	lines := make([]string, 0, len(ce.Problems))
	for _, p := range ce.Problems {
		who := "template " + pl.tmpl
		for k := p.Key; k != ""; k = parentKey(k) {
			if f, ok := pl.from[k]; ok {
				who = f
				break
			}
		}
		msg := p.Msg
		if p.Key != "" {
			msg = p.Key + ": " + p.Msg
		}
		lines = append(lines, who+": "+msg)
	}
	slices.Sort(lines)
	return fmt.Errorf("nothing written:\n  %s", strings.Join(slices.Compact(lines), "\n  "))
}

// parentKey is the key one level up: uplink.brokers[1] → uplink.brokers → uplink; "" at the top.
func parentKey(k string) string {
	i := strings.LastIndexAny(k, ".[")
	if i < 0 {
		return ""
	}
	return k[:i]
}

// write makes the directories, writes the secrets and keys, then the config.
func (pl *provisionPlan) write(a provisionArgs, body []byte) ([]string, error) {
	owner, err := lookupOwner(a.owner)
	if err != nil {
		return nil, err
	}
	for _, d := range []struct {
		rel  string
		mode os.FileMode
	}{{"", 0o755}, {"secrets", 0o750}, {"tls", 0o755}} {
		if err := os.MkdirAll(pl.path(d.rel), d.mode); err != nil {
			return nil, err
		}
		if d.rel != "secrets" {
			continue
		}
		if err := os.Chmod(pl.path(d.rel), d.mode); err != nil {
			return nil, err
		}
		if owner != nil {
			if err := os.Chown(pl.path(d.rel), 0, owner.gid); err != nil {
				return nil, fmt.Errorf("chown %s: %w", pl.path(d.rel), err)
			}
		}
	}
	var lines []string
	rels := make([]string, 0, len(pl.files))
	for rel := range pl.files {
		rels = append(rels, rel)
	}
	slices.Sort(rels)
	for _, rel := range rels {
		f := pl.files[rel]
		if err := writeAtomic(pl.path(rel), f.data, f.mode, owner, f.secret); err != nil {
			return nil, err
		}
		lines = append(lines, fmt.Sprintf("wrote %s (%#o)", pl.path(rel), f.mode))
	}
	if err := writeAtomic(pl.path(provConfig), body, 0o644, nil, false); err != nil {
		return nil, err
	}
	lines = append(lines, fmt.Sprintf("wrote %s (device %s, venue %s, style %s)", pl.path(provConfig), a.deviceID, a.venue, a.style))
	lines = append(lines, pl.notes...)
	return append(lines, "next: sentinel selftest --config "+pl.path(provConfig)), nil
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
	if n, ok := v.(*yaml.Node); ok {
		val = *n
	} else if err := val.Encode(v); err != nil {
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

// dropAt removes a dotted key of a mapping node, when it is there.
func dropAt(m *yaml.Node, key string) {
	parts := strings.Split(key, ".")
	for _, part := range parts[:len(parts)-1] {
		if m = child(m, part); m == nil {
			return
		}
	}
	if m.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == parts[len(parts)-1] {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// needsQuotes keeps values such as venue codes ("350582-0001") and URLs quoted, as the
// templates write them.
func needsQuotes(s string) bool {
	return strings.ContainsAny(s, ":#") || strings.Trim(s, "0123456789-") == ""
}
