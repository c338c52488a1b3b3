package selftest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sentinel-edge/sentinel/agent/config"
	"github.com/sentinel-edge/sentinel/agent/record"
	"github.com/sentinel-edge/sentinel/agent/statefile"
	"github.com/sentinel-edge/sentinel/internal/buildinfo"
)

// The outcome of every verification is kept beside the queue, so that the daemon (another
// process, maybe not running when `sentinel selftest` runs) publishes it in the status and
// counts it for docked (docs/operations.md, "Docked"). Each file holds the last outcome,
// written atomically: whichever process wrote last, a reader sees a whole file.
const (
	// File is the last selftest: sentinel selftest, or the daemon's selftest command.
	File = "selftest.json"
	// DockingFile is the last sentinel docking-check.
	DockingFile = "docking-check.json"
)

// maxStateFile bounds what Load reads: an outcome is a few hundred bytes.
const maxStateFile = 64 << 10

// Outcome summarises rows as a stored and published outcome from source
// (record.SelftestCLI, ...): ok, the names of the failed checks, when, and the version.
func Outcome(rows []Row, ok bool, source string) record.SelftestState {
	st := record.SelftestState{OK: ok, At: record.TS(time.Now()), Source: source, Version: buildinfo.Get().Version}
	var parts []string
	for _, r := range rows {
		if r.Status == StatusFail {
			st.Failed = append(st.Failed, r.Name)
			parts = append(parts, r.Name+": "+oneLine(r.Detail))
		}
	}
	st.Detail = fmt.Sprintf("%d checks, %d failed", len(rows), len(st.Failed))
	if len(parts) > 0 {
		st.Detail += ": " + strings.Join(parts, "; ")
	}
	return st
}

// Store keeps outcomes in the state directory of the queue at QueuePath.
type Store struct{ QueuePath string }

// Path is where the outcome name (File or DockingFile) is kept.
func (s Store) Path(name string) string { return statefile.Path(s.QueuePath, name) }

// Save stores st as name, atomically.
func (s Store) Save(name string, st record.SelftestState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return statefile.Write(s.Path(name), append(b, '\n'))
}

// Save stores st as the file name (File or DockingFile) beside the queue at queuePath.
func Save(queuePath, name string, st record.SelftestState) error {
	return Store{queuePath}.Save(name, st)
}

// Load reads the outcome stored as name beside the queue at queuePath (Store.Load).
func Load(queuePath, name string) (*record.SelftestState, error) {
	return Store{queuePath}.Load(name)
}

// Load reads the outcome stored as name; nil, nil when none was stored. A file that is not
// a small regular file holding an outcome is an error (it is left as it is).
func (s Store) Load(name string) (*record.SelftestState, error) {
	path := s.Path(name)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("selftest: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("selftest: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxStateFile {
		return nil, fmt.Errorf("selftest: %s is not a small regular file", path)
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("selftest: read %s: %w", path, err)
	}
	var st record.SelftestState
	if err := json.Unmarshal(b, &st); err != nil || st.At == "" {
		return nil, fmt.Errorf("selftest: %s does not hold an outcome", path)
	}
	return &st, nil
}

// PlatformCheck is the selftest's platform row on its own (a ping, and a signed request
// when signing is on): the docking verification the daemon repeats while it runs. It
// claims nothing.
func PlatformCheck(ctx context.Context, cfg *config.Config, opt Options) record.SelftestState {
	rows, ok := runChecks(ctx, cfg, opt.withDefaults(), []check{{"platform", checkPlatform}})
	st := Outcome(rows, ok, record.SelftestPlatform)
	if len(rows) == 1 {
		st.Detail = oneLine(rows[0].Detail)
	}
	return st
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
