package iscsitarget

import (
	"bytes"
	"testing"
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
