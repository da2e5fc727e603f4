// Package session owns one run of a guest: its config, the virtio-fs stack
// serving the root filesystem, the engine, the console pty, the trace and
// the lifecycle from start to the guest's exit code.
package session

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/session/terminal"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/vmm/kernelconfig"
	"github.com/krunbench/krunbench/vmm/kvm"
)

// Engines.
const (
	EngineQEMU = "qemu"
	EngineKVM  = "kvm"
	EngineAuto = "auto"
)

// Config errors, each naming what is wrong.
var (
	ErrRootFS = errors.New("root filesystem")
	ErrKernel = errors.New("kernel")
	ErrEngine = errors.New("engine")
	ErrSizing = errors.New("sizing")
)

// Limits on the guest's size.
const (
	MaxCPUs   = 64
	MinMemMiB = 64
	MaxMemMiB = 64 << 10
)

// Config describes one run.
type Config struct {
	// Engine is EngineKVM (in-process, vmm/builder), EngineQEMU or
	// EngineAuto, which Validate resolves: kvm where KVM is usable and not
	// PVM-only, else qemu with TCG (qemu too when Accel is given).
	Engine string
	// Accel for the QEMU engine: "kvm", "tcg" or "" (auto).
	Accel string
	// EngineNote, when set, receives one line naming the engine that
	// EngineAuto picked (and, for QEMU, why).
	EngineNote io.Writer
	// RootFS is the host directory served as the guest's root.
	RootFS string
	// Init is the init policy; the zero value is init.krun from the root
	// virtio-fs device.
	Init initlib.InitSpec
	// Payload is served as /init.krun under the init.krun policy, which
	// needs one; nil means none. initlib's rules apply: never empty
	// (initlib.ErrEmptyPayload); where served, at most
	// initlib.MaxPayloadSize and, unless SkipPayloadCheck, able to run on
	// RootFS (CheckContents). Its bytes are caller-owned and never copied:
	// do not modify them while the session runs. initlib/defaultinit has
	// krunbench's default init.
	Payload *initlib.Payload
	// SkipPayloadCheck skips the check of the payload's contents against
	// the root filesystem.
	SkipPayloadCheck bool
	// BootTrace asks the default init for its boot milestones
	// (krunbench.trace=1 on the kernel command line).
	BootTrace bool
	// HideMilestones keeps the milestone lines off Out; they still time
	// the run (Result.Boot). For a trace asked for the timings only.
	HideMilestones bool
	// Kernel is the guest kernel image.
	Kernel string
	// CPUs (1..MaxCPUs) and MemMiB (MinMemMiB..MaxMemMiB) size the guest.
	CPUs   int
	MemMiB int
	// Program, Args, Env and Workdir describe the workload for the init.
	Program string
	Args    []string
	Env     []string
	Workdir string
	// Verbose keeps kernel boot messages on the console, time-stamped
	// (printk.time=1) so that they can be told from the guest's output.
	Verbose bool
	// TraceFile, when set, receives the FUSE trace as JSON lines.
	TraceFile string
	// Hook intercepts the guest's FUSE requests (the init debugger's
	// rules engine, virtiofs/rules); nil costs nothing.
	Hook fuse.Hook
	// BootTimeout bounds the time until the guest's first FUSE request;
	// 0 means DefaultBootTimeout for the accelerator the engine uses.
	BootTimeout time.Duration
	// In and Out are the user's terminal (In may be nil: no input).
	In  *os.File
	Out io.Writer
	// Stdin, Stdout and Stderr, when set, carry the workload's standard
	// streams on virtio-console ports of their own (krun-stdin,
	// krun-stdout, krun-stderr), as libkrun does for streams that are not
	// a terminal: the default init redirects the workload's fds 0, 1, 2 to
	// them, the end of Stdin reaches the workload as end of file, and the
	// console (Out) keeps only what else the guest prints (the kernel, the
	// init's own messages). Nil leaves that stream on the console. Wait
	// returns once Stdout and Stderr have been written out.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// ConsoleSize is the console's size at boot (the user's terminal, the
	// TUI's pane); Resize changes it. Zero: unknown until Resize.
	ConsoleSize terminal.Size
	// Log receives diagnostics; nil discards them.
	Log *slog.Logger

	// engineAuto records that Validate resolved EngineAuto, engineWhy why
	// it chose QEMU.
	engineAuto bool
	engineWhy  string
}

// Validate checks the whole config before anything starts and fills
// defaults. Every error names the problem in one line.
func (c *Config) Validate() error {
	if c.Engine == "" {
		c.Engine = EngineAuto
	}
	if c.Engine != EngineQEMU && c.Engine != EngineKVM && c.Engine != EngineAuto {
		return fmt.Errorf("%w: %q is not available (kvm, qemu, auto)", ErrEngine, c.Engine)
	}
	if c.CPUs < 1 || c.CPUs > MaxCPUs {
		return fmt.Errorf("%w: %d vCPUs (allowed 1..%d)", ErrSizing, c.CPUs, MaxCPUs)
	}
	if c.MemMiB < MinMemMiB || c.MemMiB > MaxMemMiB {
		return fmt.Errorf("%w: %d MiB of memory (allowed %d..%d)", ErrSizing, c.MemMiB, MinMemMiB, MaxMemMiB)
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	st, err := os.Stat(c.RootFS)
	switch {
	case c.RootFS == "":
		return fmt.Errorf("%w: none given (--rootfs DIR)", ErrRootFS)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrRootFS, err)
	case !st.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrRootFS, c.RootFS)
	}
	if err := c.checkPayload(); err != nil {
		return err
	}
	if c.Kernel, err = FindKernel(c.Kernel); err != nil {
		return err
	}
	// A kernel that says what it was built with is checked now; one
	// without IKCONFIG is caught by the boot timeout instead.
	if kc, err := kernelconfig.Read(c.Kernel); err == nil {
		if missing := kc.Missing(); len(missing) > 0 {
			return fmt.Errorf("%w: %s lacks %s", ErrKernel, c.Kernel, strings.Join(missing, ", "))
		}
		// A kernel built for fewer CPUs would quietly use fewer.
		if n, err := strconv.Atoi(kc["NR_CPUS"]); err == nil && n > 0 && c.CPUs > n {
			return fmt.Errorf("%w: %d vCPUs, but %s runs at most %d (CONFIG_NR_CPUS)", ErrSizing, c.CPUs, c.Kernel, n)
		}
	}
	if c.Engine == EngineAuto {
		c.engineAuto = true
		c.Engine, c.Accel, c.engineWhy = pickEngine(c.Accel)
	}
	if c.Engine == EngineQEMU && c.Accel == "kvm" {
		// Said here, in a sentence, rather than as QEMU's stderr and a
		// guest that never started.
		sys, err := kvm.Open()
		if err != nil {
			return fmt.Errorf("%w: --accel kvm, but this machine offers no KVM (%v); leave --accel out to run on TCG, or see krunbench doctor", ErrEngine, err)
		}
		sys.Close()
	}
	return nil
}

// checkPayload applies initlib's payload rules before anything starts.
// Whether the root filesystem serves the payload is asked of it once it
// exists (startFS, or the builder for the kvm engine).
func (c *Config) checkPayload() error {
	if c.Payload != nil {
		if err := c.Payload.CheckNotEmpty(); err != nil {
			return fmt.Errorf("session.Config.Payload: %w", err)
		}
	}
	if c.Init.Policy != initlib.InitKrun {
		return c.Init.Check(nil) // the payload, if any, is not used
	}
	if c.Payload == nil {
		return &initlib.PolicyError{Policy: c.Init.Policy, Missing: "no init payload",
			Fix: "set session.Config.Payload (initlib/defaultinit.Payload() is the default init)"}
	}
	if err := initlib.CheckServable(c.Payload.Bytes); err != nil {
		return fmt.Errorf("session.Config.Payload: %w", err)
	}
	if !c.SkipPayloadCheck {
		return c.Payload.CheckContents(c.RootFS)
	}
	return nil
}

// FindKernel resolves the kernel image, the one lookup every command and
// make run (through doctor --print-kernel) share: the given path, else
// $KRUNBENCH_KERNEL, else the one `make kernel` installs, else the
// prebuilt fixture beside the checkout the binary was built in
// (bin/krunbench -> ../shared/guest/bzImage). A path given or named by
// the environment must be a kernel; the default places are skipped when
// absent.
func FindKernel(given string) (string, error) {
	candidates := []string{given, os.Getenv("KRUNBENCH_KERNEL")}
	var defaults []string
	if given == "" {
		defaults = append(defaults, filepath.Join(dataDir(), "kernel", "bzImage"))
		if exe, err := os.Executable(); err == nil {
			defaults = append(defaults, filepath.Join(filepath.Dir(exe), "..", "..", "shared", "guest", "bzImage"))
		}
	}
	for _, p := range defaults {
		if _, err := os.Stat(p); err == nil {
			candidates = append(candidates, filepath.Clean(p))
			break
		}
	}
	for _, p := range candidates {
		if p == "" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrKernel, err)
		}
		if st.IsDir() || st.Size() < 4096 {
			return "", fmt.Errorf("%w: %s is not a kernel image", ErrKernel, p)
		}
		return p, nil
	}
	return "", fmt.Errorf("%w: none found (pass --kernel, set KRUNBENCH_KERNEL, or run make kernel)", ErrKernel)
}

// dataDir is krunbench's XDG data directory.
func dataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "krunbench")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "krunbench")
}
