// Package builder assembles an in-process KVM microVM the way Firecracker's
// builder does: the whole Config is validated first, in one place and before
// any ioctl (memory, vCPUs, kernel image, devices, init policy, kernel
// command line), and then one linear recipe creates the VM: KVM system and
// VM, TSS and identity map, in-kernel irqchip and PIT, guest RAM, the kernel
// and its boot structures, the port and MMIO buses, the legacy PC devices,
// the virtio-mmio devices with their ioeventfds and irqfds, and the vCPUs.
//
// Device layout (libkrun's): virtio device n has its 4 KiB virtio-mmio
// window at 0xd0000000 + n*0x1000 and IRQ 5+n; the console is device 0,
// the virtio-fs devices follow in the order they were added. The kernel
// learns about them from virtio_mmio.device= parameters.
//
// The init payload: Builder.SetPayload gives the bytes the root device
// serves as /init.krun (its server's filesystem must be a
// virtiofs/overlay.FS); Validate applies initlib's payload rules and then
// initlib's policy check, which asks the root filesystem itself whether
// it will serve a payload. The bytes belong to the caller and are served
// in place, never copied: keep them unchanged while the VM runs. This
// package embeds no init; krunbench's default one is
// initlib/defaultinit.Payload(), which an embedder passes like any other.
package builder

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/krunbench/krunbench/vmm/console"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/vmm/cmdline"
	"github.com/krunbench/krunbench/vmm/kernelconfig"
	"github.com/krunbench/krunbench/vmm/loader"
	"github.com/krunbench/krunbench/vmm/memory"
	"github.com/krunbench/krunbench/vmm/virtio/mmio"
)

// Limits checked by Validate.
const (
	MinMemMiB = 64
	MaxMemMiB = 64 << 10
	// MaxVCPUs caps the vCPU count; the kernel's NR_CPUS (when it carries
	// its configuration) and the MP table (loader.MaxVCPUs) may lower it.
	MaxVCPUs = 64
	// MMIOBase is the window of virtio device 0; device n is at
	// MMIOBase + n*mmio.WindowSize.
	MMIOBase = memory.MMIOGapStart
	// FirstIRQ and LastIRQ bound the ISA IRQs given to virtio devices
	// (device n gets FirstIRQ+n); IRQ 1 is the i8042, 4 the serial port.
	FirstIRQ = 5
	LastIRQ  = 15
	// MaxDevices is the most virtio devices (console included).
	MaxDevices = LastIRQ - FirstIRQ + 1
	// maxKernelSize bounds the kernel file read by Validate.
	maxKernelSize = 512 << 20
)

// Validation errors; Validate's errors wrap one of them (or are an
// *initlib.PolicyError) and read as one line.
var (
	ErrMemory  = errors.New("memory")
	ErrVCPUs   = errors.New("vCPUs")
	ErrKernel  = errors.New("kernel")
	ErrDevices = errors.New("devices")
	ErrRootFS  = errors.New("no root virtio-fs device (tag " + initlib.RootTag + ")")
	ErrCmdline = errors.New("kernel command line")
)

// FSDevice is a virtio-fs device: Server answers the guest's FUSE requests
// for the filesystem mounted by tag.
//
// Whether the root device serves /init.krun is asked of its filesystem
// (an overlay.FS with a payload, or the payload given to SetPayload),
// never taken from the caller's word.
type FSDevice struct {
	Tag    string
	Server *fuse.Server
}

// Config describes a VM. The zero value of each optional field means
// "none".
type Config struct {
	// Kernel is the guest kernel: an uncompressed vmlinux (preferred) or
	// a bzImage with a 64-bit entry point.
	Kernel string
	// Cmdline describes the workload's part of the command line. Init and
	// NoInit are taken from Init; the builder appends its own parameters
	// (serial console, virtio_mmio.device=...) to Extra.
	Cmdline cmdline.Spec
	// VCPUs and MemMiB size the guest.
	VCPUs  int
	MemMiB int
	// Init is the init policy, checked with initlib.InitSpec.Check.
	Init initlib.InitSpec
	// Payload, when not nil, is served as /init.krun by the root device,
	// whose server must run an *overlay.FS (Builder.SetPayload sets it).
	// It must not be empty (initlib.ErrEmptyPayload); under the init.krun
	// policy it must fit initlib.MaxPayloadSize and, unless
	// SkipPayloadCheck, be an x86-64 ELF or a script. Its bytes are
	// caller-owned and never copied.
	Payload *initlib.Payload
	// SkipPayloadCheck skips the check of the payload's contents.
	SkipPayloadCheck bool
	// FS are the virtio-fs devices; one must have tag /dev/root.
	FS []FSDevice
	// Console is the host side of hvc0 (port 0 of the virtio console);
	// nil discards the guest's output and sends no input. The builder
	// never closes it: close it after VM.Close to end the console's
	// reader.
	Console io.ReadWriter
	// Ports are named virtio-console ports (krun-stdin, krun-stdout,
	// krun-stderr, krun-winsize...) on a second virtio-console device,
	// with MULTIPORT (its port 0 stays unnamed and idle, as QEMU keeps it
	// for a console), placed after the virtio-fs devices. hvc0 keeps a
	// device of its own without MULTIPORT, so it exists before init
	// starts; these ports appear once Linux has done the control
	// handshake. Each must be named and not a console. VM.Close closes
	// the device; VM.Ports().Flushed is then closed once their output is
	// written.
	Ports []console.Port
	// Serial, when set, gets an 8250 UART at COM1 with the kernel's early
	// and console output (earlyprintk=serial console=ttyS0 are added; the
	// last console= names /dev/console, so init's output goes there too).
	Serial io.Writer
	// Log receives device diagnostics; nil discards them.
	Log *slog.Logger
}

// slot is one virtio-mmio device position.
type slot struct {
	base  uint64
	irq   uint32
	fs    *FSDevice // nil for the console
	ports bool      // the device of Config.Ports
}

// plan is a validated Config, ready for the build recipe.
type plan struct {
	cfg     Config
	kernel  []byte
	img     *loader.Image
	cmdline string
	slots   []slot
	root    *overlay.FS // set when Payload must be installed
}

// Validate checks the whole Config without touching KVM.
func (c Config) Validate() error {
	_, err := c.plan()
	return err
}

// CommandLine validates c and returns the kernel command line it would
// boot with.
func (c Config) CommandLine() (string, error) {
	p, err := c.plan()
	if err != nil {
		return "", err
	}
	return p.cmdline, nil
}

func (c Config) plan() (*plan, error) {
	p := &plan{cfg: c}
	if err := p.checkDevices(); err != nil {
		return nil, err
	}
	if err := c.checkMemory(); err != nil {
		return nil, err
	}
	kc, err := p.checkKernel()
	if err != nil {
		return nil, err
	}
	if err := c.checkVCPUs(kc); err != nil {
		return nil, err
	}
	if err := p.checkFit(); err != nil {
		return nil, err
	}
	if err := p.buildCmdline(); err != nil {
		return nil, err
	}
	return p, nil
}

func (c Config) checkMemory() error {
	if c.MemMiB < MinMemMiB || c.MemMiB > MaxMemMiB {
		return fmt.Errorf("%w: %d MiB (allowed %d..%d)", ErrMemory, c.MemMiB, MinMemMiB, MaxMemMiB)
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		if host := uint64(si.Totalram) * uint64(si.Unit) >> 20; host > 0 && uint64(c.MemMiB) > host {
			return fmt.Errorf("%w: %d MiB does not fit in the host's %d MiB", ErrMemory, c.MemMiB, host)
		}
	}
	return nil
}

// checkKernel reads and parses the kernel image and, when it carries its
// configuration, checks it for what a krunbench guest needs. It returns
// the configuration (nil when the image has none).
func (p *plan) checkKernel() (kernelconfig.Config, error) {
	path := p.cfg.Kernel
	if path == "" {
		return nil, fmt.Errorf("%w: none given", ErrKernel)
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrKernel, err)
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrKernel, path)
	case st.Size() > maxKernelSize:
		return nil, fmt.Errorf("%w: %s is larger than %d MiB", ErrKernel, path, maxKernelSize>>20)
	}
	if p.kernel, err = os.ReadFile(path); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKernel, err)
	}
	if bytes.HasPrefix(p.kernel, []byte("\x7fELF")) {
		p.img, err = loader.ParseELF(p.kernel)
	} else {
		p.img, err = loader.ParseBzImage(p.kernel)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKernel, path, err)
	}
	kc, err := kernelconfig.Read(path)
	if err != nil {
		return nil, nil
	}
	if missing := kc.Missing(); len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s lacks %s", ErrKernel, path, strings.Join(missing, ", "))
	}
	return kc, nil
}

// maxVCPUs is the most vCPUs this kernel can use here.
func maxVCPUs(kc kernelconfig.Config) (int, string) {
	limit, why := min(MaxVCPUs, loader.MaxVCPUs), "the MP table's limit"
	if limit == MaxVCPUs {
		why = "krunbench's limit"
	}
	if n, err := strconv.Atoi(kc["NR_CPUS"]); err == nil && n > 0 && n < limit {
		limit, why = n, "the kernel's NR_CPUS"
	}
	return limit, why
}

func (c Config) checkVCPUs(kc kernelconfig.Config) error {
	limit, why := maxVCPUs(kc)
	if c.VCPUs < 1 || c.VCPUs > limit {
		return fmt.Errorf("%w: %d (allowed 1..%d, %s)", ErrVCPUs, c.VCPUs, limit, why)
	}
	return nil
}

// checkFit checks that the kernel's segments lie in the first RAM region.
func (p *plan) checkFit() error {
	low := memory.Layout(uint64(p.cfg.MemMiB) << 20)[0]
	for _, s := range p.img.Segments {
		if end := s.Addr + s.MemSize; s.Addr < loader.HighMemStart || end < s.Addr || end > low[0]+low[1] {
			return fmt.Errorf("%w: %d MiB is too little for the kernel (it loads up to %#x)", ErrMemory, p.cfg.MemMiB, end)
		}
	}
	return nil
}

// checkDevices lays out the virtio devices (console first) and checks
// tags, servers, the IRQ budget, the payload, the root device and the
// init policy.
func (p *plan) checkDevices() error {
	c := p.cfg
	for i, pt := range c.Ports {
		if pt.Name == "" || pt.Console {
			return fmt.Errorf("%w: console port %d must be named and not a console", ErrDevices, i)
		}
	}
	if n := 1 + len(c.FS) + min(len(c.Ports), 1); n > MaxDevices {
		return fmt.Errorf("%w: %d virtio devices (the console and %d virtio-fs); at most %d fit IRQs %d..%d",
			ErrDevices, n, len(c.FS), MaxDevices, FirstIRQ, LastIRQ)
	}
	served, err := c.checkPayload()
	if err != nil {
		return err
	}
	policy := make([]initlib.FSDevice, 0, len(c.FS))
	var root *FSDevice
	for i := range c.FS {
		d := &c.FS[i]
		switch {
		case len(d.Tag) == 0 || len(d.Tag) > virtiofs.TagSize:
			return fmt.Errorf("%w: virtio-fs tag %q must be 1 to %d bytes", ErrDevices, d.Tag, virtiofs.TagSize)
		case d.Server == nil:
			return fmt.Errorf("%w: virtio-fs device %q has no server", ErrDevices, d.Tag)
		case slices.ContainsFunc(c.FS[:i], func(o FSDevice) bool { return o.Tag == d.Tag }):
			return fmt.Errorf("%w: virtio-fs tag %q is used twice", ErrDevices, d.Tag)
		}
		dev := initlib.FSDevice{Tag: d.Tag, FS: d.Server.FileSystem()}
		if d.Tag == initlib.RootTag {
			root = d
			if served != nil {
				ov, ok := dev.FS.(*overlay.FS)
				if !ok {
					return fmt.Errorf("%w: the root device cannot serve the init payload of Builder.SetPayload (its filesystem is not a virtiofs/overlay.FS)", ErrDevices)
				}
				// What the root will serve once Build installs the payload.
				p.root, dev.FS = ov, stagedPayload(served)
			}
		}
		policy = append(policy, dev)
	}
	if err := c.Init.Check(policy); err != nil {
		return err
	}
	if root == nil {
		return ErrRootFS
	}
	p.slots = append(p.slots, slot{base: MMIOBase, irq: FirstIRQ})
	for i := range c.FS {
		n := uint64(len(p.slots))
		p.slots = append(p.slots, slot{base: MMIOBase + n*mmio.WindowSize, irq: FirstIRQ + uint32(n), fs: &c.FS[i]})
	}
	if len(c.Ports) > 0 {
		n := uint64(len(p.slots))
		p.slots = append(p.slots, slot{base: MMIOBase + n*mmio.WindowSize, irq: FirstIRQ + uint32(n), ports: true})
	}
	return nil
}

// checkPayload applies initlib's payload rules to Config.Payload: never
// empty; where the init.krun policy serves it, not too large and (unless
// SkipPayloadCheck) runnable on x86-64. It returns the bytes the root
// device is to serve (nil: none from the builder).
func (c Config) checkPayload() ([]byte, error) {
	if c.Payload == nil {
		return nil, nil
	}
	if err := c.Payload.CheckNotEmpty(); err != nil {
		return nil, fmt.Errorf("Builder.SetPayload: %w", err)
	}
	if c.Init.Policy != initlib.InitKrun {
		return nil, nil // not used: the kernel starts another init
	}
	if err := initlib.CheckServable(c.Payload.Bytes); err != nil {
		return nil, fmt.Errorf("Builder.SetPayload: %w", err)
	}
	if !c.SkipPayloadCheck {
		if err := c.Payload.CheckContents(""); err != nil {
			return nil, fmt.Errorf("Builder.SetPayload: %w", err)
		}
	}
	return c.Payload.Bytes, nil
}

// stagedPayload is, for the policy check, the root overlay as Build will
// leave it: serving the payload given to the builder.
type stagedPayload []byte

func (s stagedPayload) Payload() []byte { return s }

// buildCmdline assembles the kernel command line with vmm/cmdline.
func (p *plan) buildCmdline() error {
	spec := p.cfg.Cmdline
	spec.Init, spec.NoInit = p.cfg.Init.KernelParam(), p.cfg.Init.Policy == initlib.NoInit
	spec.Extra = slices.Clone(spec.Extra)
	if p.cfg.Serial != nil {
		spec.Extra = append(spec.Extra, "earlyprintk=serial", "console=ttyS0")
	}
	for _, s := range p.slots {
		spec.Extra = append(spec.Extra, mmio.KernelParam(s.base, s.irq))
	}
	line, err := cmdline.Build(spec)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCmdline, err)
	}
	p.cmdline = line
	return nil
}
