package iscsitarget

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
)

func newCHAPServer(t *testing.T, auth Auth) (*Server, []byte) {
	t.Helper()
	d, _ := newImage(t, 4<<20)
	cfg := simpleConfig(d)
	cfg.Targets[0].Auth = auth
	cfg.Rand = fixedRand(0x10)
	cfg.Logger = testLogger(t)
	cfg.MaxLoginFailures = 1000
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	chal := make([]byte, 1+chapChallengeSz)
	fixedRand(0x10).Read(chal)
	return s, chal
}

var testAuth = Auth{
	Incoming: []Account{{User: "testuser", Secret: []byte("userpassword")}},
	Outgoing: &Account{User: "testtarget", Secret: []byte("targetpassword")},
}

// TestLoginIPXEMutualCHAP replays iPXE's login: the T bit is set on every
// PDU, even mid-CHAP; the target must stay in the security stage until it
// has checked CHAP_R and answered the initiator's challenge, then finish
// operational negotiation with correct result functions, and serve
// READ/WRITE with R2T and 512-byte Data-Out, Data-In split at 8192 bytes.
func TestLoginIPXEMutualCHAP(t *testing.T) {
	s, chal := newCHAPServer(t, testAuth)
	ti := pipeServer(t, s)

	r := ti.login(true, stageSecurity, stageOperational, textOf(
		"InitiatorName=iqn.2010-04.org.ipxe:test", "TargetName="+testIQN, "SessionType=Normal", "AuthMethod=CHAP"))
	if s := loginStatus(r); s != 0 || r.flags()&0x80 != 0 {
		t.Fatalf("AuthMethod step: status 0x%04x flags 0x%02x, want success with T=0", s, r.flags())
	}
	m := keysOf(t, r.data)
	mustContain(t, m, "AuthMethod", "CHAP")
	mustContain(t, m, "TargetPortalGroupTag", "1")

	r = ti.login(true, stageSecurity, stageOperational, textOf("CHAP_A=5"))
	if r.flags()&0x80 != 0 {
		t.Fatalf("target transited before CHAP was done")
	}
	m = keysOf(t, r.data)
	mustContain(t, m, "CHAP_A", "5")
	mustContain(t, m, "CHAP_I", strconv.Itoa(int(chal[0])))
	mustContain(t, m, "CHAP_C", hexArg(chal[1:]))

	resp := chapMD5Response(chal[0], []byte("userpassword"), chal[1:])
	myChal := bytes.Repeat([]byte{0xa5}, 16)
	r = ti.login(true, stageSecurity, stageOperational, textOf(
		"CHAP_N=testuser", "CHAP_R="+hexArg(resp), "CHAP_I=7", "CHAP_C="+hexArg(myChal)))
	if s := loginStatus(r); s != 0 {
		t.Fatalf("CHAP response: status 0x%04x", s)
	}
	if r.flags()&0x83 != 0x81 {
		t.Fatalf("flags 0x%02x: want T=1 NSG=1 in the response carrying the target's CHAP_R", r.flags())
	}
	m = keysOf(t, r.data)
	mustContain(t, m, "CHAP_N", "testtarget")
	mustContain(t, m, "CHAP_R", hexArg(chapMD5Response(7, []byte("targetpassword"), myChal)))

	keys := append(append([]string{}, ipxeOpKeys...), "X-com.example.Foo=bar", "MaxBurstLength=262144")
	keys[6] = "MaxBurstLength=131072" // min with ours
	r = ti.login(true, stageOperational, stageFull, textOf(keys...))
	if s := loginStatus(r); s != 0 || r.flags()&0x83 != 0x83 {
		t.Fatalf("operational: status 0x%04x flags 0x%02x", s, r.flags())
	}
	m = keysOf(t, r.data)
	mustContain(t, m, "X-com.example.Foo", "NotUnderstood")
	mustContain(t, m, "MaxBurstLength", "262144") // the last offer wins
	mustContain(t, m, "FirstBurstLength", "65536")
	mustContain(t, m, "InitialR2T", "Yes")
	mustContain(t, m, "ImmediateData", "No")
	mustContain(t, m, "DefaultTime2Wait", "2") // Max
	mustContain(t, m, "DefaultTime2Retain", "0")
	mustContain(t, m, "ErrorRecoveryLevel", "0")
	ti.tsih = binary.BigEndian.Uint16(r.bhs[14:])
	if ti.tsih == 0 {
		t.Fatal("no TSIH")
	}
	ti.cmdSN = r.u32(28)

	// READ CAPACITY(10), then a 16 KiB write (R2T, 512-byte Data-Out) and a
	// 64 KiB read (Data-In ≤ 8192 bytes, S bit on the last).
	res := ti.await(ti.command([]byte{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, true, false, 8, nil), nil)
	if res.status != 0 || binary.BigEndian.Uint32(res.data) != 4<<20/512-1 {
		t.Fatalf("READ CAPACITY: status %d data %x", res.status, res.data)
	}
	data := make([]byte, 16<<10)
	rand.Read(data)
	res = ti.await(ti.command(write10(8, 32), false, true, len(data), nil), data)
	if res.status != 0 {
		t.Fatalf("WRITE(10): status %d sense %x", res.status, res.sense)
	}
	res = ti.await(ti.command(read10(0, 128), true, false, 64<<10, nil), nil)
	if res.status != 0 || res.maxSeg > 8192 || res.dataIns != 8 {
		t.Fatalf("READ(10): status %d, %d Data-In, largest %d", res.status, res.dataIns, res.maxSeg)
	}
	equalBytes(t, "read back", res.data[8*512:8*512+len(data)], data)
}

// TestLoginRefusals covers the ways a login must fail with the right
// status (and the connection closed).
func TestLoginRefusals(t *testing.T) {
	security := func(extra ...string) []byte {
		return textOf(append([]string{"InitiatorName=iqn.2026-01.test:i", "TargetName=" + testIQN}, extra...)...)
	}
	cases := []struct {
		name   string
		auth   Auth
		script func(ti *testInit, chal []byte) *pdu
		want   uint16
	}{
		{"AuthMethod None on a CHAP target", testAuth, func(ti *testInit, _ []byte) *pdu {
			return ti.login(true, stageSecurity, stageOperational, security("AuthMethod=None"))
		}, statusAuthFailed},
		{"skip security on a CHAP target", testAuth, func(ti *testInit, _ []byte) *pdu {
			return ti.login(true, stageOperational, stageFull, security(ipxeOpKeys...))
		}, statusAuthFailed},
		{"no MD5 in CHAP_A", testAuth, func(ti *testInit, _ []byte) *pdu {
			ti.login(false, stageSecurity, stageSecurity, security("AuthMethod=CHAP"))
			return ti.login(false, stageSecurity, stageSecurity, textOf("CHAP_A=56"))
		}, statusAuthFailed},
		{"wrong CHAP_R", testAuth, func(ti *testInit, chal []byte) *pdu {
			ti.login(true, stageSecurity, stageOperational, security("AuthMethod=CHAP"))
			ti.login(true, stageSecurity, stageOperational, textOf("CHAP_A=5"))
			bad := chapMD5Response(chal[0], []byte("wrongpassword"), chal[1:])
			return ti.login(true, stageSecurity, stageOperational, textOf("CHAP_N=testuser", "CHAP_R="+hexArg(bad)))
		}, statusAuthFailed},
		{"unknown user", testAuth, func(ti *testInit, chal []byte) *pdu {
			ti.login(true, stageSecurity, stageOperational, security("AuthMethod=CHAP"))
			ti.login(true, stageSecurity, stageOperational, textOf("CHAP_A=5"))
			r := chapMD5Response(chal[0], []byte("userpassword"), chal[1:])
			return ti.login(true, stageSecurity, stageOperational, textOf("CHAP_N=nobody", "CHAP_R="+hexArg(r)))
		}, statusAuthFailed},
		{"reflected challenge", testAuth, func(ti *testInit, chal []byte) *pdu {
			ti.login(true, stageSecurity, stageOperational, security("AuthMethod=CHAP"))
			ti.login(true, stageSecurity, stageOperational, textOf("CHAP_A=5"))
			r := chapMD5Response(chal[0], []byte("userpassword"), chal[1:])
			return ti.login(true, stageSecurity, stageOperational, textOf("CHAP_N=testuser", "CHAP_R="+hexArg(r), "CHAP_I=1", "CHAP_C="+hexArg(chal[1:])))
		}, statusAuthFailed},
		{"mutual required but not asked", Auth{Incoming: testAuth.Incoming, Outgoing: testAuth.Outgoing, RequireMutual: true}, func(ti *testInit, chal []byte) *pdu {
			ti.login(true, stageSecurity, stageOperational, security("AuthMethod=CHAP"))
			ti.login(true, stageSecurity, stageOperational, textOf("CHAP_A=5"))
			r := chapMD5Response(chal[0], []byte("userpassword"), chal[1:])
			return ti.login(true, stageSecurity, stageOperational, textOf("CHAP_N=testuser", "CHAP_R="+hexArg(r)))
		}, statusAuthFailed},
		{"mutual asked but no target secret", Auth{Incoming: testAuth.Incoming}, func(ti *testInit, chal []byte) *pdu {
			ti.login(true, stageSecurity, stageOperational, security("AuthMethod=CHAP"))
			ti.login(true, stageSecurity, stageOperational, textOf("CHAP_A=5"))
			r := chapMD5Response(chal[0], []byte("userpassword"), chal[1:])
			return ti.login(true, stageSecurity, stageOperational, textOf("CHAP_N=testuser", "CHAP_R="+hexArg(r), "CHAP_I=1", "CHAP_C=0x0102030405060708090a0b0c0d0e0f10"))
		}, statusAuthFailed},
		{"CHAP offered to a target without CHAP", Auth{}, func(ti *testInit, _ []byte) *pdu {
			return ti.login(true, stageSecurity, stageOperational, security("AuthMethod=CHAP"))
		}, statusAuthFailed},
		{"unknown target", Auth{}, func(ti *testInit, _ []byte) *pdu {
			return ti.login(true, stageSecurity, stageOperational, textOf("InitiatorName=iqn.2026-01.test:i", "TargetName=iqn.2026-01.test:nothing", "AuthMethod=None"))
		}, statusNotFound},
		{"no InitiatorName", Auth{}, func(ti *testInit, _ []byte) *pdu {
			return ti.login(true, stageSecurity, stageOperational, textOf("TargetName="+testIQN, "AuthMethod=None"))
		}, statusMissingParam},
		{"unknown TSIH", Auth{}, func(ti *testInit, _ []byte) *pdu {
			ti.tsih = 999
			return ti.login(true, stageSecurity, stageFull, security("AuthMethod=None"))
		}, statusNoSession},
		{"unsupported version", Auth{}, func(ti *testInit, _ []byte) *pdu {
			p := &pdu{data: security("AuthMethod=None")}
			p.bhs[0] = 0x43
			p.bhs[1] = 0x81
			p.bhs[2], p.bhs[3] = 2, 1
			ti.write(p)
			return ti.read()
		}, statusUnsupportedVer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, chal := newCHAPServer(t, tc.auth)
			ti := pipeServer(t, s)
			r := tc.script(ti, chal)
			if got := loginStatus(r); got != tc.want {
				t.Fatalf("status 0x%04x, want 0x%04x (keys %q)", got, tc.want, r.data)
			}
			// The connection is closed after a failed login.
			if _, err := ti.rd.read(); err == nil {
				t.Fatalf("connection still open after a failed login")
			}
		})
	}
}

// TestLoginContinuationAndKeys checks C-bit continuation, NotUnderstood
// and Reject answers without dropping, and a multi-round operational stage.
func TestLoginContinuationAndKeys(t *testing.T) {
	s, _ := newCHAPServer(t, Auth{})
	ti := pipeServer(t, s)
	first := textOf("InitiatorName=iqn.2026-01.test:i", "TargetName="+testIQN, "AuthMethod=None")
	// Send the security text in two halves with the C bit.
	p := &pdu{data: first[:10]}
	p.bhs[0] = 0x43
	p.bhs[1] = 0x40 // C
	copy(p.bhs[8:14], ti.isid[:])
	ti.write(p)
	r := ti.read()
	if loginStatus(r) != 0 || len(r.data) != 0 || r.flags()&0xc0 != 0 {
		t.Fatalf("continuation ack: status 0x%04x flags 0x%02x data %q", loginStatus(r), r.flags(), r.data)
	}
	r = ti.login(true, stageSecurity, stageOperational, first[10:])
	if loginStatus(r) != 0 || r.flags()&0x80 == 0 {
		t.Fatalf("after continuation: status 0x%04x flags 0x%02x", loginStatus(r), r.flags())
	}
	r = ti.login(false, stageOperational, stageOperational, textOf("MaxBurstLength=abc", "Bogus=1", "IFMarker=No", "OFMarkInt=2048~4096", "HeaderDigest=CRC32C,None"))
	m := keysOf(t, r.data)
	mustContain(t, m, "MaxBurstLength", "Reject")
	mustContain(t, m, "Bogus", "NotUnderstood")
	mustContain(t, m, "IFMarker", "No")
	mustContain(t, m, "OFMarkInt", "Irrelevant")
	mustContain(t, m, "HeaderDigest", "CRC32C")
	r = ti.login(true, stageOperational, stageFull, textOf("DataDigest=CRC32C"))
	if loginStatus(r) != 0 || r.flags()&0x83 != 0x83 {
		t.Fatalf("final: status 0x%04x flags 0x%02x", loginStatus(r), r.flags())
	}
	ti.cmdSN = r.u32(28)
	ti.hd, ti.dd = true, true
	// Digests on: a write with R2T and a read must work.
	data := bytes.Repeat([]byte("digest!!"), 512)
	if res := ti.await(ti.command(write10(0, 8), false, true, len(data), nil), data); res.status != 0 {
		t.Fatalf("write with digests: status %d", res.status)
	}
	res := ti.await(ti.command(read10(0, 8), true, false, len(data), nil), nil)
	equalBytes(t, "read with digests", res.data, data)
	// NOP-Out ping is echoed.
	ping := &pdu{data: []byte("ping")}
	ping.bhs[0] = 0x40 | opNOPOut
	ping.bhs[1] = 0x80
	ping.put32(16, 0x1234)
	ping.put32(20, reservedTag)
	ping.put32(24, ti.cmdSN)
	ti.write(ping)
	in := ti.read()
	if in.opcode() != opNOPIn || in.itt() != 0x1234 || string(in.data) != "ping" {
		t.Fatalf("NOP-In: opcode 0x%02x itt %x data %q", in.opcode(), in.itt(), in.data)
	}
}

func TestNewServerRefuses(t *testing.T) {
	d, _ := newImage(t, 1<<20)
	ok := func() Config { return simpleConfig(d) }
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no targets", func(c *Config) { c.Targets = nil }, "no targets"},
		{"bad name", func(c *Config) { c.Targets[0].Name = "disk" }, "not an iqn"},
		{"duplicate LUN", func(c *Config) { c.Targets[0].LUNs = append(c.Targets[0].LUNs, c.Targets[0].LUNs[0]) }, "twice"},
		{"no device", func(c *Config) { c.Targets[0].LUNs[0].Device = nil }, "no device"},
		{"CHAP without users", func(c *Config) { c.Targets[0].Auth.RequireCHAP = true }, "no users"},
		{"mutual without secret", func(c *Config) {
			c.Targets[0].Auth = Auth{Incoming: testAuth.Incoming, RequireMutual: true}
		}, "mutual"},
		{"same secret both ways", func(c *Config) {
			c.Targets[0].Auth = Auth{Incoming: testAuth.Incoming, Outgoing: &Account{User: "t", Secret: []byte("userpassword")}}
		}, "equals the outgoing"},
		{"empty secret", func(c *Config) { c.Targets[0].Auth = Auth{Incoming: []Account{{User: "u"}}} }, "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok()
			cfg.Logger = testLogger(t)
			tc.mod(&cfg)
			_, err := NewServer(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestDiscoverySendTargets lists targets in a discovery session.
func TestDiscoverySendTargets(t *testing.T) {
	s, _ := newCHAPServer(t, Auth{})
	ti := pipeServer(t, s)
	r := ti.login(true, stageSecurity, stageFull, textOf("InitiatorName=iqn.2026-01.test:i", "SessionType=Discovery", "AuthMethod=None"))
	if loginStatus(r) != 0 {
		t.Fatalf("discovery login: 0x%04x", loginStatus(r))
	}
	ti.cmdSN = r.u32(28)
	for _, v := range []string{"All", "Alle"} {
		p := &pdu{data: textOf("SendTargets=" + v)}
		p.bhs[0] = opTextReq
		p.bhs[1] = 0x80
		p.put32(16, 77)
		p.put32(20, reservedTag)
		p.put32(24, ti.cmdSN)
		ti.cmdSN++
		ti.write(p)
		resp := ti.read()
		if resp.opcode() != opTextResp {
			t.Fatalf("opcode 0x%02x", resp.opcode())
		}
		m := keysOf(t, resp.data)
		if v == "All" {
			mustContain(t, m, "TargetName", testIQN)
			mustContain(t, m, "TargetAddress", "127.0.0.1:3260,1")
		} else {
			mustContain(t, m, "SendTargets", "Reject")
		}
	}
	// A SCSI command in a discovery session is rejected, not obeyed.
	ti.command(read10(0, 1), true, false, 512, nil)
	if p := ti.read(); p.opcode() != opReject {
		t.Fatalf("SCSI command in discovery: opcode 0x%02x, want Reject", p.opcode())
	}
}

// TestSendTargetsContinuation: a SendTargets answer longer than the
// initiator's MaxRecvDataSegmentLength comes in several Text responses
// (C bit, target transfer tag), collected with empty Text requests.
func TestSendTargetsContinuation(t *testing.T) {
	d, _ := newImage(t, 1<<20)
	cfg := Config{Logger: testLogger(t)}
	for i := 0; i < 200; i++ {
		cfg.Targets = append(cfg.Targets, Target{Name: "iqn.2026-01.org.xpboot:target-number-" + strconv.Itoa(i), LUNs: []LUN{{Device: d}}})
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ti := pipeServer(t, s)
	r := ti.login(true, stageSecurity, stageFull, textOf("InitiatorName=iqn.2026-01.test:i", "SessionType=Discovery", "AuthMethod=None"))
	ti.cmdSN = r.u32(28)
	var all []byte
	ttt := uint32(reservedTag)
	for round := 0; round < 10; round++ {
		p := &pdu{}
		if round == 0 {
			p.data = textOf("SendTargets=All")
		}
		p.bhs[0] = opTextReq
		p.bhs[1] = 0x80
		p.put32(16, 5)
		p.put32(20, ttt)
		p.put32(24, ti.cmdSN)
		ti.cmdSN++
		ti.write(p)
		resp := ti.read()
		if len(resp.data) > 8192 {
			t.Fatalf("Text response of %d bytes exceeds the default MaxRecvDataSegmentLength", len(resp.data))
		}
		all = append(all, resp.data...)
		if resp.flags()&0x80 != 0 {
			if n := bytes.Count(all, []byte("TargetName=")); n != 200 {
				t.Fatalf("%d targets listed, want 200 (after %d rounds)", n, round+1)
			}
			if round == 0 {
				t.Fatal("no continuation happened")
			}
			return
		}
		if resp.flags()&0x40 == 0 {
			t.Fatalf("neither F nor C set")
		}
		ttt = resp.u32(20)
	}
	t.Fatal("continuation did not end")
}
