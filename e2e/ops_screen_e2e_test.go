package e2e_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sentinel-edge/sentinel/internal/mqtttest"
)

// chromiumPath finds Debian's chromium; without it the test skips, unless
// SENTINEL_REQUIRE_MOSQUITTO=1 (CI) makes a missing browser a failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(mqtttest.RequireEnv) == "1" {
		t.Fatal("chromium not found: apt-get install chromium (scripts/install-deps.sh installs it)")
	}
	t.Skipf("chromium not found (apt-get install chromium, or set %s=1 to make this fatal)", mqtttest.RequireEnv)
	return ""
}

// switchableProxy forwards to the platform until Down, when it closes its listener: the
// platform becomes unreachable for the agent.
type switchableProxy struct {
	l   net.Listener
	srv *http.Server
}

func newSwitchableProxy(t *testing.T, target string) *switchableProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://" + target)
	p := &switchableProxy{l: l, srv: &http.Server{Handler: httputil.NewSingleHostReverseProxy(u), ReadHeaderTimeout: 5 * time.Second}}
	go func() { _ = p.srv.Serve(l) }()
	t.Cleanup(func() { _ = p.srv.Close() })
	return p
}

func (p *switchableProxy) Addr() string { return p.l.Addr().String() }
func (p *switchableProxy) Down()        { _ = p.srv.Close() }

// TestE2EScreenChromium drives headless Chromium against the verdict screen of a running
// agent: the idle screen, then a pass, a deny and an offline decision pushed by scans.
// With SENTINEL_SCREENSHOTS=DIR it also saves screen-idle/pass/deny/offline.png there.
func TestE2EScreenChromium(t *testing.T) {
	chrome := chromiumPath(t)
	broker := mqtttest.Start(t)
	w := newWorld(t)
	proxy := newSwitchableProxy(t, w.APIAddr)
	port := freePort(t)
	extra := fmt.Sprintf("screen: {listen: \"127.0.0.1:%d\", verdict_hold: 1500ms}\nmetrics: {listen: \"off\"}\n"+
		"install: {unit: 福清市某某超市, location: 北门入口, brand: Acme, style_label: 闸机一体机}\nstatus: {heartbeat: 1s}\n", port)
	ag := w.agent(t, opsConfig(w, "screen-gate-01", proxy.Addr(), broker.URL(), extra))
	page := fmt.Sprintf("http://127.0.0.1:%d/", port)
	shots := os.Getenv("SENTINEL_SCREENSHOTS")

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1024, 600),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("headless", "new"))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	shot := func(name string) {
		if shots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, "screen-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	waitSel := func(what, sel string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			state, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.AttributeValue(chromedp.CSS("body"), "data-state"))
			t.Fatalf("the page never showed %s (%s): %v; body state %q", what, sel, err, state.Value)
		}
	}

	// Idle: the venue, the time, the unit's state.
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("open %s: %v", page, err)
	}
	waitSel("the idle screen", `body[data-state="idle"] #idle`)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`//b[@id="s-platform" and contains(., "online")]`)); err != nil {
		t.Fatalf("the platform never showed online: %v", err)
	}
	if v := text("#idle-venue"); v != "福清市某某超市" {
		t.Errorf("idle venue %q", v)
	}
	if c := text("#clock"); !regexp.MustCompile(`^\d\d:\d\d:\d\d$`).MatchString(c) {
		t.Errorf("idle clock %q", c)
	}
	shot("idle")

	// A pass: green, the word and the icon, the masked subject, the health code.
	fmt.Fprintln(w.Scan, "HC-GREEN-FRESH")
	waitSel("a pass", `#verdict[data-verdict="pass"]`)
	if s := text("#v-word"); !strings.Contains(s, "通过") || !strings.Contains(s, "PASS") {
		t.Errorf("pass word %q", s)
	}
	if s := text("#subject"); !regexp.MustCompile(`^.\*\s+\d{4}\*{10}[\dX]{4}$`).MatchString(s) {
		t.Errorf("subject on screen %q is not masked as 张* 3505**********1234", s)
	}
	if idNumber.MatchString(text("body")) {
		t.Error("the page shows an unmasked ID number")
	}
	if s := text("#health"); !strings.Contains(s, "绿码") || !strings.Contains(s, "Green") {
		t.Errorf("health code %q: the colour must be named, not only shown", s)
	}
	if s := text("#nat"); !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d$`).MatchString(s) {
		t.Errorf("sampling time %q", s)
	}
	shot("pass")

	// A deny: red, the reason in Chinese and English.
	fmt.Fprintln(w.Scan, "HC-RED")
	waitSel("a deny", `#verdict[data-verdict="deny"][data-reason="health_code_red"]`)
	if zh, en := text("#reason-zh"), text("#reason-en"); !strings.Contains(zh, "红码") || !strings.Contains(en, "red") {
		t.Errorf("deny reason %q / %q", zh, en)
	}
	if s := text("#v-word"); !strings.Contains(s, "禁止通行") || !strings.Contains(s, "DENIED") {
		t.Errorf("deny word %q", s)
	}
	shot("deny")

	// The platform goes away: an offline decision, then the idle screen says offline.
	proxy.Down()
	fmt.Fprintln(w.Scan, "HC-GREEN-FRESH")
	ag.waitFor(t, regexp.MustCompile(`msg=passage .*mode=offline`), 10*time.Second)
	waitSel("the offline banner", `#verdict[data-verdict="deny"] #v-banner:not(.hidden)`)
	if s := text("#v-banner"); !strings.Contains(s, "Offline") {
		t.Errorf("offline banner %q", s)
	}
	waitSel("the offline idle screen", `body[data-state="offline"] #offline`)
	shot("offline")
}
