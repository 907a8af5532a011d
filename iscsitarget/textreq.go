package iscsitarget

import (
	"net"
	"strconv"
)

// Full-feature Text requests: SendTargets and key negotiation after login.

// textState holds a Text exchange that spans several PDUs (C bit).
type textState struct {
	itt     uint32
	ttt     uint32
	in      []byte
	out     []byte
	rounds  int
	started bool
}

func (c *conn) textRequest(p *pdu) error {
	cont := p.flags()&0x40 != 0
	ttt := p.u32(20)
	st := c.text
	if st == nil || st.itt != p.itt() {
		if ttt != reservedTag {
			return c.reject(p, rejectInvalidField, "Text continuation with an unknown target transfer tag")
		}
		st = &textState{itt: p.itt(), ttt: reservedTag}
		c.text = st
	}
	st.rounds++
	if st.rounds > 64 || len(st.in)+len(p.data) > maxTextLen {
		c.text = nil
		return c.reject(p, rejectProtocolError, "text exchange too long")
	}
	st.in = append(st.in, p.data...)
	if cont {
		// Initiator continues: acknowledge with an empty response.
		return c.textResponse(p, st, nil, false)
	}
	if !st.started {
		st.started = true
		keys, err := parseText(st.in)
		if err != nil {
			c.text = nil
			return c.reject(p, rejectProtocolError, err.Error())
		}
		st.out = c.answerText(keys)
	} else if len(p.data) != 0 || ttt != st.ttt {
		c.text = nil
		return c.reject(p, rejectProtocolError, "bad Text continuation")
	}
	max := c.p.initMaxRecvData
	chunk := st.out
	more := len(chunk) > max
	if more {
		chunk = chunk[:max]
	}
	st.out = st.out[len(chunk):]
	if !more {
		c.text = nil
	}
	return c.textResponse(p, st, chunk, more)
}

func (c *conn) textResponse(p *pdu, st *textState, data []byte, more bool) error {
	r := &pdu{data: data}
	r.bhs[0] = opTextResp
	copy(r.bhs[8:16], p.bhs[8:16])
	r.put32(16, p.itt())
	if more || p.flags()&0x40 != 0 {
		c.mu.Lock()
		c.nextTTT++
		st.ttt = c.nextTTT & 0x7fffffff
		c.mu.Unlock()
		if more {
			r.bhs[1] = 0x40
		}
		r.put32(20, st.ttt)
	} else {
		r.bhs[1] = 0x80
		r.put32(20, reservedTag)
	}
	return c.send1(r, true)
}

// answerText answers the keys of a full-feature Text request.
func (c *conn) answerText(keys []kv) []byte {
	var out []kv
	for _, k := range keys {
		switch k.key {
		case "SendTargets":
			ts, ok := c.sendTargets(k.value)
			if !ok {
				out = append(out, kv{k.key, valReject})
				continue
			}
			out = append(out, ts...)
		case "HeaderDigest", "DataDigest", "MaxConnections", "InitialR2T", "ImmediateData",
			"MaxBurstLength", "FirstBurstLength", "DefaultTime2Wait", "DefaultTime2Retain",
			"MaxOutstandingR2T", "DataPDUInOrder", "DataSequenceInOrder", "ErrorRecoveryLevel",
			"SessionType", "InitiatorName", "TargetName", "AuthMethod":
			out = append(out, kv{k.key, valReject}) // leading-only / login-only keys
		default:
			out = append(out, kv{k.key, valNotUnderstood})
		}
	}
	return appendText(nil, out)
}

// sendTargets lists targets with this connection's portal address.
func (c *conn) sendTargets(v string) ([]kv, bool) {
	var list []*target
	switch {
	case v == "All":
		if c.sess.tgt != nil {
			list = []*target{c.sess.tgt}
		} else {
			list = c.srv.order
		}
	case v == "" && c.sess.tgt != nil:
		list = []*target{c.sess.tgt}
	case v != "":
		t := c.srv.lookupTarget(v)
		if t == nil || (c.sess.tgt != nil && t != c.sess.tgt) {
			return nil, false
		}
		list = []*target{t}
	default:
		return nil, false
	}
	addr := c.nc.LocalAddr().String()
	if ta, ok := c.nc.LocalAddr().(*net.TCPAddr); ok {
		addr = net.JoinHostPort(ta.IP.String(), strconv.Itoa(ta.Port))
	}
	var out []kv
	for _, t := range list {
		if c.sess.tgt == nil && !c.srv.mayDiscover(c.meta, t) {
			if v != "All" {
				return nil, false // as if the target did not exist
			}
			continue
		}
		out = append(out, kv{"TargetName", t.name}, kv{"TargetAddress", addr + "," + strconv.Itoa(int(c.srv.cfg.PortalGroupTag))})
	}
	return out, true
}
