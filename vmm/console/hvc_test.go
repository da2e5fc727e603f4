package console_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/krunbench/krunbench/vmm/console"
	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// TestHvcPutCharsUnderSlowHost drives port 0's transmit queue the way
// Linux's hvc console does (virtio_console's put_chars and
// __send_to_port): one readable buffer per write, added, kicked, then
// polled for on the used ring with interrupts off until the device returns
// it, its descriptor reused by the next write. A tty with ONLCR writes each
// line and its "\r\n" separately, which is how a guest console flood
// reaches the device (issue 16). The host side reads slowly, so the
// device's backpressure holds most writes. More than 65,536 writes carry
// the used and avail indices across their 16-bit wrap. Every write must
// come back exactly once, as the only new used element, with its own head,
// and the host must see every byte in order.
func TestHvcPutCharsUnderSlowHost(t *testing.T) {
	if testing.Short() {
		t.Skip("70,000 round trips")
	}
	h := newHost(t)
	g := newGuest(t, console.Options{Ports: []console.Port{{Console: true, Host: h.Side()}}},
		1<<virtio.FeatureVersion1|1<<virtio.FeatureEventIdx|1<<console.FeatureSize)
	const lines = 35000 // two writes each
	var want bytes.Buffer
	got := make(chan []byte, 1)
	go func() {
		// The slow reader: a page at a time, a pause every 64 KiB.
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for n := 0; ; {
			k, err := h.Out.Read(buf)
			b.Write(buf[:k])
			if n += k; n >= 64<<10 {
				time.Sleep(2 * time.Millisecond)
				n = 0
			}
			if err != nil || b.Len() >= lines*64 {
				break
			}
		}
		got <- b.Bytes()
	}()
	d := g.m.Drivers[txq(0)]
	putChars := func(data []byte) {
		t.Helper()
		want.Write(data)
		p, err := d.AddChain(virtiotest.R(data))
		if err != nil {
			t.Fatalf("after %d bytes: %v", want.Len(), err)
		}
		d.Publish()
		d.SetUsedEvent(d.UsedIdx())
		g.con.QueueNotify(txq(0))
		for deadline := time.Now().Add(30 * time.Second); ; {
			used := d.TakeUsed()
			if len(used) > 1 || len(used) == 1 && used[0].ID != uint32(p.Head) {
				t.Fatalf("after %d bytes: waiting for head %d, the used ring gave %+v", want.Len(), p.Head, used)
			}
			if len(used) == 1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %d bytes: head %d not returned within 30s", want.Len(), p.Head)
			}
			time.Sleep(time.Microsecond)
		}
	}
	for n := 1; n <= lines; n++ {
		putChars(fmt.Appendf(nil, "%010d %051d", n, n))
		putChars([]byte("\r\n"))
	}
	if idx, writes := d.UsedIdx(), 2*lines; int(idx) != writes%(1<<16) {
		t.Fatalf("used idx %d after %d writes, want %d", idx, writes, writes%(1<<16))
	}
	var out []byte
	select {
	case out = <-got:
	case <-time.After(60 * time.Second):
		t.Fatal("host side did not receive the output within 60s")
	}
	h.Out.Close()
	if !bytes.Equal(out, want.Bytes()) {
		i := 0
		for i < min(len(out), want.Len()) && out[i] == want.Bytes()[i] {
			i++
		}
		t.Fatalf("host got %d bytes, want %d; first difference at byte %d (line %d)", len(out), want.Len(), i, i/64+1)
	}
}
