package iscsitarget

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

// FuzzPDU parses arbitrary bytes as a PDU: no panic, no allocation beyond
// the declared limit, and parse → write → parse is stable.
func FuzzPDU(f *testing.F) {
	login := &pdu{data: textOf("InitiatorName=iqn.2010-04.org.ipxe:x", "TargetName="+testIQN, "AuthMethod=CHAP,None")}
	login.bhs[0], login.bhs[1] = 0x43, 0x81
	f.Add(appendPDU(nil, login, false, false))
	cmd := &pdu{}
	cmd.bhs[0], cmd.bhs[1] = opSCSICmd, 0xc1
	copy(cmd.bhs[32:], read10(0, 8))
	f.Add(appendPDU(nil, cmd, false, false))
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, n, err := parsePDU(b, 1<<16)
		if err != nil {
			return
		}
		if n > len(b) || p.dataLen() > 1<<16 {
			t.Fatalf("consumed %d of %d bytes, data %d", n, len(b), p.dataLen())
		}
		out := appendPDU(nil, p, false, false)
		q, m, err := parsePDU(out, 1<<16)
		if err != nil || m != len(out) {
			t.Fatalf("re-parse: %v (%d of %d bytes)", err, m, len(out))
		}
		if q.bhs != p.bhs || !bytes.Equal(q.ahs, p.ahs) || !bytes.Equal(q.data, p.data) {
			t.Fatal("parse → write → parse changed the PDU")
		}
	})
}

// FuzzText parses arbitrary text key data and negotiates every key: no
// panic, and parse → write → parse is stable.
func FuzzText(f *testing.F) {
	f.Add(textOf(ipxeOpKeys...))
	f.Add(textOf("CHAP_A=5,6,7", "CHAP_N=user", "CHAP_R=0b"+"AAECAwQFBgcICQoLDA0ODw==", "CHAP_C=0x0102"))
	f.Add(textOf("SendTargets=All", "X-com.example=1", "MaxBurstLength=0x100000"))
	f.Add([]byte("=\x00a\x00b=c=d"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kvs, err := parseText(b)
		if err != nil {
			return
		}
		p := defaultParams()
		lim := targetLimits{maxRecvData: 262144, maxBurst: 1 << 20, firstBurst: 1 << 18, maxOutstandingR2T: 8, allowDigests: true}
		for _, k := range kvs {
			negotiateKey(&p, &lim, k.key, k.value)
			if k.key == "CHAP_R" || k.key == "CHAP_C" {
				decodeCHAPBinary(k.value)
			}
		}
		if p.firstBurst > p.maxBurst || p.maxBurst > 1<<20 || p.initMaxRecvData < 512 {
			t.Fatalf("negotiation broke invariants: %+v", p)
		}
		again, err := parseText(appendText(nil, kvs))
		if err != nil || len(again) != len(kvs) {
			t.Fatalf("re-parse: %v, %d vs %d keys", err, len(again), len(kvs))
		}
		for i := range kvs {
			if kvs[i] != again[i] {
				t.Fatalf("key %d changed: %q vs %q", i, kvs[i], again[i])
			}
		}
	})
}

// fuzzMaxXfer is the MAXIMUM TRANSFER LENGTH of FuzzSCSI's LUs.
const fuzzMaxXfer = 64 << 10

// FuzzSCSIDispatch drives arbitrary CDBs, Data-Out and EDTLs through
// execSCSI against a small writable LU, a read-only one and an absent one:
// no panic, Data-In never larger than MAXIMUM TRANSFER LENGTH nor outside
// the device, and what one command allocates bounded by a few transfer
// lengths whatever its CDB claims.
func FuzzSCSIDispatch(f *testing.F) {
	cdb := func(b ...byte) []byte { c := make([]byte, 16); copy(c, b); return c }
	seeds := [][]byte{
		read10(0, 8), write10(8, 1), read16(0, 131072), read16(1<<40, 1),
		cdb(cmdRead6, 0, 0, 0, 0), cdb(cmdVerify16, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff),
		cdb(cmdWriteSame16, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0), cdb(cmdCompareAndWrite, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
		cdb(cmdOrWrite16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80), cdb(cmdUnmap, 0, 0, 0, 0, 0, 0, 0, 24),
		cdb(cmdMaintenanceIn, saReportOpcodes, 0, 0, 0, 0, 0, 0, 0x10, 0), cdb(cmdMaintenanceIn, saReportOpcodes, 0x83, cmdPROut, 0, 4, 0, 0, 1, 0),
		cdb(cmdServiceIn16, saGetLBAStatus, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0), cdb(cmdInquiry, 1, 0xb0, 0, 255),
		cdb(cmdModeSelect10, 0x10, 0, 0, 0, 0, 0, 0, 0x20), cdb(cmdPROut, 0, 0, 0, 0, 0, 0, 0, 24), cdb(cmdReportLUNs, 0, 0, 0, 0, 0, 0, 0, 1, 0),
		cdb(cmdSyncCache16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff), cdb(0xc0),
	}
	for i, s := range seeds {
		f.Add(s, bytes.Repeat([]byte{byte(i)}, 512*(i%3)), uint32(512*(i%5)), uint8(i%3))
	}
	f.Fuzz(func(t *testing.T, cdbIn, out []byte, edtl uint32, which uint8) {
		if len(cdbIn) == 0 || len(cdbIn) > 64 || len(out) > 1<<20 {
			return
		}
		c := make([]byte, max(16, len(cdbIn)))
		copy(c, cdbIn)
		rw := &memDev{b: make([]byte, 1<<20)}
		ro := &memDev{b: make([]byte, 1<<20)}
		s, err := NewServer(Config{Logger: testLogger(t), MaxTransferLength: fuzzMaxXfer,
			Targets: []Target{{Name: testIQN, LUNs: []LUN{{Number: 0, Device: rw}, {Number: 1, Device: ro, ReadOnly: true}}}}})
		if err != nil {
			t.Fatal(err)
		}
		tgt := s.targets[testIQN]
		l := []*lu{tgt.lus[0], tgt.lus[1], nil}[which%3]
		sess := &session{tgt: tgt, nexus: "iqn.2026-01.test:f,i,0x400000000001"}
		before := allocated()
		var res *scsiResult
		ran := make(chan struct{})
		go func() { res = execSCSI(l, sess, c, out, int(edtl)); close(ran) }()
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Fatalf("command %x hangs", c)
		}
		grown := allocated() - before
		if res.src != nil {
			if res.srcLen <= 0 || res.srcLen > fuzzMaxXfer || res.srcOff < 0 || res.srcOff+int64(res.srcLen) > res.src.dev.Size() {
				t.Fatalf("streamed Data-In %d bytes at %d: outside the limit or the device", res.srcLen, res.srcOff)
			}
		}
		if len(res.data) > fuzzMaxXfer {
			t.Fatalf("Data-In of %d bytes", len(res.data))
		}
		// Handlers allocate at most a few buffers of the transfer limit or
		// their chunk size; the CDB's lengths never decide more.
		if grown > 4*fuzzMaxXfer+1<<20 {
			t.Fatalf("command %x allocated %d bytes", c[:cdbLen(c[0])], grown)
		}
	})
}

// allocated is the bytes allocated on the heap so far (cumulative).
func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// FuzzLoginNegotiation replays login/text PDU streams (the libiscsi and
// iPXE logins recorded in testdata/*.pdus, and mutations) into a server
// over a pipe: the target answers or closes within a bounded time, never
// panics (a recovered handler panic is logged and fails the target), and
// sends only well-formed PDUs.
func FuzzLoginNegotiation(f *testing.F) {
	for _, rec := range recordings {
		b, err := os.ReadFile(filepath.Join("testdata", rec.file))
		if err != nil {
			f.Fatal(err) // a lost recording must not shrink the seeds unnoticed
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		if len(stream) > 1<<16 {
			return
		}
		var logs syncBuf
		cfg := Config{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Rand: fixedRand(0x42), MaxLoginFailures: 1 << 20,
			LoginTimeout: 2 * time.Second, FirstPDUTimeout: 2 * time.Second, IdleTimeout: -1,
			Targets: []Target{
				{Name: testIQN, LUNs: []LUN{{Number: 0, Device: &memDev{b: make([]byte, 64<<10)}}}, Auth: testAuth},
				{Name: testIQN + "-open", LUNs: []LUN{{Number: 1, Device: &memDev{b: make([]byte, 64<<10)}}}},
			}}
		s, err := NewServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ti := pipeServer(t, s)
		_ = ti.c.SetDeadline(time.Now().Add(5 * time.Second))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, err := ti.rd.read(); err != nil {
					return
				}
			}
		}()
		for off := 0; off < len(stream); {
			p, n, err := parsePDU(stream[off:], 1<<16)
			if err != nil {
				break
			}
			if _, err := ti.c.Write(stream[off : off+n]); err != nil {
				break
			}
			_ = p
			off += n
		}
		ti.c.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("target still talking 10 s after the initiator closed")
		}
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		if strings.Contains(logs.String(), "panicked") {
			t.Fatalf("handler panicked:\n%s", logs.String())
		}
	})
}
