package iscsitarget

import (
	"sync"
	"time"
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
//
// The budget also owns the data buffers. A buffer given back is kept for
// reuse only while the bytes booked plus the bytes kept stay within the
// server's limit (and under keepLimit); booking more evicts kept buffers
// first, and the last connection's close drops them all. So the live heap
// of command data never exceeds MaxMemory (plus unsolicited data forced
// past it), where a sync.Pool would keep up to as much again alive in its
// victim cache across collections.
type memBudget struct {
	connLimit, addrLimit, limit int
	keepLimit                   int // most bytes of free buffers kept

	mu      sync.Mutex
	total   int
	addrs   map[string]*addrAccount
	waiters int           // goroutines waiting in acquire
	wake    chan struct{} // closed and replaced on a release while some wait

	free     map[int][][]byte // free buffers by capacity
	kept     int              // bytes in free
	takes    uint64           // bookings so far: tells the idle trim of activity
	trimming bool             // an idle trim is scheduled
}

// idleTrim is how long the budget must have booked nothing before its kept
// buffers go back to the runtime: a server whose clients are connected but
// idle should not hold memory for them.
const idleTrim = 2 * time.Second

// minPooled is the smallest buffer kept for reuse: smaller ones are cheap
// to allocate and would only crowd the free lists.
const minPooled = 4096

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
	return &memBudget{connLimit: conn, addrLimit: addr, limit: total, keepLimit: max(conn, total/8),
		addrs: make(map[string]*addrAccount), wake: make(chan struct{}), free: make(map[int][][]byte)}
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
	if len(b.addrs) == 0 {
		// No connection left: give every kept buffer back to the runtime.
		clear(b.free)
		b.kept = 0
	}
}

// fits reports whether n more bytes fit all three limits; b.mu held.
func (s *budgetShare) fits(n int) bool {
	b := s.b
	return s.used+n <= b.connLimit && s.addr.used+n <= b.addrLimit && b.total+n <= b.limit
}

// take books n bytes, evicting kept buffers if the booked and kept bytes
// together no longer fit the server's limit; b.mu held.
func (s *budgetShare) take(n int) {
	s.used += n
	s.addr.used += n
	b := s.b
	b.total += n
	b.takes++
	if b.total+b.kept > b.limit {
		b.evict()
	}
}

// evict drops kept buffers until the booked and kept bytes fit the
// limit again (or nothing is kept); b.mu held.
func (b *memBudget) evict() {
	for size, list := range b.free {
		for len(list) > 0 && b.total+b.kept > b.limit {
			list[len(list)-1] = nil
			list = list[:len(list)-1]
			b.kept -= size
		}
		if len(list) == 0 {
			delete(b.free, size)
		} else {
			b.free[size] = list
		}
		if b.total+b.kept <= b.limit {
			return
		}
	}
}

// buffer returns a buffer of n bytes, already booked, reusing a kept one
// of exactly that size when there is one. Its contents are undefined.
func (s *budgetShare) buffer(n int) []byte {
	if n < minPooled {
		return make([]byte, n)
	}
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if list := b.free[n]; len(list) > 0 {
		buf := list[len(list)-1]
		list[len(list)-1] = nil
		if len(list) == 1 {
			delete(b.free, n)
		} else {
			b.free[n] = list[:len(list)-1]
		}
		b.kept -= n
		return buf
	}
	return make([]byte, n)
}

// recycle gives back a buffer from buffer and releases n booked bytes
// (0 when the booking stays, as when a task's buffer is replaced by a
// larger one booked already).
func (s *budgetShare) recycle(buf []byte, n int) {
	b := s.b
	b.mu.Lock()
	if c := cap(buf); c >= minPooled && b.total-n+b.kept+c <= b.limit && b.kept+c <= b.keepLimit {
		b.free[c] = append(b.free[c], buf[:c])
		b.kept += c
	}
	if n != 0 {
		s.releaseLocked(n)
	}
	b.mu.Unlock()
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
	s.b.mu.Lock()
	s.releaseLocked(n)
	s.b.mu.Unlock()
}

// releaseLocked is release with b.mu held.
func (s *budgetShare) releaseLocked(n int) {
	b := s.b
	s.used -= n
	b.total -= n
	s.addr.used -= n
	if b.waiters > 0 {
		close(b.wake)
		b.wake = make(chan struct{})
	}
	if b.total == 0 && b.kept > 0 && !b.trimming {
		b.trimming = true
		takes := b.takes
		time.AfterFunc(idleTrim, func() { b.trimIdle(takes) })
	}
}

// trimIdle drops the kept buffers if nothing was booked since takes was
// read, idleTrim ago; otherwise it waits again while the budget is idle.
func (b *memBudget) trimIdle(takes uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.takes == takes:
		clear(b.free)
		b.kept = 0
		b.trimming = false
	case b.total == 0 && b.kept > 0:
		takes := b.takes
		time.AfterFunc(idleTrim, func() { b.trimIdle(takes) })
	default:
		b.trimming = false
	}
}

// keptBytes returns the bytes of free buffers kept for reuse (tests).
func (b *memBudget) keptBytes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.kept
}

// inUse returns the bytes booked server-wide (tests and logs).
func (b *memBudget) inUse() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}
