package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/krunbench/krunbench/initlib"
)

// kvmBadInputTimeout bounds one rejected run: every case fails in
// validation, before any ioctl, so it needs neither KVM nor a guest.
const kvmBadInputTimeout = 20 * time.Second

// guestVmlinux finds the vmlinux fixture ($KRUNBENCH_GUEST_VMLINUX, else
// beside the repository), or "" when there is none.
func guestVmlinux() string {
	if k := os.Getenv("KRUNBENCH_GUEST_VMLINUX"); k != "" {
		return k
	}
	_, file, _, _ := runtime.Caller(0)
	k := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "guest", "vmlinux")
	if _, err := os.Stat(k); err != nil {
		return ""
	}
	return k
}

// TestKVMBadRunInputFailsWithOneLine runs `krunbench run --engine kvm`
// with broken inputs: each must end quickly with a non-zero exit, one line
// naming the problem, and no temporary directory left behind.
func TestKVMBadRunInputFailsWithOneLine(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	initFile := filepath.Join(dir, "init")
	notKernel := filepath.Join(dir, "notakernel")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	// A static x86-64 program: the empty root has no /bin/sh for a script.
	if err := os.WriteFile(initFile, initlib.ExitAtOnce.Bytes, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notKernel, bytes.Repeat([]byte("garbage!"), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	kernel := guestVmlinux()
	base := func(k string, extra ...string) []string {
		return append([]string{"run", "--engine", "kvm", "--rootfs", root, "--init", initFile, "--kernel", k}, extra...)
	}
	cases := map[string]struct {
		args       []string
		want       string
		needKernel bool
	}{
		"nonexistent rootfs": {append(base(notKernel), "--rootfs", "/no/such/dir"), "root filesystem", false},
		"not a kernel":       {base(notKernel), "bad kernel image", false},
		"0 vCPUs":            {append(base(notKernel), "--cpus", "0"), "vCPUs", false},
		"300 vCPUs":          {append(base(notKernel), "--cpus", "300"), "vCPUs", false},
		"too little memory":  {append(base(notKernel), "--mem", "16"), "memory", false},
		"no payload":         {append(base(notKernel), "--init", "none"), "init policy init.krun", false},
		"above NR_CPUS":      {append(base(kernel), "--cpus", "40"), "NR_CPUS", true},
		"bad environment":    {append(base(kernel), "--env", "NOPE"), "KEY=VALUE", true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if c.needKernel && kernel == "" {
				t.Skip("SKIPPED: no vmlinux fixture (set KRUNBENCH_GUEST_VMLINUX)")
			}
			tmp := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), kvmBadInputTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, krunbenchBin(t), c.args...)
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("still running after %v:\n%s", kvmBadInputTimeout, out)
			}
			text := requireOneErrorLine(t, out, err, c.want)
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Fatalf("left behind in TMPDIR: %v", left)
			}
			t.Logf("%v: %s", time.Since(start).Round(time.Millisecond), text)
		})
	}
}

// TestRunWithoutDevKVM runs `krunbench run --engine kvm` in a mount
// namespace whose /dev lacks kvm (a tmpfs holding only null, zero,
// random, urandom and the pty devices): one line naming /dev/kvm, a
// non-zero exit, within a bound. Needs root and util-linux's unshare.
func TestRunWithoutDevKVM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root for a mount namespace")
	}
	if out, err := exec.Command("unshare", "-m", "true").CombinedOutput(); err != nil {
		t.Skipf("SKIPPED: no mount namespace here (unshare -m: %v %s)", err, out)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	// The kernel is checked (read and parsed) before /dev/kvm is opened, so
	// that bad input fails without KVM; a minimal valid image gets past
	// that check without the shared guest fixture.
	kernel := filepath.Join(dir, "vmlinux")
	if err := os.WriteFile(kernel, minimalKernelELF(), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `set -e
old=$1; shift
mkdir -p "$old" && mount --rbind /dev "$old" && mount -t tmpfs tmpfs /dev
for n in null zero random urandom; do touch /dev/$n; mount --bind "$old/$n" /dev/$n; done
mkdir /dev/pts && mount --bind "$old/pts" /dev/pts && ln -s pts/ptmx /dev/ptmx
exec "$@"`
	ctx, cancel := context.WithTimeout(context.Background(), kvmBadInputTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-m", "sh", "-c", script, "sh", filepath.Join(dir, "olddev"),
		krunbenchBin(t), "run", "--engine", "kvm", "--rootfs", root, "--kernel", kernel, "--", "/bin/true")
	out, err := cmd.CombinedOutput()
	text := strings.TrimSpace(string(out))
	if ctx.Err() != nil || err == nil {
		t.Fatalf("want a prompt failure, got %v after the bound? %v:\n%s", err, ctx.Err(), text)
	}
	if strings.Count(text, "\n") != 0 || !strings.HasPrefix(text, "krunbench: ") || !strings.Contains(text, "/dev/kvm: no such file or directory") {
		t.Fatalf("want one line naming /dev/kvm, got:\n%s", text)
	}
	t.Log(text)
}

// minimalKernelELF is the smallest image the in-process VMM's loader
// accepts as a vmlinux: a 64-bit x86-64 executable ELF with one loadable
// segment at 16 MiB (a single hlt) holding its entry point, padded to the
// 4 KiB krunbench wants of any kernel file. It carries no kernel
// configuration, so no configuration check applies to it.
func minimalKernelELF() []byte {
	const (
		headerSize = 64
		phdrSize   = 56
		loadAddr   = 16 << 20
	)
	code := []byte{0xf4} // hlt
	b := make([]byte, 4096)
	le := binary.LittleEndian
	copy(b, []byte{0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* little-endian */, 1 /* version */})
	le.PutUint16(b[16:], 2)  // executable
	le.PutUint16(b[18:], 62) // x86-64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], loadAddr) // entry
	le.PutUint64(b[32:], headerSize)
	le.PutUint16(b[52:], headerSize)
	le.PutUint16(b[54:], phdrSize)
	le.PutUint16(b[56:], 1)
	ph := b[headerSize:]
	le.PutUint32(ph[0:], 1) // PT_LOAD
	le.PutUint32(ph[4:], 5) // read, execute
	le.PutUint64(ph[8:], headerSize+phdrSize)
	le.PutUint64(ph[16:], loadAddr)
	le.PutUint64(ph[24:], loadAddr)
	le.PutUint64(ph[32:], uint64(len(code)))
	le.PutUint64(ph[40:], uint64(len(code)))
	le.PutUint64(ph[48:], 1)
	copy(b[headerSize+phdrSize:], code)
	return b
}
