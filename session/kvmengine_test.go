package session

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/vmm/kvm"
	"github.com/krunbench/krunbench/vmm/kvm/kvmtest"
)

// testConfig is a config that passes Validate, with kernel as the kernel.
func testConfig(t *testing.T, kernel string) Config {
	return Config{
		RootFS: t.TempDir(), Kernel: kernel, CPUs: 1, MemMiB: 256,
		Payload: &initlib.Payload{Name: "test", Bytes: initlib.ExitAtOnce.Bytes},
	}
}

func fakeImage(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "kernel")
	if err := os.WriteFile(p, bytes.Repeat([]byte{0x90}, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEngineValidation(t *testing.T) {
	cfg := testConfig(t, fakeImage(t))
	cfg.Engine = "warp"
	if err := cfg.Validate(); !errors.Is(err, ErrEngine) || !strings.Contains(err.Error(), "kvm, qemu, auto") {
		t.Fatalf("Validate = %v, want ErrEngine listing kvm", err)
	}
	for _, e := range []string{EngineKVM, EngineQEMU} {
		cfg := testConfig(t, fakeImage(t))
		cfg.Engine = e
		if err := cfg.Validate(); err != nil || cfg.Engine != e || cfg.engineAuto {
			t.Fatalf("engine %s: Validate = %v, engine %q auto %v", e, err, cfg.Engine, cfg.engineAuto)
		}
	}
}

// TestAutoEngine: auto resolves to kvm only where KVM works on hardware
// virtualization, and says why when it picks QEMU.
func TestAutoEngine(t *testing.T) {
	cfg := testConfig(t, fakeImage(t))
	cfg.Accel = "tcg"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Engine != EngineQEMU || !cfg.engineAuto || engineLine(&cfg) != "krunbench: engine qemu (tcg): --accel tcg selects the QEMU engine" {
		t.Fatalf("auto with --accel tcg: engine %q, line %q", cfg.Engine, engineLine(&cfg))
	}

	cfg = testConfig(t, fakeImage(t))
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	line := engineLine(&cfg)
	usable := kvm.KVMUsable()
	switch {
	case usable != nil:
		if cfg.Engine != EngineQEMU || cfg.Accel != "tcg" || !strings.Contains(line, "engine qemu (tcg): kvm") {
			t.Fatalf("KVM unusable (%v): engine %q accel %q, line %q", usable, cfg.Engine, cfg.Accel, line)
		}
	case kvm.HostBackend() == kvm.BackendPVM:
		if cfg.Engine != EngineQEMU || cfg.Accel != "tcg" || !strings.Contains(line, "kvm_pvm") {
			t.Fatalf("PVM host: engine %q accel %q, line %q", cfg.Engine, cfg.Accel, line)
		}
	default:
		if cfg.Engine != EngineKVM || line != "krunbench: engine kvm" {
			t.Fatalf("hardware KVM: engine %q, line %q", cfg.Engine, line)
		}
	}
	t.Log(line)
}

// syncBuffer is a bytes.Buffer safe for the console pump and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func guestVmlinux(t *testing.T) string { t.Helper(); return kvmtest.Vmlinux(t) }

// TestKVMSession runs the test init on the kvm engine: exit code 42 on
// hardware KVM; on PVM the guest dies in the kernel, which must come back
// as one error line naming the KVM internal error, within a bound.
func TestKVMSession(t *testing.T) {
	kvmtest.Require(t)
	cfg := testConfig(t, guestVmlinux(t))
	payload := kvmtest.TestInit(t)
	out := &syncBuffer{}
	cfg.Engine, cfg.Payload, cfg.Out, cfg.BootTimeout = EngineKVM, &initlib.Payload{Name: "testinit", Bytes: payload}, out, 45*time.Second
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Engine() != EngineKVM {
		t.Fatalf("engine %q", s.Engine())
	}
	done := make(chan struct{})
	var res Result
	go func() { res, err = s.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		s.Stop()
		<-done
		t.Fatalf("guest still running after 60s; console:\n%s", out.String())
	}
	if kvm.HostBackend() == kvm.BackendPVM && err != nil && strings.Contains(err.Error(), "KVM internal error") {
		if !errors.Is(err, ErrNoExitCode) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("want one line wrapping ErrNoExitCode, got %q", err)
		}
		kvmtest.Skip(t, "host /dev/kvm is kvm_pvm: the stock kernel cannot boot here; the session reported: %v", err)
	}
	if err != nil || !res.Reported || res.ExitCode != 42 || res.Engine != EngineKVM {
		t.Fatalf("Wait = %+v, %v; console:\n%s", res, err, out.String())
	}
	if !strings.Contains(out.String(), "KRUNBENCH-E2E-MARKER") {
		t.Errorf("console lacks the init's marker:\n%s", out.String())
	}
}
