package vcpu_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/krunbench/krunbench/vmm/bus"
	"github.com/krunbench/krunbench/vmm/kvm"
	"github.com/krunbench/krunbench/vmm/kvm/kvmtest"
	"github.com/krunbench/krunbench/vmm/legacy"
	"github.com/krunbench/krunbench/vmm/loader"
	"github.com/krunbench/krunbench/vmm/memory"
	"github.com/krunbench/krunbench/vmm/vcpu"
)

// bootTimeout bounds one guest boot (boot, panic, reset) in the test.
const bootTimeout = 90 * time.Second

// The command line can be extended for experiments with
// $KRUNBENCH_EXTRA_CMDLINE, and the full console saved with
// $KRUNBENCH_BOOT_LOG.

// guestKernel reads the vmlinux fixture (see kvmtest.Vmlinux).
func guestKernel(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(kvmtest.Vmlinux(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// console collects serial output and records when markers first appear.
type console struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	start time.Time
	seen  map[string]time.Duration
	marks []string
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	for _, m := range c.marks {
		if _, ok := c.seen[m]; !ok && bytes.Contains(c.buf.Bytes(), []byte(m)) {
			c.seen[m] = time.Since(c.start)
		}
	}
	return len(p), nil
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func (c *console) when(m string) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.seen[m]
	return d, ok
}

const (
	markBanner = "Linux version"
	markPanic  = "Kernel panic"
	markVFS    = "VFS: Unable to mount root fs"
)

func TestBootLinux(t *testing.T) {
	kvmtest.Require(t)
	kernel := guestKernel(t)
	pvmLimited := false
	for _, n := range []int{1, 2} {
		t.Run(map[int]string{1: "1vcpu", 2: "2vcpus"}[n], func(t *testing.T) {
			if pvmLimited {
				kvmtest.Skip(t, "host /dev/kvm is kvm_pvm and the 1-vCPU boot already hit its emulator limit")
			}
			defer func() { pvmLimited = t.Skipped() && kvm.HostBackend() == kvm.BackendPVM }()
			smp := "smp: Brought up 1 node, 2 CPUs"
			out := bootOnce(t, kernel, n, smp)
			if n == 2 {
				if _, ok := out.when(smp); !ok {
					t.Errorf("2 vCPUs: console lacks %q", smp)
				}
			}
		})
	}
}

func bootOnce(t *testing.T, kernel []byte, n int, extraMarks ...string) *console {
	start := time.Now()
	sys, err := kvm.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	must(t, vm.SetTSSAddr(kvm.DefaultTSSAddr))
	must(t, vm.SetIdentityMapAddr(kvm.DefaultIdentityMapAddr))
	must(t, vm.CreateIRQChip())
	must(t, vm.CreatePIT2())

	mem, err := memory.New(256 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	must(t, mem.Register(vm))
	img, err := loader.LoadKernel(mem, kernel)
	if err != nil {
		t.Fatal(err)
	}
	cmdline := "console=ttyS0 earlyprintk=serial reboot=k panic=-1 tsc_early_khz=2000000" + os.Getenv("KRUNBENCH_EXTRA_CMDLINE")
	must(t, loader.Setup(mem, img, loader.Config{Cmdline: cmdline, VCPUs: n}))

	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	out := &console{start: start, seen: map[string]time.Duration{}, marks: append([]string{markBanner, markPanic, markVFS}, extraMarks...)}
	pio, mmio := bus.New("pio"), bus.New("mmio")
	uart := legacy.NewSerial(out)
	uart.IRQ = func() { vm.IRQLine(legacy.COM1IRQ, true); vm.IRQLine(legacy.COM1IRQ, false) }
	must(t, uart.Attach(pio, legacy.COM1Port))
	var resetAt time.Duration
	kbd := legacy.NewI8042(func() {
		if resetAt == 0 {
			resetAt = time.Since(start)
		}
		cancel()
	})
	kbd.IRQ = func() { vm.IRQLine(1, true); vm.IRQLine(1, false) }
	must(t, kbd.Attach(pio))
	must(t, legacy.NewCMOS().Attach(pio))
	must(t, legacy.AttachSinks(pio))

	cpuid, err := sys.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	var runners []*vcpu.Runner
	for i := range n {
		v, err := vm.CreateVCPU(i)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		must(t, loader.SetupVCPU(v, cpuid, n, img.Entry))
		runners = append(runners, vcpu.New(v, pio, mmio))
	}
	setup := time.Since(start)

	// Report where vCPU 0 is every few seconds, to diagnose a stuck boot.
	watchDone := make(chan struct{})
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-watchDone:
				return
			case <-tick.C:
				rctx, rcancel := context.WithTimeout(ctx, time.Second)
				regs, err := runners[0].Regs(rctx)
				rcancel()
				t.Logf("t=%v vCPU0 rip=%#x err=%v console=%d bytes", time.Since(start).Round(time.Millisecond), regs.RIP, err, uart.Written())
			}
		}
	}()
	runErr := vcpu.RunAll(ctx, runners...)
	close(watchDone)
	total := time.Since(start)

	text := out.String()
	if p := os.Getenv("KRUNBENCH_BOOT_LOG"); p != "" {
		os.WriteFile(p, []byte(text), 0o644)
	}
	t.Logf("console (%d bytes), last lines:\n%s", len(text), tail(text, 25))
	miss, byAddr := pio.Unhandled()
	t.Logf("unhandled port accesses: %d %v; vCPU0 exits: io=%d mmio=%d intr=%d",
		miss, byAddr, runners[0].Exits(kvm.ExitIO), runners[0].Exits(kvm.ExitMMIO), runners[0].Exits(kvm.ExitIntr))
	for _, m := range out.marks {
		d, ok := out.when(m)
		t.Logf("%-34q seen=%v at %v", m, ok, d.Round(time.Millisecond))
	}
	t.Logf("setup %v, i8042 reset at %v, run returned after %v", setup.Round(time.Millisecond), resetAt.Round(time.Millisecond), total.Round(time.Millisecond))
	if _, ok := out.when(markBanner); !ok {
		t.Fatalf("console lacks %q (vCPUs returned %v)", markBanner, runErr)
	}
	if runErr != nil && errors.Is(runErr, vcpu.ErrInternal) && kvm.HostBackend() == kvm.BackendPVM {
		// Known platform limit, see kvm.HostBackend: the loader, vCPU setup,
		// run loop and UART work (the banner is out); the rest of the boot
		// needs a PVM-enlightened guest kernel or hardware virtualization.
		kvmtest.Skip(t, "host /dev/kvm is kvm_pvm: the stock guest kernel printed its banner after %v, then hit an instruction PVM's emulator cannot run: %v",
			mustWhen(out, markBanner), runErr)
	}
	if runErr != nil {
		t.Fatalf("vCPUs ended with error: %v", runErr)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && kbd.Resets() == 0 {
		t.Fatalf("guest did not reset within %v", bootTimeout)
	}
	if _, ok := out.when(markVFS); !ok {
		t.Errorf("console lacks %q", markVFS)
	}
	if kbd.Resets() == 0 {
		t.Errorf("guest never reset through the i8042")
	}
	return out
}

func mustWhen(c *console, m string) time.Duration {
	d, _ := c.when(m)
	return d.Round(time.Millisecond)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
