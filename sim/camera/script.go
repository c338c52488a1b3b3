package camera

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	_ "image/png" // scripts may name PNG images
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Kinds of script step.
const (
	KindImage   = "image"   // IMAGE SECONDS: serve IMAGE for SECONDS
	KindStall   = "stall"   // !stall SECONDS: keep the connections open, send nothing
	KindGarbage = "garbage" // !garbage SECONDS: send bytes that hold no boundary
	KindDrop    = "drop"    // !drop: close every open /stream connection
	KindCorrupt = "corrupt" // !corrupt: send one part that is not a JPEG
	KindHuge    = "huge"    // !huge BYTES: send one part of BYTES bytes
)

// ErrScript is a script that does not parse.
var ErrScript = errors.New("camera: bad script")

// MaxHuge bounds a !huge part.
const MaxHuge = 256 << 20

// Step is one line of a script.
type Step struct {
	Kind     string
	Image    string        // KindImage: the file, as written
	Duration time.Duration // KindImage, KindStall, KindGarbage
	Bytes    int           // KindHuge
	Line     int
	frame    []byte // KindImage: the JPEG served
}

// Script is a parsed script with its images loaded.
type Script struct {
	Steps []Step
}

// LoadScript reads the script at path; image paths are relative to its directory.
func LoadScript(path string) (*Script, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("camera: script: %w", err)
	}
	defer f.Close()
	return ParseScript(f, path, filepath.Dir(path))
}

// ParseScript parses a script (name for messages; dir for relative image paths). Lines:
//
//	IMAGE SECONDS      serve IMAGE (JPEG or PNG) for SECONDS (a number, or a Go duration)
//	!stall SECONDS     send nothing for SECONDS, connections held open
//	!garbage SECONDS   send bytes that hold no boundary for SECONDS
//	!drop              close every open /stream connection
//	!corrupt           send one part that is not a JPEG
//	!huge BYTES        send one part of BYTES bytes
//
// Blank lines and lines starting with # are ignored. A script needs at least one image.
func ParseScript(r io.Reader, name, dir string) (*Script, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	s := &Script{}
	cache := map[string][]byte{}
	images := 0
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		st, err := parseStep(f, line)
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %v", ErrScript, name, line, err)
		}
		if st.Kind == KindImage {
			p := st.Image
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			if st.frame = cache[p]; st.frame == nil {
				if st.frame, err = loadFrame(p); err != nil {
					return nil, fmt.Errorf("%w: %s:%d: %v", ErrScript, name, line, err)
				}
				cache[p] = st.frame
			}
			images++
		}
		s.Steps = append(s.Steps, st)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrScript, name, err)
	}
	if images == 0 {
		return nil, fmt.Errorf("%w: %s: no image step", ErrScript, name)
	}
	return s, nil
}

func parseStep(f []string, line int) (Step, error) {
	st := Step{Line: line}
	if !strings.HasPrefix(f[0], "!") {
		if len(f) != 2 {
			return st, errors.New("want IMAGE SECONDS")
		}
		d, err := parseSeconds(f[1])
		if err != nil {
			return st, err
		}
		st.Kind, st.Image, st.Duration = KindImage, f[0], d
		return st, nil
	}
	st.Kind = strings.TrimPrefix(f[0], "!")
	switch st.Kind {
	case KindStall, KindGarbage:
		if len(f) != 2 {
			return st, fmt.Errorf("want !%s SECONDS", st.Kind)
		}
		d, err := parseSeconds(f[1])
		st.Duration = d
		return st, err
	case KindDrop, KindCorrupt:
		if len(f) != 1 {
			return st, fmt.Errorf("!%s takes no argument", st.Kind)
		}
		return st, nil
	case KindHuge:
		if len(f) != 2 {
			return st, errors.New("want !huge BYTES")
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n <= 0 || n > MaxHuge {
			return st, fmt.Errorf("!huge wants 1 to %d bytes, got %q", MaxHuge, f[1])
		}
		st.Bytes = n
		return st, nil
	}
	return st, fmt.Errorf("unknown directive %q (known: !stall, !garbage, !drop, !corrupt, !huge)", f[0])
}

// parseSeconds reads "5", "0.5" or a Go duration ("500ms"); at most 24h.
func parseSeconds(s string) (time.Duration, error) {
	var d time.Duration
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		d = time.Duration(v * float64(time.Second))
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, fmt.Errorf("want seconds (5, 0.5) or a duration (500ms), got %q", s)
	}
	if d <= 0 || d > 24*time.Hour {
		return 0, fmt.Errorf("duration must be > 0 and at most 24h, got %q", s)
	}
	return d, nil
}

// loadFrame reads an image file: a JPEG is served as it is, another image is encoded.
func loadFrame(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) > 3 && b[0] == 0xFF && b[1] == 0xD8 {
		if _, err := jpeg.DecodeConfig(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		return b, nil
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: not a JPEG or PNG image: %v", path, err)
	}
	return EncodeJPEG(img, 85)
}

// Total is the script's length.
func (s *Script) Total() time.Duration {
	var t time.Duration
	for _, st := range s.Steps {
		t += st.Duration
	}
	return t
}
