package legacy

import (
	"bytes"
	"testing"
	"time"

	"github.com/krunbench/krunbench/vmm/bus"
)

func in(b *bus.Bus, port uint64) byte {
	d := []byte{0}
	b.Read(port, d)
	return d[0]
}

func out(b *bus.Bus, port uint64, v byte) { b.Write(port, []byte{v}) }

func TestI8042Reset(t *testing.T) {
	pio := bus.New("pio")
	resets := 0
	k := NewI8042(func() { resets++ })
	if err := k.Attach(pio); err != nil {
		t.Fatal(err)
	}
	// Linux reboot=k: wait for the input buffer to drain, then pulse reset.
	if in(pio, 0x64)&0x02 != 0 {
		t.Fatal("input buffer reported full")
	}
	out(pio, 0x64, 0xfe)
	if resets != 1 || k.Resets() != 1 {
		t.Fatalf("resets = %d", resets)
	}
	out(pio, 0x64, 0xd1) // write output port with the reset line low
	out(pio, 0x60, 0x00)
	if resets != 2 {
		t.Fatalf("output-port reset: resets = %d", resets)
	}
}

func TestI8042Commands(t *testing.T) {
	pio := bus.New("pio")
	k := NewI8042(nil)
	irqs := 0
	k.IRQ = func() { irqs++ }
	k.Attach(pio)
	read := func() byte {
		if in(pio, 0x64)&0x01 == 0 {
			t.Fatal("no data available")
		}
		return in(pio, 0x60)
	}
	out(pio, 0x64, 0xaa)
	if v := read(); v != 0x55 {
		t.Errorf("self-test = %#x", v)
	}
	out(pio, 0x64, 0x60)
	out(pio, 0x60, 0x47)
	out(pio, 0x64, 0x20)
	if v := read(); v != 0x47 {
		t.Errorf("CTR = %#x", v)
	}
	out(pio, 0x64, 0xd3) // aux loopback: echoed without the aux bit
	out(pio, 0x60, 0x5a)
	if st := in(pio, 0x64); st&0x20 != 0 {
		t.Errorf("aux data bit set: %#x", st)
	}
	if v := read(); v != 0x5a {
		t.Errorf("loopback = %#x", v)
	}
	out(pio, 0x60, 0xf2) // keyboard get ID
	if a, b, c := read(), read(), read(); a != 0xfa || b != 0xab || c != 0x83 || irqs == 0 {
		t.Errorf("get ID = %#x %#x %#x, irqs %d", a, b, c, irqs)
	}
	if in(pio, 0x64)&0x01 != 0 {
		t.Error("output buffer still full")
	}
}

func TestSerialOutputAndProbe(t *testing.T) {
	pio := bus.New("pio")
	var buf bytes.Buffer
	s := NewSerial(&buf)
	irqs := 0
	s.IRQ = func() { irqs++ }
	if err := s.Attach(pio, COM1Port); err != nil {
		t.Fatal(err)
	}
	base := uint64(COM1Port)
	// Linux 8250 autoconfig: scratch, IER and loopback tests.
	out(pio, base+7, 0xa5)
	if in(pio, base+7) != 0xa5 {
		t.Error("scratch register")
	}
	out(pio, base+4, 0x10|0x0a) // loop | RTS | OUT2
	if v := in(pio, base+6) & 0xf0; v != 0x90 {
		t.Errorf("loopback MSR = %#x, want 0x90", v)
	}
	out(pio, base+0, 'L') // looped back, not transmitted
	if in(pio, base+5)&0x01 == 0 || in(pio, base+0) != 'L' || buf.Len() != 0 {
		t.Error("loopback byte not received")
	}
	out(pio, base+4, 0x0b)
	for _, c := range []byte("Linux") {
		if in(pio, base+5)&0x20 == 0 {
			t.Fatal("THR not empty")
		}
		out(pio, base, c)
	}
	if buf.String() != "Linux" || s.Written() != 5 {
		t.Errorf("output %q", buf.String())
	}
	// Divisor latch does not transmit.
	out(pio, base+3, 0x80)
	out(pio, base+0, 1)
	out(pio, base+3, 0x03)
	if buf.Len() != 5 {
		t.Error("DLAB write transmitted")
	}
	// THR-empty interrupt when enabled, reported once by IIR.
	out(pio, base+1, 0x02)
	if irqs == 0 || in(pio, base+2)&0x0f != 0x02 || in(pio, base+2)&0x0f != 0x01 {
		t.Errorf("THRE interrupt: irqs %d", irqs)
	}
	out(pio, base+1, 0x01)
	s.Receive([]byte("hi"))
	if in(pio, base+2)&0x0f != 0x04 || in(pio, base) != 'h' || in(pio, base) != 'i' || in(pio, base+5)&1 != 0 {
		t.Error("receive path")
	}
}

func TestCMOS(t *testing.T) {
	pio := bus.New("pio")
	c := NewCMOS()
	c.Now = func() time.Time { return time.Date(2026, 7, 4, 13, 45, 59, 0, time.UTC) }
	c.Attach(pio)
	reg := func(i byte) byte { out(pio, 0x70, i); return in(pio, 0x71) }
	got := []byte{reg(0), reg(2), reg(4), reg(7), reg(8), reg(9), reg(0x32)}
	want := []byte{0x59, 0x45, 0x13, 0x04, 0x07, 0x26, 0x20}
	if !bytes.Equal(got, want) {
		t.Errorf("time registers %x, want %x", got, want)
	}
	if reg(0x0a)&0x80 != 0 || reg(0x0d)&0x80 == 0 {
		t.Error("UIP set or RTC invalid")
	}
	out(pio, 0x70, 0x80|0x40) // NMI-disable bit ignored
	out(pio, 0x71, 0x77)
	if reg(0x40) != 0x77 {
		t.Error("NVRAM write lost")
	}
}

func TestSinks(t *testing.T) {
	pio := bus.New("pio")
	NewSerial(nil).Attach(pio, COM2Port)
	if err := AttachSinks(pio); err != nil {
		t.Fatal(err)
	}
	d := make([]byte, 4)
	pio.Read(0xcfc, d)
	if !bytes.Equal(d, []byte{0xff, 0xff, 0xff, 0xff}) {
		t.Errorf("PCI config read %x", d)
	}
	out(pio, 0x80, 1)
	if n, _ := pio.Unhandled(); n != 0 {
		t.Errorf("%d unhandled accesses", n)
	}
	if in(pio, COM2Port+5)&0x20 == 0 {
		t.Error("COM2 replaced by a sink")
	}
}
