package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/sim/platform"
	"github.com/sentinel-edge/sentinel/sim/population"
)

// rows reads a JSON report's rows by check name.
func reportRows(t *testing.T, out string) (dockReport, map[string]dockRow) {
	t.Helper()
	var r dockReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	m := map[string]dockRow{}
	for _, row := range r.Rows {
		m[row.Check] = row
	}
	return r, m
}

var dockChecks = []string{
	"ping", "clock offset", "signed request accepted", "known credential mapped completely (qr)",
	"unknown credential recognised as not found", "wrong signature refused as signature_rejected", "answer time within platform.timeout",
}

func TestDockingCheckEveryDialect(t *testing.T) {
	for _, dialect := range []string{platform.DialectReference, platform.DialectProvince, platform.DialectVendorSorted, platform.DialectVendorMD5, platform.DialectVendorSHA256, platform.DialectVendorSM2} {
		t.Run(dialect, func(t *testing.T) {
			u := newUnit(t, unitOpts{dialect: dialect, signed: true})
			fresh := u.person(t, population.TokenGreenFresh)
			code, out, errb := runCmd("docking-check", "--config", u.cfg, "--qr", population.TokenGreenFresh, "--idcard", fresh.IDNumber, "--name", fresh.Name, "--format", "json")
			r, rows := reportRows(t, out)
			if code != exitOK || !r.OK {
				t.Fatalf("exit %d ok=%v:\n%s\n%s", code, r.OK, out, errb)
			}
			for i, c := range append(dockChecks[:4:4], append([]string{"known credential mapped completely (idcard)"}, dockChecks[4:]...)...) {
				if i >= len(r.Rows) || r.Rows[i].Check != c || !r.Rows[i].Pass {
					t.Errorf("row %d: %+v, want %s passed", i, r.Rows, c)
					break
				}
			}
			if rows["wrong signature refused as signature_rejected"].Detail == "" || r.Device != "gate-07" || r.MappingHash == "" || r.Version == "" || r.AppKey != testAppKey {
				t.Errorf("report %+v", r)
			}
			u.noPersonalData(t, out+errb)
			// ping, two known, one unknown, one wrong signature: five calls, five rows.
			audit := u.auditRows(t)
			if len(audit) != 5 || u.log.lines() != 5 {
				t.Fatalf("%d audit rows, %d requests, want 5", len(audit), u.log.lines())
			}
			if audit[0].Interface != "ping" || audit[3].Result != "not_found" || audit[4].Result != "signature_rejected" || audit[4].Signature != "rejected" {
				t.Errorf("audit %+v", audit)
			}
		})
	}
}

func TestDockingCheckFailures(t *testing.T) {
	tests := []struct {
		name  string
		o     unitOpts
		args  []string
		fails []string
	}{
		{"signing off", unitOpts{unsigned: true}, nil, []string{"signed request accepted", "wrong signature refused as signature_rejected"}},
		{"a platform that takes any signature", unitOpts{}, nil, []string{"wrong signature refused as signature_rejected"}},
		{"wrong secret", unitOpts{signed: true, secret: "a-guess"}, nil, []string{"signed request accepted", "known credential mapped completely (qr)", "unknown credential recognised as not found"}},
		{"no known credential", unitOpts{signed: true}, []string{}, []string{"known credential mapped completely"}},
		{"known credential without a test", unitOpts{signed: true}, []string{"--qr", population.TokenGreenNoNAT}, []string{"known credential mapped completely (qr)"}},
		{"platform clock a minute off", unitOpts{signed: true, skew: time.Minute}, nil, []string{"clock offset"}},
		{"answers slower than platform.timeout", unitOpts{signed: true, delay: 300 * time.Millisecond, timeout: "200ms"}, nil,
			[]string{"known credential mapped completely (qr)", "unknown credential recognised as not found", "signed request accepted", "answer time within platform.timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t, tt.o)
			args := tt.args
			if args == nil {
				args = []string{"--qr", population.TokenGreenFresh}
			}
			code, out, errb := runCmd(append([]string{"docking-check", "--config", u.cfg, "--format", "json"}, args...)...)
			r, rows := reportRows(t, out)
			if code != exitFailure || r.OK {
				t.Errorf("exit %d ok=%v, want 1:\n%s\n%s", code, r.OK, out, errb)
			}
			for _, c := range tt.fails {
				if row, ok := rows[c]; !ok || row.Pass {
					t.Errorf("row %q: %+v, want a failure", c, row)
				}
			}
			for _, row := range r.Rows {
				failed := !row.Pass
				want := false
				for _, c := range tt.fails {
					want = want || row.Check == c
				}
				if failed != want {
					t.Errorf("row %q pass=%v (%s)", row.Check, row.Pass, row.Detail)
				}
			}
			u.noPersonalData(t, out+errb)
		})
	}
}

func TestDockingCheckFormats(t *testing.T) {
	u := newUnit(t, unitOpts{dialect: platform.DialectVendorSorted, signed: true})
	code, out, _ := runCmd("docking-check", "--config", u.cfg, "--qr", population.TokenGreenFresh)
	if code != exitOK || !strings.Contains(out, "Docking verification report") || !strings.Contains(out, "PASS: every check passed") || !strings.Contains(out, "mapping:  vendor-sorted") {
		t.Errorf("text: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd("docking-check", "--config", u.cfg, "--qr", population.TokenGreenFresh, "--format", "md")
	if code != exitOK || !strings.Contains(out, "| check | result | ms | detail |") || !strings.Contains(out, "| ping | PASS |") || !strings.Contains(out, "**PASS") {
		t.Errorf("md: exit %d\n%s", code, out)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "pdf"}, "--format must be text, md or json"},
		{[]string{"--idcard", "110105194912310021"}, "--idcard and --name go together"},
		{[]string{"--max-clock-offset", "0s"}, "--max-clock-offset must be > 0"},
	} {
		code, out, errb := runCmd(append([]string{"docking-check", "--config", u.cfg}, tt.args...)...)
		if code != exitUsage || !strings.Contains(errb, tt.want) {
			t.Errorf("%v: exit %d %s%s", tt.args, code, out, errb)
		}
	}
	if code, out, _ := runCmd("docking-check", "--help"); code != exitOK || !strings.Contains(out, "wrong signature") {
		t.Errorf("help: %d %s", code, out)
	}
}
