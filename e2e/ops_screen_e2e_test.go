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

// browser is headless Chromium on one page, at the unit display's size.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string // SENTINEL_SCREENSHOTS: where screen-NAME.png go ("": none)
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	chrome := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1024, 600),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("headless", "new"))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 120*time.Second)
	t.Cleanup(func() { cancelT(); cancel(); cancelA() })
	return &browser{t: t, ctx: ctx, shots: os.Getenv("SENTINEL_SCREENSHOTS")}
}

func (b *browser) open(url string) {
	b.t.Helper()
	// The unit's display: 1024×600, whatever the window's frame takes.
	if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(1024, 600), chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("open %s: %v", url, err)
	}
}

// shot saves the screen as screen-NAME.png under SENTINEL_SCREENSHOTS.
func (b *browser) shot(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, "screen-"+name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// wait waits until sel is visible.
func (b *browser) wait(what, sel string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		// A fresh deadline: b.ctx may be the one that ran out.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 5*time.Second)
		defer cancel()
		state, _ := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("body"), "data-state"))
		b.t.Fatalf("the page never showed %s (%s): %v; body state %q", what, sel, err, state.Value)
	}
}

// visible says whether sel matches a rendered element now.
func (b *browser) visible(sel string) bool {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden"; })()`, sel)))
	if err != nil {
		b.t.Fatalf("visible %s: %v", sel, err)
	}
	return v
}

// noStaffToStaff fails when the page sends anyone to "the staff" (issue #14, finding 6: the
// staff read it): the person is told what happens, the staff what to do.
func (b *browser) noStaffToStaff(what string) {
	b.t.Helper()
	body := b.text("body")
	for _, bad := range []string{"see the staff", "联系工作人员"} {
		if strings.Contains(body, bad) {
			b.t.Errorf("%s: the screen says %q", what, bad)
		}
	}
}

// TestE2EScreenChromium drives headless Chromium against the verdict screen of a running
// agent: the idle screen, then a pass, a deny, an unknown code (a line for the person and one
// for the staff), an offline decision, and the idle screen while the platform is offline
// with offline_policy deny (issue #14, finding 6: it still said "please scan"). With
// SENTINEL_SCREENSHOTS=DIR it saves screen-idle, pass, deny, deny-staff, offline-verdict and
// offline .png there.
func TestE2EScreenChromium(t *testing.T) {
	br := newBrowser(t)
	broker := mqtttest.Start(t)
	w := newWorld(t)
	proxy := newSwitchableProxy(t, w.APIAddr)
	port := freePort(t)
	extra := fmt.Sprintf("screen: {listen: \"127.0.0.1:%d\", verdict_hold: 1500ms}\nmetrics: {listen: \"off\"}\n"+
		"install: {unit: 福清市某某超市, location: 北门入口, brand: Acme, style_label: 闸机一体机}\nstatus: {heartbeat: 1s}\n", port)
	ag := w.agent(t, opsConfig(w, "screen-gate-01", proxy.Addr(), broker.URL(), extra))
	page := fmt.Sprintf("http://127.0.0.1:%d/", port)

	// Idle: the venue, the time, the unit's state, and what this gate takes: a QR code.
	br.open(page)
	br.wait("the idle screen", `body[data-state="idle"] #idle`)
	if err := chromedp.Do(br.ctx, chromedp.WaitVisible(`//b[@id="s-platform" and contains(., "online")]`)); err != nil {
		t.Fatalf("the platform never showed online: %v", err)
	}
	if v := br.text("#idle-venue"); v != "福清市某某超市" {
		t.Errorf("idle venue %q", v)
	}
	if c := br.text("#clock"); !regexp.MustCompile(`^\d\d:\d\d:\d\d$`).MatchString(c) {
		t.Errorf("idle clock %q", c)
	}
	if p := br.text("#prompt"); !strings.Contains(p, "请扫描健康码") || !strings.Contains(p, "Scan your health code") {
		t.Errorf("idle prompt %q", p)
	}
	br.shot("idle")

	// A pass: green, the word and the icon, the masked subject, the health code.
	fmt.Fprintln(w.Scan, "HC-GREEN-FRESH")
	br.wait("a pass", `#verdict[data-verdict="pass"]`)
	if s := br.text("#v-word"); !strings.Contains(s, "通过") || !strings.Contains(s, "PASS") {
		t.Errorf("pass word %q", s)
	}
	if s := br.text("#subject"); !regexp.MustCompile(`^.\*\s+\d{4}\*{10}[\dX]{4}$`).MatchString(s) {
		t.Errorf("subject on screen %q is not masked as 张* 3505**********1234", s)
	}
	if idNumber.MatchString(br.text("body")) {
		t.Error("the page shows an unmasked ID number")
	}
	if s := br.text("#health"); !strings.Contains(s, "绿码") || !strings.Contains(s, "Green") {
		t.Errorf("health code %q: the colour must be named, not only shown", s)
	}
	if s := br.text("#nat"); !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d$`).MatchString(s) {
		t.Errorf("sampling time %q", s)
	}
	if !br.visible("#v-icon svg") {
		t.Error("the pass icon is not an SVG")
	}
	br.shot("pass")

	// A deny: red, the reason in Chinese and English.
	fmt.Fprintln(w.Scan, "HC-RED")
	br.wait("a deny", `#verdict[data-verdict="deny"][data-reason="health_code_red"]`)
	if zh, en := br.text("#reason-zh"), br.text("#reason-en"); !strings.Contains(zh, "红码") || !strings.Contains(en, "red") {
		t.Errorf("deny reason %q / %q", zh, en)
	}
	if s := br.text("#v-word"); !strings.Contains(s, "禁止通行") || !strings.Contains(s, "DENIED") {
		t.Errorf("deny word %q", s)
	}
	br.shot("deny")

	// A code the platform does not know: the person waits, the staff checks by hand.
	fmt.Fprintln(w.Scan, "HC-UNKNOWN-0001")
	br.wait("an unknown code", `#verdict[data-verdict="deny"][data-reason="unknown_credential"]`)
	if en := br.text("#reason-en"); !strings.Contains(en, "Please wait") {
		t.Errorf("the person is not told what happens: %q", en)
	}
	if !br.visible("#v-staff") || !strings.Contains(br.text("#v-staff"), "by hand") {
		t.Errorf("no staff line on an unknown code: %q", br.text("#verdict"))
	}
	br.noStaffToStaff("an unknown code")
	br.shot("deny-staff")

	// The platform goes away: an offline decision, then the idle screen says what to do.
	proxy.Down()
	fmt.Fprintln(w.Scan, "HC-GREEN-FRESH")
	ag.waitFor(t, regexp.MustCompile(`msg=passage .*mode=offline`), 10*time.Second)
	br.wait("the offline banner", `#verdict[data-verdict="deny"] #v-banner:not(.hidden)`)
	if s := br.text("#v-banner"); !strings.Contains(s, "Offline") {
		t.Errorf("offline banner %q", s)
	}
	br.noStaffToStaff("an offline decision")
	br.shot("offline-verdict")
	br.wait("the offline idle screen", `body[data-state="offline"] #offline`)
	if s := br.text("#offline"); !strings.Contains(s, "by hand") || !strings.Contains(s, "人工查验") {
		t.Errorf("offline_policy deny: the idle screen does not tell the staff to check by hand: %q", s)
	}
	if br.visible("#prompt") {
		t.Errorf("offline_policy deny: the idle screen still asks for a scan: %q", br.text("#prompt"))
	}
	br.noStaffToStaff("the offline idle screen")
	br.shot("offline")
}
