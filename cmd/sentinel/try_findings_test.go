package main

import (
	"os"
	"strings"
	"testing"

	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/sim/population"
)

// A tester's hostile platform (issue: try, docking-check and report calls findings): answers
// that are about someone else, carry names where the mapping does not look, come with a
// status no passage accepts, and tokens whose encoded forms differ from the raw one.

// setURL points the unit's config at another platform URL.
func (u *unit) setURL(t *testing.T, to string) {
	t.Helper()
	cfg, err := os.ReadFile(u.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(u.cfg, []byte(strings.Replace(string(cfg), `"`+u.url+`"`, `"`+to+`"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	u.url = to
}

// leakFree fails when out carries one of secrets or an ID number; what it reports is masked.
func leakFree(t *testing.T, out string, secrets ...string) {
	t.Helper()
	shown := idLike.ReplaceAllStringFunc(out, privacy.MaskID)
	for _, s := range secrets {
		shown = strings.ReplaceAll(shown, s, "«secret»")
	}
	if idNumberRE.MatchString(out) {
		t.Errorf("the output carries an unmasked ID number:\n%s", shown)
	}
	for i, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the output carries secret #%d (%d characters) unmasked:\n%s", i, len(s), shown)
		}
	}
}

// Finding 3: a password in platform.url was printed by try and in docking-check's header.
func TestTryFindingURLPassword(t *testing.T) {
	const pw = "s3cr3tpw"
	u := newUnit(t, unitOpts{})
	withPW := strings.Replace(u.url, "http://", "http://user:"+pw+"@", 1)
	u.setURL(t, withPW)
	for _, args := range [][]string{
		{"try", "--config", u.cfg, "--qr", population.TokenGreenFresh},
		{"docking-check", "--config", u.cfg, "--qr", population.TokenGreenFresh},
		{"docking-check", "--config", u.cfg, "--qr", population.TokenGreenFresh, "--format", "json"},
		{"docking-check", "--config", u.cfg, "--qr", population.TokenGreenFresh, "--format", "md"},
	} {
		_, out, errb := runCmd(args...)
		leakFree(t, out+errb, pw)
		if !strings.Contains(out, "user:****@") {
			t.Errorf("%v: the URL is not shown with its password as ****:\n%s", args[:1], strings.ReplaceAll(out, pw, "«pw»"))
		}
	}
	u.setURL(t, "http://user:"+pw+"@127.0.0.1:1")
	_, out, errb := runCmd("try", "--config", u.cfg, "--qr", population.TokenGreenFresh)
	leakFree(t, out+errb, pw)
}
