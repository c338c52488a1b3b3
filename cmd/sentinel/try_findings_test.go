package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/internal/privacy"
	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
)

// A tester's hostile platform (issue: try, docking-check and report calls findings): answers
// that are about someone else, carry names where the mapping does not look, come with a
// status no passage accepts, and tokens whose encoded forms differ from the raw one.

const (
	hostileID    = "350582199001011231" // a valid check digit
	hostileOther = "11010519491231002X"
)

// hostileAnswer is a success answer in the reference dialect about id and name.
func hostileAnswer(id, name string) map[string]any {
	fresh := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
	return map[string]any{"code": "ok", "message": "", "request_id": "p-hostile",
		"data": map[string]any{
			"identity":    map[string]any{"id_number": id, "name": name, "match": true},
			"health_code": "green",
			"nat":         map[string]any{"result": "negative", "sampled_at": fresh, "reported_at": fresh},
			"vaccine":     map[string]any{"doses": 3, "last_date": "2022-01-05"},
		}}
}

// hostileUnit is a unit (unsigned, reference dialect or the mapping file given) whose
// platform is answer: it is given each request's decoded JSON body.
func hostileUnit(t *testing.T, mapping string, answer func(w http.ResponseWriter, r *http.Request, req map[string]any)) *unit {
	t.Helper()
	extra := ""
	if mapping != "" {
		extra = ", mapping: " + mapping
	}
	u := newUnit(t, unitOpts{unsigned: true, extra: extra})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		_, _ = u.log.Write([]byte(r.Method + " " + r.URL.Path + "\n"))
		if strings.HasSuffix(r.URL.Path, "/ping") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"code":"ok"}`))
			return
		}
		answer(w, r, req)
	}))
	t.Cleanup(srv.Close)
	u.setURL(t, srv.URL)
	return u
}

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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
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

// wrongNameMapping is the reference mapping reading the name at data.identity.fullname.
func wrongNameMapping(t *testing.T) string {
	t.Helper()
	ref, err := os.ReadFile("../../configs/mappings/reference.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(ref), "name: {path: data.identity.name}", "name: {path: data.identity.fullname}", 1)
	y = strings.Replace(y, `"name": "张三"`, `"fullname": "张三"`, 1) // its sample too, as a platform's documents would have it
	if strings.Count(y, "fullname") != 2 {
		t.Fatal("the reference mapping no longer reads data.identity.name")
	}
	p := filepath.Join(t.TempDir(), "wrong-name.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Finding 1: with the name read at the wrong path, try printed the answer with the name (and
// names in arrays and free text) in clear. The dump keeps the structure; a string shows in
// clear only at a non-personal field the mapping reads there.
func TestTryFindingAnswerDumpMasked(t *testing.T) {
	u := hostileUnit(t, wrongNameMapping(t), func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		a := hostileAnswer(hostileID, "张三")
		a["message"] = "sfzh" + hostileID + "_ok name=李四 tel 13800138000"
		a["data"].(map[string]any)["family"] = []any{"王小明", map[string]any{"xm": "赵六", "zjhm": hostileOther}}
		writeJSON(w, http.StatusOK, a)
	})
	code, out, errb := runCmd("try", "--config", u.cfg, "--qr", "HC-GREEN-TOKEN-0001")
	leakFree(t, out+errb, "张三", "李四", "王小明", "赵六", "13800138000", "HC-GREEN-TOKEN-0001")
	if code != exitFailure || !strings.Contains(out, "NOT RESOLVED") {
		t.Errorf("a name at the wrong path: exit %d, want 1 and the name NOT RESOLVED: %s", code, idLike.ReplaceAllStringFunc(errb, privacy.MaskID))
	}
	for _, want := range []string{`"health_code": "green"`, `"request_id": "p-hostile"`, `"result": "negative"`, `"code": "ok"`,
		`"doses": 3`, `"match": true`, `"name": «2 chars»`, `"xm": «2 chars»`, `"zjhm": "1101**********002X"`, `"family": [`} {
		if !strings.Contains(out, want) {
			t.Errorf("the answer's dump lacks %s:\n%s", want, idLike.ReplaceAllStringFunc(out, privacy.MaskID))
		}
	}

	// Names in the fields the mapping reads as free text (the request id, the code) are not
	// shown there, nor where the table and the platform's errors quote them.
	u = hostileUnit(t, "", func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		a := hostileAnswer(hostileID, "张三")
		a["request_id"], a["code"] = "p-1 李四", "王小明 "+hostileID
		writeJSON(w, http.StatusNotFound, a)
	})
	_, out, errb = runCmd("try", "--config", u.cfg, "--qr", "HC-GREEN-TOKEN-0001")
	leakFree(t, out+errb, "张三", "李四", "王小明")
	if !strings.Contains(out, `"request_id": «6 chars»`) || !strings.Contains(out, `"health_code": "green"`) {
		t.Errorf("free text at a mapped field:\n%s", idLike.ReplaceAllStringFunc(out, privacy.MaskID))
	}
}

// Finding 2: the token was masked by replacing its raw text, so its JSON-escaped form leaked;
// and a short token garbled every other occurrence of its letters.
func TestTryFindingTokenEncodings(t *testing.T) {
	for _, tt := range []struct{ dialect, token string }{
		{platform.DialectReference, `HC-SECRET<1>&"x\y`},
		{platform.DialectProvince, `HC-SECRET&B+C/D=E%F`},
		{platform.DialectVendorSorted, `HC-SECRET&B+C/D=E%F<q>\x`},
	} {
		t.Run(tt.dialect, func(t *testing.T) {
			u := newUnit(t, unitOpts{dialect: tt.dialect, signed: true})
			_, out, errb := runCmd("try", "--config", u.cfg, "--qr", tt.token)
			jsonForm, _ := json.Marshal(tt.token)
			forms := []string{tt.token, strings.Trim(string(jsonForm), `"`), url.QueryEscape(tt.token), url.PathEscape(tt.token), strings.Trim(jsonQuote(tt.token), `"`)}
			leakFree(t, out+errb, forms...)
			if !strings.Contains(out, privacy.MaskToken(tt.token)) {
				t.Errorf("the request does not show the token as %s", privacy.MaskToken(tt.token))
			}
		})
	}
	t.Run("short with escapes", func(t *testing.T) {
		u := newUnit(t, unitOpts{})
		_, out, errb := runCmd("try", "--config", u.cfg, "--qr", "a<b>c")
		leakFree(t, out+errb, "a<b>c", `a\u003cb\u003ec`)
		if !strings.Contains(out, `"qr_token":"tok(5)"`) {
			t.Errorf("the request does not show the token as tok(5):\n%s", strings.ReplaceAll(out+errb, "a<b>c", "«token»"))
		}
	})
	for _, token := range []string{"ok", "e", "qr"} {
		t.Run("short "+token, func(t *testing.T) {
			u := newUnit(t, unitOpts{})
			_, out, _ := runCmd("try", "--config", u.cfg, "--qr", token)
			for _, want := range []string{`"qr_token":"` + privacy.MaskToken(token) + `"`, "Request (audited, purpose commissioning", "Verdict by the policy in force", "Mapped fields:", "request_id", "Result: NOT PROVEN"} {
				if !strings.Contains(out, want) {
					t.Errorf("--qr %s: the output lacks %q (masking garbled it?):\n%s", token, want, out)
				}
			}
			if strings.Count(out, "tok(") > 3 {
				t.Errorf("--qr %s: masked %d times, more than the request carries it:\n%s", token, strings.Count(out, "tok("), out)
			}
		})
	}
}

// resultLine is try's last line, its result.
func resultLine(out string) string {
	if i := strings.LastIndex(out, "Result:"); i >= 0 {
		return out[i:]
	}
	return "(no result line)"
}

// jsonQuote is a string as Go's %q writes it (the signed string is printed so).
func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b))
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

// Finding 4: try said OK (exit 0) for answers every passage denies as a platform problem.
func TestTryFindingNot200(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		want   string
	}{
		{"redirect to the same host", http.StatusFound, "HTTP 302"},
		{"201", http.StatusCreated, "HTTP 201"},
		{"404 with a success body", http.StatusNotFound, "HTTP 404"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := hostileUnit(t, "", func(w http.ResponseWriter, r *http.Request, req map[string]any) {
				if tt.status == http.StatusFound {
					w.Header().Set("Location", r.URL.Path)
				}
				writeJSON(w, tt.status, hostileAnswer(hostileID, "张三"))
			})
			code, out, errb := runCmd("try", "--config", u.cfg, "--qr", "HC-GREEN-TOKEN-0001")
			leakFree(t, out+errb, "张三")
			res := resultLine(out)
			if code != exitFailure || !strings.Contains(res, "NOT PROVEN") || !strings.Contains(res, tt.want) {
				t.Errorf("exit %d, want 1 and NOT PROVEN naming %s: %s", code, tt.want, res)
			}
		})
	}
}

// Finding 5: the platform answered an ID-card query about another person; try exited 0 and
// docking-check certified the mapping.
func TestTryFindingAnswerAboutAnotherPerson(t *testing.T) {
	u := hostileUnit(t, "", func(w http.ResponseWriter, _ *http.Request, req map[string]any) {
		if req["qr_token"] != nil {
			writeJSON(w, http.StatusOK, map[string]any{"code": "not_found", "request_id": "p-nf"})
			return
		}
		writeJSON(w, http.StatusOK, hostileAnswer(hostileOther, "李四"))
	})
	code, out, errb := runCmd("try", "--config", u.cfg, "--idcard", hostileID, "--name", "张三")
	leakFree(t, out+errb, "张三", "李四")
	res := resultLine(out)
	if code != exitFailure || !strings.Contains(res, "NOT PROVEN") || !strings.Contains(res, "1101**********002X") || !strings.Contains(res, "3505**********1231") {
		t.Errorf("try: exit %d, want 1, NOT PROVEN naming both ID numbers masked: %s", code, idLike.ReplaceAllStringFunc(res, privacy.MaskID))
	}
	code, out, errb = runCmd("docking-check", "--config", u.cfg, "--idcard", hostileID, "--name", "张三", "--format", "json")
	leakFree(t, out+errb, "张三", "李四")
	_, rows := reportRows(t, out)
	row := rows["known credential mapped completely (idcard)"]
	if code != exitFailure || row.Pass || !strings.Contains(row.Detail, "1101**********002X") || !strings.Contains(row.Detail, "not the one asked") {
		t.Errorf("docking-check: exit %d, row %+v; want it failed naming the answer's ID number masked", code, row)
	}
}

// Finding 7: --face with a file that is not a JPEG said "deny malformed_scan (online)" though
// no call was made; it is bad input (exit 2).
func TestTryFindingFaceNotJPEG(t *testing.T) {
	u := newUnit(t, unitOpts{})
	notJPEG := filepath.Join(u.dir, "face.png")
	if err := os.WriteFile(notJPEG, []byte("\x89PNG\r\n\x1a\nnot a jpeg"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errb := runCmd("try", "--config", u.cfg, "--face", notJPEG)
	if code != exitUsage || !strings.Contains(out+errb, "no call was made") || strings.Contains(out, "(online)") || u.log.lines() != 0 {
		t.Errorf("exit %d, %d requests, want 2 and no call:\n%s%s", code, u.log.lines(), out, errb)
	}
}
