package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// runSanboot runs `xpboot sanboot args…` in-process on a cli.App holding
// only the sanboot command, and returns stdout and the exit code.
func runSanboot(t *testing.T, args ...string) (string, int, error) {
	t.Helper()
	out, _, code, err := runInProcess(sanbootCommand, "sanboot", args...)
	return out, code, err
}

func TestSanbootRootPath(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--server", "10.0.0.1", "--iqn", "iqn.2026-01.org.xpboot:disk"}, "iscsi:10.0.0.1::::iqn.2026-01.org.xpboot:disk\n"},
		{[]string{"--server", "10.0.0.1", "--iqn", "iqn.x:d", "--port", "3261", "--lun", "1"}, "iscsi:10.0.0.1::3261:1:iqn.x:d\n"},
		{[]string{"--server", "san", "--iqn", "iqn.x:d", "--lun", "16"}, "iscsi:san:::10:iqn.x:d\n"},
	}
	for _, tt := range tests {
		out, code, err := runSanboot(t, append([]string{"rootpath"}, tt.args...)...)
		if code != 0 || out != tt.want {
			t.Errorf("rootpath %q = %q (code %d, %v), want %q", tt.args, out, code, err, tt.want)
		}
	}
	out, code, _ := runSanboot(t, "rootpath", "--server", "10.0.0.1", "--iqn", "iqn.x:d", "--json")
	var j struct {
		RootPath string         `json:"root_path"`
		Target   map[string]any `json:"target"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j.RootPath != "iscsi:10.0.0.1::::iqn.x:d" || j.Target["iqn"] != "iqn.x:d" {
		t.Errorf("--json: %d %s", code, out)
	}
}

func TestSanbootScript(t *testing.T) {
	out, code, err := runSanboot(t, "script", "--server", "10.77.0.1", "--iqn", "iqn.2024-01.test.xpboot:disk1", "--lun", "1",
		"--chap", "xpbuser:xpbsecret1234", "--mutual-chap", "xpbtarget:targetsecret12",
		"--initiator-iqn", "iqn.2026-01.org.xpboot:client-${mac:hexhyp}", "--no-gateway", "--keep-san")
	if code != 0 {
		t.Fatalf("code %d: %v", code, err)
	}
	want := "#!ipxe\ndhcp\nset initiator-iqn iqn.2026-01.org.xpboot:client-${mac:hexhyp}\n" +
		"set username xpbuser\nset password xpbsecret1234\nset reverse-username xpbtarget\nset reverse-password targetsecret12\n" +
		"clear net0.dhcp/gateway\nset keep-san 1\nsanboot iscsi:10.77.0.1:::1:iqn.2024-01.test.xpboot:disk1 || goto failed\n"
	if !strings.HasPrefix(out, want) {
		t.Errorf("script:\n%s\nwant prefix:\n%s", out, want)
	}

	out, code, _ = runSanboot(t, "script", "--server", "10.0.0.1", "--iqn", "iqn.x:d", "--install", "--no-dhcp")
	if code != 0 || !strings.Contains(out, "sanhook iscsi:10.0.0.1::::iqn.x:d || goto failed\n") || !strings.Contains(out, "\nexit\n") ||
		strings.Contains(out, "dhcp\n") || strings.Contains(out, "sanboot ") {
		t.Errorf("--install:\n%s", out)
	}

	out, code, _ = runSanboot(t, "script", "--server", "10.0.0.1", "--iqn", "iqn.x:d", "--json")
	var j struct {
		RootPath string `json:"root_path"`
		Script   string `json:"script"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || !strings.HasPrefix(j.Script, "#!ipxe\n") || j.RootPath != "iscsi:10.0.0.1::::iqn.x:d" {
		t.Errorf("--json: %s", out)
	}
}

func TestSanbootErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"script", "--server", "10.0.0.1", "--iqn", "iqn.x:d", "--chap", "user:short"}, "at least 12"},
		{[]string{"script", "--server", "10.0.0.1", "--iqn", "iqn.x:d", "--chap", "nocolon"}, "USER:SECRET"},
		{[]string{"script", "--server", "10.0.0.1", "--iqn", "iqn.x:d", "--mutual-chap", "t:abcdefghijkl"}, "one-way"},
		{[]string{"script", "--server", "10.0.0.1", "--iqn", "iqn.x:d", "--chap", "u:has space in it"}, "CHAP secret"},
		{[]string{"rootpath", "--server", "10.0.0.1", "--iqn", "iqn.x:d", "--lun", "300"}, "LUN"},
		{[]string{"rootpath", "--server", "fe80::1", "--iqn", "iqn.x:d"}, "IPv4"},
		{[]string{"rootpath", "--server", "10.0.0.1", "--iqn", "iqn.x:d", "extra"}, "unexpected argument"},
	}
	for _, tt := range tests {
		_, code, err := runSanboot(t, tt.args...)
		if code != 2 || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: code %d err %v, want 2 and %q", tt.args, code, err, tt.want)
		}
	}
	if _, code, _ := runSanboot(t, "rootpath", "--iqn", "iqn.x:d"); code == 0 {
		t.Error("missing --server accepted")
	}
}

// TestSanbootBinary checks streams and exit statuses of the real binary.
func TestSanbootBinary(t *testing.T) {
	r := xpboot(t, "", "sanboot", "rootpath", "--server", "10.0.0.1", "--iqn", "iqn.2026-01.org.xpboot:disk")
	if r.code != 0 || r.stdout != "iscsi:10.0.0.1::::iqn.2026-01.org.xpboot:disk\n" || r.stderr != "" {
		t.Errorf("rootpath: %+v", r)
	}
	r = xpboot(t, "", "sanboot", "script", "--server", "10.0.0.1", "--iqn", "iqn.x:d", "--chap", "u:short")
	if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "xpboot: sanboot script:") {
		t.Errorf("bad secret: %+v", r)
	}
}
