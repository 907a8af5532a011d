package iscsitarget

import (
	"sync"
)

// memBudget accounts the command data a server holds in memory: write
// data received or solicited (a task's buffer of its expected data
// transfer length) and Data-In chunks being sent. Three limits apply at
// once: per connection, per source address, and for the whole server.
//
// Read chunks wait for room (the reading task blocks, the connection's
// reader does not, so the data that would free room keeps flowing); write
// buffers wait before their R2Ts are sent, so an initiator cannot make the
// target hold data it has not been asked for. Only unsolicited data, which
// the initiator sends without asking, is taken whatever the limits; it is
// bounded by FirstBurstLength per command and QueueDepth.
type memBudget struct {
	connLimit, addrLimit, limit int

	mu      sync.Mutex
	total   int
	addrs   map[string]*addrAccount
	waiters int           // goroutines waiting in acquire
	wake    chan struct{} // closed and replaced on a release while some wait
}

// budgetShare is one connection's account in a memBudget.
type budgetShare struct {
	b    *memBudget
	addr *addrAccount
	used int // guarded by b.mu
}

// addrAccount is the bytes booked by the connections of one source
// address; it lives while the address has connections. Guarded by b.mu.
type addrAccount struct {
	host  string
	used  int
	conns int
}

func newMemBudget(conn, addr, total int) *memBudget {
	return &memBudget{connLimit: conn, addrLimit: addr, limit: total, addrs: make(map[string]*addrAccount), wake: make(chan struct{})}
}

// share opens the account of a new connection from host; close it with
// done.
func (b *memBudget) share(host string) *budgetShare {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.addrs[host]
	if a == nil {
		a = &addrAccount{host: host}
		b.addrs[host] = a
	}
	a.conns++
	return &budgetShare{b: b, addr: a}
}

// done closes a connection's account (its bytes are all released by then).
func (s *budgetShare) done() {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	s.addr.conns--
	if s.addr.conns == 0 && b.addrs[s.addr.host] == s.addr {
		delete(b.addrs, s.addr.host)
	}
}

// fits reports whether n more bytes fit all three limits; b.mu held.
func (s *budgetShare) fits(n int) bool {
	b := s.b
	return s.used+n <= b.connLimit && s.addr.used+n <= b.addrLimit && b.total+n <= b.limit
}

// take books n bytes; b.mu held.
func (s *budgetShare) take(n int) {
	s.used += n
	s.addr.used += n
	s.b.total += n
}

// tryAcquire books n bytes if they fit.
func (s *budgetShare) tryAcquire(n int) bool {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if !s.fits(n) {
		return false
	}
	s.take(n)
	return true
}

// force books n bytes whatever the limits (unsolicited data already
// received).
func (s *budgetShare) force(n int) {
	s.b.mu.Lock()
	s.take(n)
	s.b.mu.Unlock()
}

// acquire waits until n bytes fit and books them. It gives up, returning
// false, when any of the cancel channels closes.
func (s *budgetShare) acquire(n int, cancel ...<-chan struct{}) bool {
	b := s.b
	for {
		b.mu.Lock()
		if s.fits(n) {
			s.take(n)
			b.mu.Unlock()
			return true
		}
		wake := b.wake
		b.waiters++
		b.mu.Unlock()
		s.wait(wake, cancel)
		b.mu.Lock()
		b.waiters--
		b.mu.Unlock()
		select {
		case <-closed(cancel):
			return false
		default:
		}
	}
}

// wait blocks until wake or a cancel channel closes.
func (s *budgetShare) wait(wake <-chan struct{}, cancel []<-chan struct{}) {
	switch len(cancel) {
	case 0:
		<-wake
	case 1:
		select {
		case <-wake:
		case <-cancel[0]:
		}
	default:
		select {
		case <-wake:
		case <-cancel[0]:
		case <-cancel[1]:
		}
	}
}

// closed returns a closed channel if any of cancel is closed, else nil
// (a nil channel never receives).
func closed(cancel []<-chan struct{}) <-chan struct{} {
	for _, c := range cancel {
		select {
		case <-c:
			return c
		default:
		}
	}
	return nil
}

// release returns n bytes and wakes every waiter to try again (a new wake
// channel is made only when someone waits: the common release is cheap).
func (s *budgetShare) release(n int) {
	if n == 0 {
		return
	}
	b := s.b
	b.mu.Lock()
	s.used -= n
	b.total -= n
	s.addr.used -= n
	if b.waiters > 0 {
		close(b.wake)
		b.wake = make(chan struct{})
	}
	b.mu.Unlock()
}

// inUse returns the bytes booked server-wide (tests and logs).
func (b *memBudget) inUse() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}
