package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/verify"
)

// try prints the platform's answer so that a wrong path can be seen and fixed: its
// structure (every key in its order, duplicates too, and each value's type), without the
// personal data it may carry wherever the mapping does not look (a name at another key, in an
// array, in a message). A value shows in clear only at a path where the mapping reads a
// non-personal field (result code, colour, test result and times, vaccine, request id, ...)
// and only when it looks like one; every other string shows as its length, an ID number as
// elsewhere (3505**********1237), a number as «number».

const (
	maxDumpDepth = 32 // deeper containers show as «…»
	maxDumpItems = 20 // elements shown of one array
)

// answerView says how each value of an answer shows.
type answerView struct {
	exact    map[string]verify.Reading // the non-personal fields the mapping reads, by path
	patterns []pathPattern             // those whose path has [] (the newest element of an array)
	mk       *masker
}

type pathPattern struct {
	re *regexp.Regexp
	r  verify.Reading
}

func newAnswerView(reads []verify.Reading, mk *masker) answerView {
	v := answerView{exact: map[string]verify.Reading{}, mk: mk}
	for _, r := range reads {
		switch {
		case r.Personal:
		case strings.Contains(r.Path, "[]"):
			re := strings.ReplaceAll(regexp.QuoteMeta(r.Path), `\[\]`, `\[\d+\]`)
			v.patterns = append(v.patterns, pathPattern{regexp.MustCompile("^" + re + "$"), r})
		default:
			v.exact[r.Path] = r
		}
	}
	return v
}

// mapped is the non-personal field the mapping reads at path.
func (v answerView) mapped(path string) (verify.Reading, bool) {
	if r, ok := v.exact[path]; ok {
		return r, true
	}
	for _, p := range v.patterns {
		if p.re.MatchString(path) {
			return p.r, true
		}
	}
	return verify.Reading{}, false
}

// plainText is printable ASCII, at most 128 characters.
var plainText = regexp.MustCompile(`^[\x20-\x7e]{1,128}$`)

// shownClear says whether s, the value of the non-personal field r, may show in clear: a
// value the mapping itself names (a colour 绿码 it maps to green, a time it parses), or
// plain text (ID numbers in it are masked all the same); never a name a platform put in
// a free-text field (a request id, a code).
func shownClear(r verify.Reading, s string) bool {
	return plainText.MatchString(s) || (r.Problem == "" && r.Raw == s && r.Value != r.Raw)
}

// text is how the string s at path shows.
func (v answerView) text(path, s string) string {
	if r, ok := v.mapped(path); ok && shownClear(r, s) {
		return jsonText(v.mk.mask(s))
	}
	if t := strings.TrimSpace(s); idLike.FindString(t) == t && t != "" {
		return jsonText(privacy.MaskID(t))
	}
	return fmt.Sprintf("«%d chars»", utf8.RuneCountInString(s))
}

func jsonText(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// printAnswer prints an answer as v shows it, each line indented by two spaces.
func printAnswer(w io.Writer, raw []byte, v answerView) {
	d := dumper{dec: json.NewDecoder(bytes.NewReader(raw)), view: v}
	d.dec.UseNumber()
	err := d.value("", 0)
	if err == nil {
		if _, terr := d.dec.Token(); !errors.Is(terr, io.EOF) {
			d.b.WriteString(fmt.Sprintf("\n(more after the JSON value: %d bytes)", int64(len(raw))-d.dec.InputOffset()))
		}
	}
	if err != nil {
		fmt.Fprintf(w, "  (not JSON, %d bytes)\n", len(raw))
		return
	}
	fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(d.b.String(), "\n", "\n  "))
}

type dumper struct {
	dec  *json.Decoder
	b    strings.Builder
	view answerView
}

func (d *dumper) newline(depth int) {
	d.b.WriteString("\n" + strings.Repeat("  ", depth))
}

// value prints the next value of the answer, found at path.
func (d *dumper) value(path string, depth int) error {
	tok, err := d.dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxDumpDepth {
			d.b.WriteString("«…»")
			return d.skipRest()
		}
		return d.container(t, path, depth)
	case string:
		d.b.WriteString(d.view.text(path, t))
	case json.Number:
		if _, ok := d.view.mapped(path); ok {
			d.b.WriteString(t.String())
		} else {
			d.b.WriteString("«number»")
		}
	case bool:
		fmt.Fprint(&d.b, t)
	case nil:
		d.b.WriteString("null")
	}
	return nil
}

// container prints an object or an array whose opening delim was read.
func (d *dumper) container(open json.Delim, path string, depth int) error {
	d.b.WriteString(open.String())
	n := 0
	for ; d.dec.More(); n++ {
		if n > 0 {
			d.b.WriteString(",")
		}
		d.newline(depth + 1)
		if open == '[' {
			if n == maxDumpItems {
				more := 0
				for ; d.dec.More(); more++ {
					if err := d.skipValue(); err != nil {
						return err
					}
				}
				fmt.Fprintf(&d.b, "«… %d more»", more)
				break
			}
			if err := d.value(fmt.Sprintf("%s[%d]", path, n), depth+1); err != nil {
				return err
			}
			continue
		}
		kt, err := d.dec.Token()
		if err != nil {
			return err
		}
		key, _ := kt.(string)
		d.b.WriteString(jsonText(key) + ": ")
		if err := d.value(keyPath(path, key), depth+1); err != nil {
			return err
		}
	}
	if _, err := d.dec.Token(); err != nil { // the closing delim
		return err
	}
	if n > 0 {
		d.newline(depth)
	}
	if open == '{' {
		d.b.WriteString("}")
	} else {
		d.b.WriteString("]")
	}
	return nil
}

// keyPath is the mapping path of key in the object at path. A key a mapping path cannot
// name (with a dot or a bracket) gets a path no field has.
func keyPath(path, key string) string {
	if key == "" || strings.ContainsAny(key, ".[]") {
		key = "\x00" + key
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// skipValue reads the next value without printing it.
func (d *dumper) skipValue() error {
	tok, err := d.dec.Token()
	if err != nil {
		return err
	}
	if _, open := tok.(json.Delim); open {
		return d.skipRest()
	}
	return nil
}

// skipRest reads the rest of a container whose opening delim was read.
func (d *dumper) skipRest() error {
	for depth := 1; depth > 0; {
		tok, err := d.dec.Token()
		if err != nil {
			return err
		}
		if delim, ok := tok.(json.Delim); ok {
			if delim == '{' || delim == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}
