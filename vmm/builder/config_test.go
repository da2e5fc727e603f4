package builder_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/vmm/builder"
	"github.com/krunbench/krunbench/vmm/cmdline"
)

// requiredConfig enables what kernelconfig.Required asks for.
const requiredConfig = "CONFIG_VIRTIO_MMIO=y\nCONFIG_VIRTIO_FS=y\nCONFIG_FUSE_FS=y\nCONFIG_VIRTIO_CONSOLE=y\n" +
	"CONFIG_HVC_DRIVER=y\nCONFIG_DEVTMPFS=y\nCONFIG_BINFMT_ELF=y\nCONFIG_PROC_FS=y\n"

// fakeKernel writes a one-segment x86-64 ELF executable loading memsz
// bytes at 16 MiB, followed by an embedded configuration when config is
// not empty, and returns its path.
func fakeKernel(t *testing.T, memsz uint64, config string) string {
	t.Helper()
	const paddr = 16 << 20
	le := binary.LittleEndian
	b := make([]byte, 64+56)
	copy(b, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	le.PutUint16(b[16:], 2)
	le.PutUint16(b[18:], 62)
	le.PutUint64(b[24:], paddr)
	le.PutUint64(b[32:], 64)
	le.PutUint16(b[52:], 64)
	le.PutUint16(b[54:], 56)
	le.PutUint16(b[56:], 1)
	code := []byte{0xf4, 0xeb, 0xfd} // hlt; jmp .-1
	ph := b[64:]
	le.PutUint32(ph[0:], 1)
	le.PutUint64(ph[8:], uint64(len(b)))
	le.PutUint64(ph[16:], paddr)
	le.PutUint64(ph[24:], paddr)
	le.PutUint64(ph[32:], uint64(len(code)))
	le.PutUint64(ph[40:], memsz)
	b = append(b, code...)
	if config != "" {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write([]byte(config))
		zw.Close()
		b = append(append(append(b, "IKCFG_ST"...), z.Bytes()...), "IKCFG_ED"...)
	}
	p := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// server is a virtio-fs server over an empty directory, as sessions build it.
func server(t *testing.T) *fuse.Server {
	t.Helper()
	pt, err := passthrough.New(t.TempDir(), passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return fuse.NewServer(overlay.New(pt), fuse.Options{})
}

// payload is a real static x86-64 program (it exits at once).
var payload = initlib.Payload{Name: "test", Origin: "test", Bytes: initlib.ExitAtOnce.Bytes}

// valid returns a configuration that passes Validate.
func valid(t *testing.T) builder.Config {
	return builder.Config{
		Kernel: fakeKernel(t, 4<<20, requiredConfig+"CONFIG_NR_CPUS=16\n"),
		VCPUs:  1, MemMiB: 128,
		Payload: &payload,
		FS:      []builder.FSDevice{{Tag: initlib.RootTag, Server: server(t)}},
	}
}

func TestValidConfig(t *testing.T) {
	if err := valid(t).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRejects(t *testing.T) {
	notKernel := filepath.Join(t.TempDir(), "notakernel")
	if err := os.WriteFile(notKernel, bytes.Repeat([]byte("garbage!"), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		edit func(*builder.Config)
		want error
		text string
	}{
		"not a kernel":      {func(c *builder.Config) { c.Kernel = notKernel }, builder.ErrKernel, "bad kernel image"},
		"missing kernel":    {func(c *builder.Config) { c.Kernel = "/no/such/kernel" }, builder.ErrKernel, "no such file"},
		"kernel is a dir":   {func(c *builder.Config) { c.Kernel = t.TempDir() }, builder.ErrKernel, "not a regular file"},
		"no kernel":         {func(c *builder.Config) { c.Kernel = "" }, builder.ErrKernel, "none given"},
		"kernel lacks fs":   {func(c *builder.Config) { c.Kernel = fakeKernel(t, 4<<20, "CONFIG_VIRTIO_MMIO=y\n") }, builder.ErrKernel, "lacks CONFIG_VIRTIO_FS"},
		"16 MiB":            {func(c *builder.Config) { c.MemMiB = 16 }, builder.ErrMemory, "16 MiB"},
		"too much memory":   {func(c *builder.Config) { c.MemMiB = builder.MaxMemMiB + 1 }, builder.ErrMemory, "allowed"},
		"kernel won't fit":  {func(c *builder.Config) { c.Kernel = fakeKernel(t, 200<<20, "") }, builder.ErrMemory, "too little for the kernel"},
		"0 vCPUs":           {func(c *builder.Config) { c.VCPUs = 0 }, builder.ErrVCPUs, "0 (allowed 1..16"},
		"300 vCPUs":         {func(c *builder.Config) { c.VCPUs = 300 }, builder.ErrVCPUs, "300"},
		"above NR_CPUS":     {func(c *builder.Config) { c.VCPUs = 17 }, builder.ErrVCPUs, "NR_CPUS"},
		"no root device":    {func(c *builder.Config) { c.FS[0].Tag = "data"; c.Init.Policy = initlib.NoInit }, builder.ErrRootFS, "/dev/root"},
		"duplicate tags":    {func(c *builder.Config) { c.FS = append(c.FS, c.FS[0]) }, builder.ErrDevices, "used twice"},
		"empty tag":         {func(c *builder.Config) { c.FS = append(c.FS, builder.FSDevice{Server: c.FS[0].Server}) }, builder.ErrDevices, "1 to 36 bytes"},
		"no server":         {func(c *builder.Config) { c.FS[0].Server = nil }, builder.ErrDevices, "no server"},
		"bad env":           {func(c *builder.Config) { c.Cmdline.Env = []string{"NOPE"} }, builder.ErrCmdline, "KEY=VALUE"},
		"too many devices":  {func(c *builder.Config) { c.FS = append(c.FS, manyFS(t, 10)...) }, builder.ErrDevices, "at most 11"},
		"huge command line": {func(c *builder.Config) { c.Cmdline.Args = []string{strings.Repeat("x", 2100)} }, cmdline.ErrTooLong, "2048"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := valid(t)
			c.edit(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, c.want) {
				t.Fatalf("Validate = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.text) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line containing %q", err, c.text)
			}
		})
	}
}

func manyFS(t *testing.T, n int) []builder.FSDevice {
	var out []builder.FSDevice
	for i := range n {
		out = append(out, builder.FSDevice{Tag: "data" + string(rune('a'+i)), Server: server(t)})
	}
	return out
}

// TestDeviceLimit: the console and ten virtio-fs devices use IRQs 5..15.
func TestDeviceLimit(t *testing.T) {
	cfg := valid(t)
	cfg.FS = append(cfg.FS, manyFS(t, 9)...)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("11 devices: %v", err)
	}
}

func TestInitPolicy(t *testing.T) {
	t.Run("init.krun without payload", func(t *testing.T) {
		cfg := valid(t)
		cfg.Payload = nil
		var pe *initlib.PolicyError
		err := cfg.Validate()
		if !errors.As(err, &pe) || pe.Policy != initlib.InitKrun || !strings.Contains(err.Error(), "serves no init payload") {
			t.Fatalf("Validate = %v, want an init.krun *initlib.PolicyError", err)
		}
		if !strings.Contains(err.Error(), "Builder.SetPayload") || strings.Contains(err.Error(), "--") {
			t.Fatalf("error %q: want the API's words (Builder.SetPayload), no CLI flags", err)
		}
	})
	t.Run("init.krun without root device", func(t *testing.T) {
		cfg := valid(t)
		cfg.FS = nil
		var pe *initlib.PolicyError
		if err := cfg.Validate(); !errors.As(err, &pe) {
			t.Fatalf("Validate = %v, want *initlib.PolicyError", err)
		}
	})
	t.Run("payload already in the root overlay", func(t *testing.T) {
		cfg := valid(t)
		cfg.Payload = nil
		ov := cfg.FS[0].Server.FileSystem().(*overlay.FS)
		if err := ov.SetPayload(initlib.ExitAtOnce.Bytes); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("kernel init needs a path", func(t *testing.T) {
		cfg := valid(t)
		cfg.Init = initlib.InitSpec{Policy: initlib.KernelInit}
		if err := cfg.Validate(); !errors.Is(err, initlib.ErrPolicy) {
			t.Fatalf("Validate = %v, want ErrPolicy", err)
		}
		cfg.Init.KernelInitPath = "/sbin/init"
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("payload needs an overlay", func(t *testing.T) {
		cfg := valid(t)
		cfg.FS[0].Server = plainServer(t)
		if err := cfg.Validate(); !errors.Is(err, builder.ErrDevices) || !strings.Contains(err.Error(), "overlay") {
			t.Fatalf("Validate = %v, want ErrDevices about the overlay", err)
		}
	})
}

// plainServer serves a directory with no overlay: it cannot serve /init.krun.
func plainServer(t *testing.T) *fuse.Server {
	pt, err := passthrough.New(t.TempDir(), passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return fuse.NewServer(pt, fuse.Options{})
}

// TestPolicyAsksTheRootFilesystem: nothing but a root filesystem that
// serves a payload (or the builder's own payload, which Build installs)
// satisfies init.krun. Before, a HasPayload flag on the device passed
// Validate with an overlay that served nothing, and the guest had no init.
func TestPolicyAsksTheRootFilesystem(t *testing.T) {
	for name, srv := range map[string]func(*testing.T) *fuse.Server{"overlay without payload": server, "no overlay": plainServer} {
		t.Run(name, func(t *testing.T) {
			cfg := valid(t)
			cfg.Payload = nil
			cfg.FS[0].Server = srv(t)
			if err := cfg.Validate(); !errors.Is(err, initlib.ErrPolicy) {
				t.Fatalf("Validate = %v, want ErrPolicy", err)
			}
		})
	}
}

// TestPayloadRules: the builder applies initlib's payload rules: empty is
// refused under every policy; too large and unrunnable only where the
// payload is served (init.krun), the contents check can be skipped, and
// errors name the API.
func TestPayloadRules(t *testing.T) {
	arm := append([]byte(nil), initlib.ExitAtOnce.Bytes...)
	arm[18] = 183 // EM_AARCH64
	huge := make([]byte, initlib.MaxPayloadSize+1)
	copy(huge, initlib.ExitAtOnce.Bytes)
	kernelInit := initlib.InitSpec{Policy: initlib.KernelInit, KernelInitPath: "/sbin/init"}
	cases := map[string]struct {
		edit func(*builder.Config)
		want error
		text string
	}{
		"empty":                       {func(c *builder.Config) { c.Payload = &initlib.Payload{Bytes: []byte{}} }, initlib.ErrEmptyPayload, "Builder.SetPayload: init payload is empty"},
		"nil bytes":                   {func(c *builder.Config) { c.Payload = &initlib.Payload{Name: "mine"} }, initlib.ErrEmptyPayload, "empty: mine"},
		"empty, kernel init":          {func(c *builder.Config) { c.Payload = &initlib.Payload{}; c.Init = kernelInit }, initlib.ErrEmptyPayload, "empty"},
		"too large":                   {func(c *builder.Config) { c.Payload = &initlib.Payload{Bytes: huge} }, initlib.ErrHugePayload, "268435457 bytes, the limit is 268435456 bytes"},
		"too large, kernel init":      {func(c *builder.Config) { c.Payload = &initlib.Payload{Bytes: huge}; c.Init = kernelInit }, nil, ""},
		"arm64":                       {func(c *builder.Config) { c.Payload = &initlib.Payload{Name: "arm", Bytes: arm} }, initlib.ErrBadPayload, "AARCH64"},
		"arm64, check skipped":        {func(c *builder.Config) { c.Payload = &initlib.Payload{Bytes: arm}; c.SkipPayloadCheck = true }, nil, ""},
		"4 KiB of zeros":              {func(c *builder.Config) { c.Payload = &initlib.Payload{Bytes: make([]byte, 4096)} }, initlib.ErrBadPayload, "neither an ELF"},
		"script (no rootfs to judge)": {func(c *builder.Config) { c.Payload = &initlib.ShellTemplate }, nil, ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := valid(t)
			c.edit(&cfg)
			err := cfg.Validate()
			if c.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Validate = %v, want one line wrapping %v containing %q", err, c.want, c.text)
			}
		})
	}
	if err := builder.New(valid(t)).SetPayload(initlib.Payload{}).Validate(); !errors.Is(err, initlib.ErrEmptyPayload) {
		t.Fatalf("SetPayload(empty) then Validate = %v, want initlib.ErrEmptyPayload", err)
	}
}

// TestBuilderOrder: the payload and the root device may be added in either
// order; only the finished configuration is validated.
func TestBuilderOrder(t *testing.T) {
	base := valid(t)
	root := base.FS[0]
	base.FS, base.Payload = nil, nil
	if err := builder.New(base).Validate(); err == nil {
		t.Fatal("an empty builder validated")
	}
	payloadFirst := builder.New(base).SetPayload(payload)
	var pe *initlib.PolicyError
	if err := payloadFirst.Validate(); !errors.As(err, &pe) {
		t.Fatalf("payload without root: %v, want a policy error", err)
	}
	if err := payloadFirst.AddFS(root).Validate(); err != nil {
		t.Fatalf("payload then root: %v", err)
	}
	rootFirst := builder.New(base).AddFS(root)
	if err := rootFirst.Validate(); !errors.As(err, &pe) {
		t.Fatalf("root without payload: %v, want a policy error", err)
	}
	if err := rootFirst.SetPayload(payload).Validate(); err != nil {
		t.Fatalf("root then payload: %v", err)
	}
	if got := rootFirst.Config(); len(got.FS) != 1 || got.Payload == nil {
		t.Fatalf("Config() = %+v", got)
	}
}

// TestCmdline: the command line comes from vmm/cmdline with one
// virtio_mmio.device entry per device, in slot order.
func TestCmdline(t *testing.T) {
	cfg := valid(t)
	cfg.FS = append(cfg.FS, manyFS(t, 1)...)
	cfg.Cmdline = cmdline.Spec{Program: "/bin/echo", Args: []string{"hello world"}, Env: []string{"A=1"}}
	cfg.Serial = &bytes.Buffer{}
	got, err := cfg.CommandLine()
	if err != nil {
		t.Fatal(err)
	}
	want, err := cmdline.Build(cmdline.Spec{
		Init: "/init.krun", Program: "/bin/echo", Args: []string{"hello world"}, Env: []string{"A=1"},
		Extra: []string{
			"earlyprintk=serial", "console=ttyS0",
			"virtio_mmio.device=4K@0xd0000000:5", "virtio_mmio.device=4K@0xd0001000:6", "virtio_mmio.device=4K@0xd0002000:7",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("command line\n got %s\nwant %s", got, want)
	}
	devs := regexp.MustCompile(`virtio_mmio\.device=\S+`).FindAllString(got, -1)
	if len(devs) != 3 || devs[0] != "virtio_mmio.device=4K@0xd0000000:5" || devs[2] != "virtio_mmio.device=4K@0xd0002000:7" {
		t.Fatalf("virtio_mmio entries %q", devs)
	}
	if i, j := strings.Index(got, "virtio_mmio.device"), strings.Index(got, "init=/init.krun"); i < 0 || j < i {
		t.Fatalf("devices must precede init's parameters: %s", got)
	}

	cfg.Serial = nil
	cfg.Init = initlib.InitSpec{Policy: initlib.NoInit}
	got, err = cfg.CommandLine()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "ttyS0") || strings.Contains(got, "init=") {
		t.Fatalf("no serial, no init: %s", got)
	}
}
