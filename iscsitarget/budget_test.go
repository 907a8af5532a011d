package iscsitarget

import (
	"testing"
	"time"
)

// TestBudgetKeptBuffers: free buffers are kept only within the server's
// limit together with what is booked, booking evicts them, and they go
// back to the runtime when the last connection closes or the budget has
// been idle for idleTrim.
func TestBudgetKeptBuffers(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name string
		run  func(t *testing.T, b *memBudget, s *budgetShare)
	}{
		{"reuse", func(t *testing.T, b *memBudget, s *budgetShare) {
			s.force(mib)
			buf := s.buffer(mib)
			buf[0] = 0xaa
			s.recycle(buf, mib)
			if b.keptBytes() != mib || b.inUse() != 0 {
				t.Fatalf("kept %d in use %d, want %d and 0", b.keptBytes(), b.inUse(), mib)
			}
			s.force(mib)
			if again := s.buffer(mib); &again[0] != &buf[0] {
				t.Error("a kept buffer of the same size was not reused")
			}
			if b.keptBytes() != 0 {
				t.Errorf("kept %d after reuse", b.keptBytes())
			}
		}},
		{"limit counts kept", func(t *testing.T, b *memBudget, s *budgetShare) {
			var bufs [][]byte
			for i := 0; i < 4; i++ {
				if !s.tryAcquire(mib) {
					t.Fatalf("acquire %d", i)
				}
				bufs = append(bufs, s.buffer(mib))
			}
			for _, buf := range bufs {
				s.recycle(buf, mib)
			}
			// keepLimit is max(conn 4 MiB, total 8 MiB / 8) = 4 MiB.
			if b.keptBytes() != 4*mib {
				t.Fatalf("kept %d, want %d", b.keptBytes(), 4*mib)
			}
			// Booking 6 MiB more leaves room for only 2 MiB kept.
			other := b.share("192.0.2.2")
			defer other.done()
			if !other.tryAcquire(4*mib) || !s.tryAcquire(2*mib) {
				t.Fatal("acquire")
			}
			if in, kept := b.inUse(), b.keptBytes(); in+kept > 8*mib {
				t.Errorf("in use %d + kept %d exceeds the 8 MiB limit", in, kept)
			}
			// A buffer given back while the limit is full is not kept.
			s.recycle(make([]byte, 2*mib), 2*mib)
			if in, kept := b.inUse(), b.keptBytes(); in+kept > 8*mib {
				t.Errorf("in use %d + kept %d exceeds the 8 MiB limit after recycle", in, kept)
			}
			other.release(4 * mib)
		}},
		{"small not kept", func(t *testing.T, b *memBudget, s *budgetShare) {
			s.force(512)
			s.recycle(s.buffer(512), 512)
			if b.keptBytes() != 0 {
				t.Errorf("kept %d bytes of a 512-byte buffer", b.keptBytes())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newMemBudget(4<<20, 8<<20, 8<<20)
			s := b.share("192.0.2.1")
			tt.run(t, b, s)
			s.done()
			if b.keptBytes() != 0 {
				t.Errorf("kept %d after the last connection closed", b.keptBytes())
			}
		})
	}
}

func TestBudgetIdleTrim(t *testing.T) {
	b := newMemBudget(4<<20, 8<<20, 8<<20)
	s := b.share("192.0.2.1")
	defer s.done()
	s.force(1 << 20)
	s.recycle(s.buffer(1<<20), 1<<20)
	if b.keptBytes() == 0 {
		t.Fatal("nothing kept")
	}
	deadline := time.Now().Add(4 * idleTrim)
	for b.keptBytes() != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if b.keptBytes() != 0 {
		t.Errorf("kept %d bytes after %v idle with a connection open", b.keptBytes(), 4*idleTrim)
	}
}
