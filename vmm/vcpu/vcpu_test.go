package vcpu

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/krunbench/krunbench/vmm/bus"
	"github.com/krunbench/krunbench/vmm/kvm"
	"github.com/krunbench/krunbench/vmm/kvm/kvmtest"
)

func requireKVM(t *testing.T) { t.Helper(); kvmtest.Require(t) }

// realModeVCPU returns vCPU 0 of a fresh VM running code at GPA 0 in real mode.
func realModeVCPU(t *testing.T, code []byte) *kvm.VCPU {
	t.Helper()
	_, v := kvmtest.RealModeVM(t, code, false)
	return v
}

type portLog struct {
	mu     sync.Mutex
	writes []byte
}

func (p *portLog) Read(off uint64, d []byte) {
	for i := range d {
		d[i] = 0x40 + byte(i)
	}
}

func (p *portLog) Write(off uint64, d []byte) {
	p.mu.Lock()
	p.writes = append(p.writes, d...)
	p.mu.Unlock()
}

func TestPortIOAndHalt(t *testing.T) {
	requireKVM(t)
	// in al,0x10; inc al; out 0x10,al; mov al,7; out 0x11,al (unclaimed); hlt
	v := realModeVCPU(t, []byte{0xe4, 0x10, 0xfe, 0xc0, 0xe6, 0x10, 0xb0, 0x07, 0xe6, 0x11, 0xf4})
	pio := bus.New("pio")
	var dev portLog
	pio.Insert(0x10, 1, &dev)
	r := New(v, pio, bus.New("mmio"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.Run(ctx)
	if !errors.Is(err, ErrHalted) {
		t.Fatalf("Run = %v, want ErrHalted", err)
	}
	if len(dev.writes) != 1 || dev.writes[0] != 0x41 {
		t.Errorf("device saw writes %x, want [41]", dev.writes)
	}
	if n, by := pio.Unhandled(); n != 1 || by[0x11] != 1 {
		t.Errorf("unhandled %d %v", n, by)
	}
	if r.Exits(kvm.ExitIO) != 3 || r.Exits(kvm.ExitHLT) != 1 {
		t.Errorf("exits io=%d hlt=%d", r.Exits(kvm.ExitIO), r.Exits(kvm.ExitHLT))
	}
}

func TestStopSpinningGuest(t *testing.T) {
	requireKVM(t)
	v := realModeVCPU(t, []byte{0xeb, 0xfe}) // jmp $
	r := New(v, bus.New("pio"), bus.New("mmio"))
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	time.Sleep(100 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	regs, err := r.Regs(ctx)
	cancel()
	if err != nil || regs.RIP != 0 {
		t.Fatalf("Regs while running: rip %#x, %v", regs.RIP, err)
	}
	if err := r.Run(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Run: %v", err)
	}
	start := time.Now()
	r.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after Stop: %v", err)
		}
		t.Logf("Stop took %v", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of Stop")
	}
}

func TestStopBeforeRunAndRunAll(t *testing.T) {
	requireKVM(t)
	r1 := New(realModeVCPU(t, []byte{0xeb, 0xfe}), bus.New("pio"), bus.New("mmio"))
	r1.Stop()
	if err := r1.Run(context.Background()); err != nil {
		t.Fatalf("Run after early Stop: %v", err)
	}
	// One runner halting (an error) stops the spinning one.
	spin := New(realModeVCPU(t, []byte{0xeb, 0xfe}), bus.New("pio"), bus.New("mmio"))
	halt := New(realModeVCPU(t, []byte{0xf4}), bus.New("pio"), bus.New("mmio"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := RunAll(ctx, spin, halt)
	if !errors.Is(err, ErrHalted) {
		t.Fatalf("RunAll = %v, want ErrHalted", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("RunAll needed the timeout (%v)", time.Since(start))
	}
	// Cancelling the context stops everything and is not an error.
	spin2 := New(realModeVCPU(t, []byte{0xeb, 0xfe}), bus.New("pio"), bus.New("mmio"))
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if err := RunAll(ctx2, spin2); err != nil {
		t.Fatalf("RunAll on cancel: %v", err)
	}
}
