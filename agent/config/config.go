package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sentinel-edge/sentinel/internal/secretfile"
)

// Device styles.
const (
	StyleGateAllInOne = "gate_all_in_one"
	StylePillar       = "pillar"
	StyleHandheld     = "handheld"
	StyleReducedGate  = "reduced_gate"
)

// Styles lists the device styles in the order documentation shows them.
var Styles = []string{StyleGateAllInOne, StylePillar, StyleHandheld, StyleReducedGate}

// Config is the whole configuration of one unit.
type Config struct {
	Device   Device   `yaml:"device"`
	Scanners Scanners `yaml:"scanners"`
	Platform Platform `yaml:"platform"`
	Policy   Policy   `yaml:"policy"`
	Barrier  Barrier  `yaml:"barrier"`
	Queue    Queue    `yaml:"queue"`
	Uplink   Uplink   `yaml:"uplink"`
	Camera   *Camera  `yaml:"camera"` // devices.go
	Inputs   Inputs   `yaml:"inputs"` // devices.go
	Log      Log      `yaml:"log"`
	Screen   Screen   `yaml:"screen"`   // ops.go
	Metrics  Metrics  `yaml:"metrics"`  // ops.go
	Install  Install  `yaml:"install"`  // ops.go
	Commands Commands `yaml:"commands"` // ops.go
	Status   Status   `yaml:"status"`   // ops.go
	Privacy  Privacy  `yaml:"privacy"`  // queue.go
	Records  Records  `yaml:"records"`  // records.go
}

// Device identifies the unit.
type Device struct {
	ID    string `yaml:"id"`
	Venue string `yaml:"venue"`
	Style string `yaml:"style"`
}

// Scanners lists the credential readers of the unit.
type Scanners struct {
	QR     *QRScanner    `yaml:"qr"`
	IDCard *IDCardReader `yaml:"idcard"` // devices.go
}

// QRScanner is a health-code QR scanner.
type QRScanner struct {
	Driver string `yaml:"driver"` // serial | evdev
	Port   string `yaml:"port"`
	Baud   int    `yaml:"baud"`
	// MaxLength is the longest scan accepted, in bytes; longer lines are rejected and counted.
	MaxLength int `yaml:"max_length"`
	// Device is the input event device of an evdev (USB keyboard-wedge) scanner.
	Device string `yaml:"device"`
	// DuplicateWindow suppresses a repeat of the same scan within it (devices.go).
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
}

// Platform is the city's verification platform.
type Platform struct {
	URL     string        `yaml:"url"`
	Timeout time.Duration `yaml:"timeout"`
	// The keys below are the Verify issue's (platform.go holds their defaults and checks).
	Budget        time.Duration `yaml:"budget"`         // the whole decision, a retry included
	OfflinePolicy string        `yaml:"offline_policy"` // deny | allow_cached | allow_and_flag
	CacheTTL      time.Duration `yaml:"cache_ttl"`
	ProbeInterval time.Duration `yaml:"probe_interval"` // circuit breaker
	Signing       string        `yaml:"signing"`        // hmac-sha256 | sm3-hmac
	AppKey        string        `yaml:"app_key"`
	SecretFile    string        `yaml:"secret_file"` // signing is on when set
	Mapping       string        `yaml:"mapping"`     // a mapping file; the reference mapping when empty
}

// Policy is the venue's admission policy.
type Policy struct {
	HealthCodes []string `yaml:"health_codes"`
	// NATMaxAge is the longest time since the nucleic-acid test's sampling; 0 disables the check.
	NATMaxAge time.Duration `yaml:"nat_max_age"`
	// The keys below are the Verify issue's (platform.go holds their defaults and checks).
	Version              string              `yaml:"version"`     // the operator's label, part of the policy hash
	Credentials          map[string][]string `yaml:"credentials"` // device style → accepted kinds; all when absent
	MinVaccineDoses      int                 `yaml:"min_vaccine_doses"`
	RequireIdentityMatch bool                `yaml:"require_identity_match"` // default true
	// FaceMinScore is the lowest face-search score a face-only passage is taken at (0 to 1,
	// default 0.80); a match below it is denied face_low_score.
	FaceMinScore float64 `yaml:"face_min_score"`
}

// Barrier is the relay that opens the lane.
type Barrier struct {
	Driver    string        `yaml:"driver"` // gpio | fake | none
	Pin       string        `yaml:"pin"`
	ActiveLow bool          `yaml:"active_low"`
	Pulse     time.Duration `yaml:"pulse"`
	Mode      string        `yaml:"mode"`      // pulse | hold (devices.go)
	MaxPulse  time.Duration `yaml:"max_pulse"` // devices.go
}

// Queue is the durable outbox.
type Queue struct {
	Path        string `yaml:"path"`
	Synchronous string `yaml:"synchronous"` // FULL | NORMAL
	// Capacity (queue.go): bounds, retention of delivered records, policy when full.
	MaxBytes   int64         `yaml:"max_bytes"`
	MaxRecords int64         `yaml:"max_records"`
	Retention  time.Duration `yaml:"retention"`
	OnFull     string        `yaml:"on_full"` // reject_new | drop_oldest
}

// Uplink is the MQTT connection that carries records upstream.
type Uplink struct {
	Brokers     []string `yaml:"brokers"`
	TopicPrefix string   `yaml:"topic_prefix"`
	ClientID    string   `yaml:"client_id"`
	// Security, flow and reconnects (queue.go).
	TLS            UplinkTLS     `yaml:"tls"`
	UsernameFile   string        `yaml:"username_file"`
	PasswordFile   string        `yaml:"password_file"`
	MaxInflight    int           `yaml:"max_inflight"`
	DrainRate      float64       `yaml:"drain_rate"`
	DrainBytesPerS int64         `yaml:"drain_bytes_per_s"`
	BackoffBase    time.Duration `yaml:"backoff_base"`
	BackoffCap     time.Duration `yaml:"backoff_cap"`
	BackoffReset   time.Duration `yaml:"backoff_reset"`
}

// UplinkTLS is the uplink's TLS: the CA that signs the broker's certificate and an optional
// client certificate (queue.go).
type UplinkTLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Privacy is how personal data is sealed at rest and in flight (queue.go).
type Privacy struct {
	PlatformKeyFile string `yaml:"platform_key_file"`
	HashKeyFile     string `yaml:"hash_key_file"`
}

// Log sets the daemon's logging.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// Problem is one thing wrong with a config file.
type Problem struct {
	Line int    // 0 when unknown
	Key  string // dotted path, e.g. platform.timeout; empty for file-level problems
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error lists every problem found in one file.
type Error struct {
	File     string
	Problems []Problem
}

// ErrInvalid is matched by every *Error.
var ErrInvalid = errors.New("config: invalid")

func (e *Error) Error() string {
	lines := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		lines = append(lines, e.File+": "+p.String())
	}
	return strings.Join(lines, "\n")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// maxConfigSize bounds a config file: far more than any unit's.
const maxConfigSize = 1 << 20

// Load reads, decodes, defaults and validates the file at path. The path must name a regular
// file of at most 1 MiB (a FIFO or a device is refused, never read).
func Load(path string) (*Config, error) {
	data, err := secretfile.Read(path, secretfile.Options{Public: true, MaxSize: maxConfigSize})
	if err != nil {
		return nil, &Error{File: path, Problems: []Problem{{Msg: "cannot read config: " + strings.TrimPrefix(err.Error(), "secretfile: "+path+": ")}}}
	}
	return Parse(path, data)
}

func unwrapPathErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse decodes data strictly, applies defaults and validates. name is used in messages.
func Parse(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{File: name, Problems: []Problem{yamlProblem(err.Error())}}
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, &Error{File: name, Problems: []Problem{{Msg: "config is empty"}}}
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, &Error{File: name, Problems: []Problem{{Line: doc.Line, Msg: "config must be a mapping of sections (device, scanners, platform, ...)"}}}
	}
	lines := map[string]int{}
	leaves := map[int][]leaf{}
	var probs []Problem
	// walk reports unknown and duplicate keys and drops the duplicates from the tree, so that
	// the rest of the file still decodes (one problem, not a cascade of "is required").
	walk(doc, "", reflect.TypeOf(Config{}), lines, leaves, &probs)

	var c Config
	probs = append(probs, decode(doc, &c, leaves)...)
	// A value that does not decode is one problem: the checks of its key, which see the
	// zero (or whatever the decoder made of it), would only add confusion.
	undecoded := map[string]bool{}
	for _, p := range probs {
		undecoded[p.Key] = true
	}
	present := func(key string) bool { _, ok := lines[key]; return ok }
	zeros := c.writtenZeros(present)
	c.applyDefaults(present)
	for _, p := range append(c.refuseZeros(zeros), c.validate()...) {
		if !undecoded[p.Key] {
			probs = append(probs, p)
		}
	}
	for i := range probs {
		if probs[i].Line == 0 {
			probs[i].Line = lineOf(lines, probs[i].Key)
		}
	}
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
		return nil, &Error{File: name, Problems: dedupe(probs)}
	}
	return &c, nil
}

// decode decodes the (de-duplicated) tree into c; type errors become problems naming their
// key. Unknown keys were reported by walk.
func decode(doc *yaml.Node, c *Config, leaves map[int][]leaf) []Problem {
	err := doc.Decode(c)
	if err == nil {
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []Problem{yamlProblem(err.Error())}
	}
	var probs []Problem
	used := map[*leaf]bool{}
	for _, m := range te.Errors {
		p := yamlProblem(m)
		if strings.Contains(p.Msg, "not found in type") {
			continue // reported by walk with its full key
		}
		probs = append(probs, typeProblem(p, leaves[p.Line], used))
	}
	return probs
}

func dedupe(ps []Problem) []Problem {
	seen := map[string]bool{}
	out := ps[:0]
	for _, p := range ps {
		if s := p.String(); !seen[s] {
			seen[s] = true
			out = append(out, p)
		}
	}
	return out
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func yamlProblem(msg string) Problem {
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Problem{Line: n, Msg: m[2]}
	}
	return Problem{Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// lineOf finds the line of key, or of its nearest parent that is in the file.
func lineOf(lines map[string]int, key string) int {
	for k := key; k != ""; {
		if n, ok := lines[k]; ok {
			return n
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

var durationType = reflect.TypeOf(time.Duration(0))

// walk records the line of every key and reports unknown keys with their full path.
func walk(n *yaml.Node, path string, t reflect.Type, lines map[string]int, leaves map[int][]leaf, probs *[]Problem) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.ScalarNode:
		leaves[n.Line] = append(leaves[n.Line], leaf{key: path, value: n.Value})
		if overflows(n, t) {
			// The decoder refuses a positive one but turns a negative one into the
			// smallest int64 without a word.
			*probs = append(*probs, Problem{Line: n.Line, Key: path, Msg: fmt.Sprintf("must be a whole number that fits (%s), got %q", numberRange("into int64"), n.Value)})
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct && t != durationType:
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag != "" && tag != "-" {
				fields[tag] = f.Type
			}
		}
		dropDuplicates(n, path, probs)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			if path != "" {
				key = path + "." + k.Value
			}
			lines[key] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				*probs = append(*probs, Problem{Line: k.Line, Key: key, Msg: "unknown key" + didYouMean(path, k.Value, fields) + " (known: " + strings.Join(sortedKeys(fields), ", ") + ")"})
				continue
			}
			walk(v, key, ft, lines, leaves, probs)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		dropDuplicates(n, path, probs)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := path + "." + n.Content[i].Value
			lines[key] = n.Content[i].Line
			walk(n.Content[i+1], key, t.Elem(), lines, leaves, probs)
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, item := range n.Content {
			key := fmt.Sprintf("%s[%d]", path, i)
			lines[key] = item.Line
			walk(item, key, t.Elem(), lines, leaves, probs)
		}
	}
}

// dropDuplicates reports every key of mapping n that repeats an earlier one (YAML allows a
// key once) and removes the repeat from the tree, keeping the first: the decoder would
// otherwise refuse the whole mapping and every key in it would look missing.
func dropDuplicates(n *yaml.Node, path string, probs *[]Problem) {
	first := map[string]int{}
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind == yaml.ScalarNode && k.Value != "<<" {
			if line, dup := first[k.Value]; dup {
				key := k.Value
				if path != "" {
					key = path + "." + k.Value
				}
				*probs = append(*probs, Problem{Line: k.Line, Key: key, Msg: fmt.Sprintf("is a duplicate key (also at line %d): a key may appear once; keep one", line)})
				continue
			}
			first[k.Value] = k.Line
		}
		kept = append(kept, k, n.Content[i+1])
	}
	n.Content = kept
}

// didYouMean suggests the key meant by an unknown one: a key of the same mapping spelt
// nearly the same (prot → port), else a key of that name elsewhere in the config (offline_policy
// under policy → platform.offline_policy). "" when nothing is close.
func didYouMean(path, name string, fields map[string]reflect.Type) string {
	best, bestD := "", 0
	for _, k := range sortedKeys(fields) {
		d := editDistance(strings.ToLower(name), k)
		if d <= typoLimit(name) && (best == "" || d < bestD) {
			best, bestD = k, d
		}
	}
	if best != "" {
		return "; did you mean " + best + "?"
	}
	var elsewhere []string
	for _, key := range knownKeys() {
		if (key == name || strings.HasSuffix(key, "."+name)) && !strings.HasPrefix(key, path+".") {
			elsewhere = append(elsewhere, key)
		}
	}
	if len(elsewhere) > 0 && len(elsewhere) <= 3 {
		return "; did you mean " + strings.Join(elsewhere, " or ") + "?"
	}
	return ""
}

// typoLimit is how many edits a misspelt key may be from the right one.
func typoLimit(name string) int {
	switch n := len([]rune(name)); {
	case n <= 3:
		return 1
	case n <= 8:
		return 2
	}
	return 3
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur := make([]int, len(rb)+1)
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(rb)]
}

// knownKeys are the dotted keys of every struct field of the config (map keys aside).
func knownKeys() []string {
	var keys []string
	var add func(t reflect.Type, path string)
	add = func(t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == durationType {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			key := tag
			if path != "" {
				key = path + "." + tag
			}
			keys = append(keys, key)
			add(t.Field(i).Type, key)
		}
	}
	add(reflect.TypeOf(Config{}), "")
	return keys
}

func sortedKeys(m map[string]reflect.Type) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// leaf is a scalar value in the file and the key it belongs to.
type leaf struct{ key, value string }

var quoted = regexp.MustCompile("`([^`]*)`")

// numberType matches the Go type of a yaml type error about a number.
var numberType = regexp.MustCompile(`into (u?int(8|16|32|64)?|float(32|64))$`)

// typeProblem names the key of a yaml type error ("cannot unmarshal !!str `3d` into
// time.Duration") by finding the value on that line (the error shortens a value of more
// than ten characters to its first seven and "..."), and says what was wanted. used marks
// the leaves already named, so that two errors on one line name two keys.
func typeProblem(p Problem, onLine []leaf, used map[*leaf]bool) Problem {
	var val string
	if m := quoted.FindStringSubmatch(p.Msg); m != nil {
		val = m[1]
	}
	short, cut := strings.CutSuffix(val, "...")
	for i := range onLine {
		l := &onLine[i]
		if used[l] {
			continue
		}
		if l.value == val || (cut && strings.HasPrefix(l.value, short)) || len(onLine) == 1 {
			p.Key, val, used[l] = l.key, l.value, true
			break
		}
	}
	switch {
	case strings.HasSuffix(p.Msg, "time.Duration"):
		p.Msg = fmt.Sprintf("must be a duration like 800ms, 30s or 72h, got %q", val)
	case numberType.MatchString(p.Msg) && wholeNumber.MatchString(val):
		p.Msg = fmt.Sprintf("must be a whole number that fits (%s), got %q", numberRange(p.Msg), val)
	case numberType.MatchString(p.Msg) && strings.Contains(p.Msg, "into float"):
		p.Msg = fmt.Sprintf("must be a number, got %q", val)
	case numberType.MatchString(p.Msg):
		p.Msg = fmt.Sprintf("must be a whole number, got %q", val)
	case strings.HasSuffix(p.Msg, "into bool"):
		p.Msg = fmt.Sprintf("must be true or false, got %q", val)
	}
	return p
}

// overflows says whether a scalar for an integer field is a decimal whole number too large
// for it.
func overflows(n *yaml.Node, t reflect.Type) bool {
	if t == durationType || t.Kind() < reflect.Int || t.Kind() > reflect.Int64 || n.Tag == "!!str" || !wholeNumber.MatchString(n.Value) {
		return false
	}
	_, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 10, t.Bits())
	return errors.Is(err, strconv.ErrRange)
}

// wholeNumber is a decimal integer, as an overflowing value is written.
var wholeNumber = regexp.MustCompile(`^[-+]?[0-9][0-9_]*$`)

// numberRange says which whole numbers a Go integer type holds (the config has int, int64
// and float64 numbers).
func numberRange(msg string) string {
	switch {
	case strings.Contains(msg, "into uint"):
		return "from 0 to 18446744073709551615"
	case strings.HasSuffix(msg, "int32"):
		return "from -2147483648 to 2147483647"
	}
	return "from -9223372036854775808 to 9223372036854775807"
}
