package builder

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/vmm/bus"
	"github.com/krunbench/krunbench/vmm/console"
	"github.com/krunbench/krunbench/vmm/kvm"
	"github.com/krunbench/krunbench/vmm/legacy"
	"github.com/krunbench/krunbench/vmm/loader"
	"github.com/krunbench/krunbench/vmm/memory"
	"github.com/krunbench/krunbench/vmm/vcpu"
	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/mmio"
)

// i8042IRQ is the keyboard controller's ISA IRQ.
const i8042IRQ = 1

// Builder collects a Config piece by piece (devices and the payload in any
// order); nothing is checked until Validate or Build.
type Builder struct {
	cfg Config
}

// New returns a builder starting from cfg.
func New(cfg Config) *Builder { return &Builder{cfg: cfg} }

// AddFS adds a virtio-fs device.
func (b *Builder) AddFS(d FSDevice) *Builder {
	b.cfg.FS = append(b.cfg.FS, d)
	return b
}

// SetPayload sets the init payload the root device serves as /init.krun
// (see Config.Payload for its rules, checked by Validate and Build). The
// bytes stay the caller's: they are served in place, never copied.
// initlib/defaultinit.Payload() is krunbench's default init.
func (b *Builder) SetPayload(p initlib.Payload) *Builder {
	b.cfg.Payload = &p
	return b
}

// Config returns the configuration collected so far.
func (b *Builder) Config() Config { return b.cfg }

// Validate checks the collected configuration without touching KVM.
func (b *Builder) Validate() error { return b.cfg.Validate() }

// Build validates the configuration and then creates the VM, ready to Run.
// On error everything created so far is released.
func (b *Builder) Build(ctx context.Context) (*VM, error) {
	p, err := b.cfg.plan()
	if err != nil {
		return nil, err
	}
	v := &VM{cmdline: p.cmdline, log: p.cfg.Log, done: make(chan struct{})}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	steps := []struct {
		name string
		run  func(*plan) error
	}{
		{"open /dev/kvm", v.openKVM},
		{"create VM", v.createVM},
		{"guest memory", v.setupMemory},
		{"load kernel", v.loadKernel},
		{"legacy devices", v.attachLegacy},
		{"virtio devices", v.attachVirtio},
		{"vCPUs", v.createVCPUs},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			v.Close()
			return nil, err
		}
		began := time.Now()
		if err := s.run(p); err != nil {
			v.Close()
			return nil, fmt.Errorf("build VM: %s: %w", s.name, err)
		}
		v.log.Debug("build step", "step", s.name, "took", time.Since(began))
	}
	return v, nil
}

func (v *VM) openKVM(*plan) error {
	var err error
	if v.sys, err = kvm.Open(); err != nil {
		return err
	}
	if err := v.sys.RequireCaps(kvm.RequiredCaps...); err != nil {
		return err
	}
	v.cpuid, err = v.sys.SupportedCPUID()
	return err
}

func (v *VM) createVM(*plan) error {
	var err error
	if v.vm, err = v.sys.CreateVM(); err != nil {
		return err
	}
	if err := v.vm.SetTSSAddr(kvm.DefaultTSSAddr); err != nil {
		return err
	}
	if err := v.vm.SetIdentityMapAddr(kvm.DefaultIdentityMapAddr); err != nil {
		return err
	}
	if err := v.vm.CreateIRQChip(); err != nil {
		return err
	}
	return v.vm.CreatePIT2()
}

func (v *VM) setupMemory(p *plan) error {
	var err error
	if v.mem, err = memory.New(uint64(p.cfg.MemMiB) << 20); err != nil {
		return err
	}
	return v.mem.Register(v.vm)
}

func (v *VM) loadKernel(p *plan) error {
	if err := p.img.Load(v.mem); err != nil {
		return err
	}
	v.entry = p.img.Entry
	return loader.Setup(v.mem, p.img, loader.Config{Cmdline: p.cmdline, VCPUs: p.cfg.VCPUs})
}

// pulse returns a function raising an edge on an ISA IRQ.
func (v *VM) pulse(irq uint32) func() {
	return func() {
		_ = v.vm.IRQLine(irq, true)
		_ = v.vm.IRQLine(irq, false)
	}
}

func (v *VM) attachLegacy(p *plan) error {
	v.pio, v.mmio = bus.New("pio"), bus.New("mmio")
	v.i8042 = legacy.NewI8042(v.guestReset)
	v.i8042.IRQ = v.pulse(i8042IRQ)
	if err := v.i8042.Attach(v.pio); err != nil {
		return err
	}
	if p.cfg.Serial != nil {
		v.serial = legacy.NewSerial(p.cfg.Serial)
		v.serial.IRQ = v.pulse(legacy.COM1IRQ)
		if err := v.serial.Attach(v.pio, legacy.COM1Port); err != nil {
			return err
		}
	}
	if err := legacy.NewCMOS().Attach(v.pio); err != nil {
		return err
	}
	return legacy.AttachSinks(v.pio)
}

func (v *VM) attachVirtio(p *plan) error {
	if p.root != nil {
		if err := p.root.SetPayload(p.cfg.Payload.Bytes); err != nil {
			return err
		}
	}
	for _, s := range p.slots {
		var dev virtio.Device
		switch {
		case s.ports:
			con, err := console.New(console.Options{Ports: append([]console.Port{{}}, p.cfg.Ports...), Log: v.log})
			if err != nil {
				return err
			}
			v.ports, dev = con, con
		case s.fs == nil:
			con, err := console.New(console.Options{Ports: []console.Port{{Console: true, Host: p.cfg.Console}}, Log: v.log})
			if err != nil {
				return err
			}
			v.console, dev = con, con
		default:
			fs, err := virtiofs.NewDevice(s.fs.Server, virtiofs.DeviceOptions{Tag: s.fs.Tag, Log: v.log})
			if err != nil {
				return err
			}
			dev = fs
		}
		if err := v.attachDevice(dev, s); err != nil {
			return err
		}
	}
	return nil
}

// attachDevice puts dev behind a virtio-mmio transport at its slot: the
// window on the MMIO bus, an irqfd for its IRQ and one ioeventfd per queue
// on the QueueNotify register (datamatch = queue index).
func (v *VM) attachDevice(dev virtio.Device, s slot) error {
	d := &device{dev: dev, base: s.base, irq: s.irq}
	v.devices = append(v.devices, d)
	var err error
	if d.irqfd, err = mmio.NewEventfdInterrupt(); err != nil {
		return err
	}
	if err := v.vm.RegisterIRQFD(d.irqfd.FD(), s.irq); err != nil {
		return err
	}
	d.irqfdOn = true
	d.tr = mmio.New(dev, v.mem, mmio.Options{Interrupt: d.irqfd, Log: v.log})
	if err := v.mmio.Insert(s.base, mmio.WindowSize, d.tr); err != nil {
		return err
	}
	if d.fds, err = mmio.NewEventfds(d.tr.NumQueues()); err != nil {
		return err
	}
	for i, fd := range d.fds {
		match := uint64(i)
		e := kvm.IOEventFD{FD: fd, Addr: s.base + d.tr.NotifyOffset(), Len: 4, Datamatch: &match}
		if err := v.vm.RegisterIOEventFD(e); err != nil {
			return err
		}
		d.ioevents = append(d.ioevents, e)
	}
	d.server, err = d.tr.ServeIoeventfds(d.fds)
	return err
}

func (v *VM) createVCPUs(p *plan) error {
	for i := range p.cfg.VCPUs {
		c, err := v.vm.CreateVCPU(i)
		if err != nil {
			return err
		}
		v.vcpus = append(v.vcpus, c)
		if err := loader.SetupVCPU(c, v.cpuid, p.cfg.VCPUs, v.entry); err != nil {
			return err
		}
		v.runners = append(v.runners, vcpu.New(c, v.pio, v.mmio))
	}
	return nil
}
