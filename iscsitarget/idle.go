package iscsitarget

import (
	"time"
)

// Idle connections: NOP-In pings for initiators that answer them.

// isIPXE reports whether an ISID is iPXE's or gPXE's: format 01b with
// IANA enterprise number 10019 (Fen Systems). They ignore NOP-In pings
// (older versions drop the connection on one), so they are never pinged.
func isIPXE(isid [6]byte) bool {
	return isid[0] == 0x40 && isid[1] == 0x00 && isid[2] == 0x27 && isid[3] == 0x23
}

// pingIdle sends a NOP-In ping after IdleTimeout without a PDU from the
// initiator and closes the connection if another IdleTimeout passes
// without one (RFC 7143 §11.19: the initiator answers with a NOP-Out
// carrying our target transfer tag). It ends with the connection.
func (c *conn) pingIdle() {
	idle := c.srv.cfg.IdleTimeout
	tick := time.NewTicker(max(idle/4, 10*time.Millisecond))
	defer tick.Stop()
	var pinged time.Time
	seen, last := c.rxPDUs.Load(), time.Now()
	for {
		select {
		case <-c.quit:
			return
		case now := <-tick.C:
			if n := c.rxPDUs.Load(); n != seen {
				seen, last, pinged = n, now, time.Time{}
				continue
			}
			if now.Sub(last) < idle {
				continue
			}
			c.mu.Lock()
			busy := len(c.tasks) > 0
			c.mu.Unlock()
			if busy {
				continue // waiting for our Data-In or R2T data, not idle
			}
			if pinged.IsZero() {
				pinged = now
				c.mu.Lock()
				c.nextTTT++
				ttt := c.nextTTT & 0x7fffffff
				c.mu.Unlock()
				p := &pdu{}
				p.bhs[0] = opNOPIn
				p.bhs[1] = 0x80
				p.put32(16, reservedTag)
				p.put32(20, ttt)
				c.log.Debug("idle connection: NOP-In ping", "idle", now.Sub(last).Round(time.Second))
				if err := c.send1(p, false); err != nil {
					return
				}
				continue
			}
			if now.Sub(pinged) >= idle {
				c.log.Warn("idle connection did not answer a NOP-In ping; closing it", "idle", now.Sub(last).Round(time.Second))
				c.kill()
				return
			}
		}
	}
}
