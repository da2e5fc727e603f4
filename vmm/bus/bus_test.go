package bus

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

type recorder struct {
	mu     sync.Mutex
	writes []uint64
}

func (r *recorder) Read(off uint64, data []byte) {
	for i := range data {
		data[i] = byte(off) + byte(i)
	}
}

func (r *recorder) Write(off uint64, data []byte) {
	r.mu.Lock()
	r.writes = append(r.writes, off)
	r.mu.Unlock()
}

func TestDispatch(t *testing.T) {
	b := New("pio")
	var uart, kbd recorder
	if err := b.Insert(0x3f8, 8, &uart); err != nil {
		t.Fatal(err)
	}
	if err := b.Insert(0x60, 1, &kbd); err != nil {
		t.Fatal(err)
	}
	if err := b.Insert(0x3fc, 8, &kbd); !errors.Is(err, ErrOverlap) {
		t.Fatalf("overlap: %v", err)
	}
	if err := b.Insert(^uint64(0), 2, &kbd); !errors.Is(err, ErrBadRange) {
		t.Fatalf("wrap: %v", err)
	}
	d := make([]byte, 2)
	if !b.Read(0x3fa, d) || !bytes.Equal(d, []byte{2, 3}) {
		t.Fatalf("read uart+2: %v", d)
	}
	if !b.Write(0x3ff, []byte{1}) || uart.writes[0] != 7 {
		t.Fatalf("write uart+7: %v", uart.writes)
	}
	if b.Read(0x400, d) || !bytes.Equal(d, []byte{0xff, 0xff}) {
		t.Fatalf("unclaimed read: %v", d)
	}
	b.Write(0x80, []byte{0})
	b.Write(0x80, []byte{0})
	n, by := b.Unhandled()
	if n != 3 || by[0x80] != 2 || by[0x400] != 1 {
		t.Fatalf("Unhandled = %d %v", n, by)
	}
	if !b.Remove(0x60) || b.Remove(0x60) || b.Read(0x60, d) {
		t.Fatal("Remove did not detach the device")
	}
}
