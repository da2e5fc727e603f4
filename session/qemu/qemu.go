// Package qemu is krunbench's fallback engine: it runs the guest in
// qemu-system-x86_64 -M microvm, with the root filesystem served by
// krunbench's own vhost-user virtio-fs backend and the console on a pty
// krunbench owns. KVM is used where it works, TCG elsewhere.
package qemu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Accelerators.
const (
	AccelKVM = "kvm"
	AccelTCG = "tcg"
)

// TCGParams are kernel parameters the guest needs under TCG: without an
// early TSC frequency the kernel hangs calibrating the TSC in about half
// the boots on microvm. TCG's TSC ticks at the host's TSC rate, so that is
// the frequency given (HostTSCkHz), and the guest's clock keeps time.
func TCGParams() []string {
	return []string{fmt.Sprintf("tsc_early_khz=%d", HostTSCkHz())}
}

// TCG and a vhost-user backend are not coherent: TCG drops the code it
// translated from a guest page only when QEMU itself writes that page (a
// vCPU store, or QEMU's own DMA path), while the vhost-user backend writes
// READ replies straight into guest memory through the shared memfd. A page
// that held code, recycled for newly read file data (page cache, or an
// O_DIRECT buffer), then keeps running the old translation: programs
// executed from virtio-fs crash at random (issue 16; DEVELOPERS.md has the
// measurements). So under TCG the virtio-fs device offers
// VIRTIO_F_ACCESS_PLATFORM (iommu_platform=on; without a vIOMMU QEMU keeps
// the bit from the backend and addresses stay guest-physical), which makes
// the guest driver use the DMA API, and the guest boots with
// swiotlb=force (TCGDMAParams): every buffer is bounced, and the final copy
// into the destination page is a guest CPU store, which TCG sees.

// TCGDMAParams are the kernel parameters that bounce virtio-fs buffers
// through the swiotlb under TCG (see above): swiotlb=force with a pool of
// an eighth of guest memory, at least 16 MiB and at most 64 MiB (the
// kernel's default), given in 2 KiB slabs.
func TCGDMAParams(memMiB int) []string {
	pool := min(max(memMiB/8, 16), 64)
	return []string{fmt.Sprintf("swiotlb=%d,force", pool<<10/2)}
}

// fallbackTSCkHz is used where /proc/cpuinfo says nothing usable.
const fallbackTSCkHz = 2000000

// HostTSCkHz is the host's TSC frequency in kHz, from the first "cpu MHz"
// of /proc/cpuinfo (the kernel's calibrated TSC rate on x86 hosts with a
// constant TSC), else 2 GHz.
func HostTSCkHz() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return fallbackTSCkHz
	}
	return tscFromCPUInfo(string(b))
}

func tscFromCPUInfo(info string) int {
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) != "cpu MHz" {
			continue
		}
		mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || mhz < 100 || mhz > 10000 {
			return fallbackTSCkHz
		}
		return int(mhz * 1000)
	}
	return fallbackTSCkHz
}

// ErrNoQEMU reports a missing qemu-system-x86_64.
var ErrNoQEMU = errors.New("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")

// Config describes one QEMU run.
type Config struct {
	// Binary is the QEMU executable; default qemu-system-x86_64 on PATH.
	Binary string
	// Kernel is a bzImage (or a PVH vmlinux).
	Kernel string
	// Cmdline is the full kernel command line.
	Cmdline string
	CPUs    int
	MemMiB  int
	// Socket is the vhost-user socket of the root virtio-fs backend.
	Socket string
	// Tag is the virtio-fs tag; "/dev/root" for the root.
	Tag string
	// Accel is AccelKVM or AccelTCG.
	Accel string
	// Console is the pty slave that becomes the guest's hvc0 (QEMU gets
	// it as stdin, and as stdout opened again by name).
	Console *os.File
	// Stderr receives QEMU's own messages.
	Stderr io.Writer
	// Ports are named virtio-console ports (krun-stdin, krun-winsize...)
	// on a second virtio-serial device, each a unix socket QEMU connects
	// to as a client (listen before Start). They are virtserialports, not
	// consoles: QEMU throttles a port whose socket is full instead of
	// dropping, and when the host closes the socket the guest sees the
	// port closed (VIRTIO_CONSOLE_PORT_OPEN 0), so a read returns end of
	// file. The console keeps its own device without MULTIPORT, so hvc0
	// exists before init starts; these ports appear later, once Linux
	// has done the control handshake.
	Ports []Port
}

// Port is a named virtio-console port. File is QEMU's end of a
// connected socket (a socketpair the caller made); QEMU gets it as an
// inherited descriptor, and krunbench keeps its copy blocking (see
// Start), so output the guest wrote is never left inside QEMU when it
// exits. Start closes File once QEMU has exited.
type Port struct {
	Name string
	File *os.File
}

// firstPortFd is the descriptor number QEMU sees Ports[0].File as:
// exec.Cmd.ExtraFiles start after stdin, stdout and stderr.
const firstPortFd = 3

// Args returns QEMU's argument vector (without the binary).
func (c Config) Args() []string {
	cpu := "max"
	if c.Accel == AccelKVM {
		cpu = "host"
	}
	mem := strconv.Itoa(c.MemMiB) + "M"
	fs := "vhost-user-fs-device,chardev=vfs,tag=" + c.Tag + ",queue-size=1024"
	if c.Accel == AccelTCG {
		fs += ",iommu_platform=on" // with TCGDMAParams: see there
	}
	args := []string{
		"-M", "microvm,memory-backend=mem,x-option-roms=off,rtc=off",
		"-accel", c.Accel, "-cpu", cpu,
		"-smp", strconv.Itoa(c.CPUs), "-m", mem,
		"-object", "memory-backend-memfd,id=mem,size=" + mem + ",share=on",
		"-global", "virtio-mmio.force-legacy=false",
		"-chardev", "socket,id=vfs,path=" + c.Socket,
		"-device", fs,
		"-chardev", "stdio,id=con0,signal=off",
		"-device", "virtio-serial-device,max_ports=1",
		"-device", "virtconsole,chardev=con0",
		// The guest resets through the keyboard controller (reboot=k),
		// which -no-reboot turns into QEMU's exit.
		"-device", "i8042",
		"-display", "none", "-nodefaults", "-no-user-config", "-no-reboot",
		"-kernel", c.Kernel, "-append", c.Cmdline,
	}
	if len(c.Ports) > 0 {
		// Port 0 of a virtio-serial bus is reserved for a console: the
		// named ports take 1..n.
		args = append(args, "-device", fmt.Sprintf("virtio-serial-device,id=krunports,max_ports=%d", len(c.Ports)+1))
		for i, p := range c.Ports {
			id := fmt.Sprintf("port%d", i+1)
			args = append(args,
				"-chardev", fmt.Sprintf("socket,id=%s,fd=%d", id, firstPortFd+i),
				"-device", fmt.Sprintf("virtserialport,bus=krunports.0,nr=%d,chardev=%s,name=%s", i+1, id, p.Name))
		}
	}
	return args
}

// Process is a running QEMU.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start launches QEMU in its own process group; it dies with krunbench
// (parent-death signal) so a crash of ours leaves no stray QEMU.
func Start(c Config) (*Process, error) {
	closePorts := func() {
		for _, p := range c.Ports {
			p.File.Close()
		}
	}
	bin := c.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		closePorts()
		return nil, ErrNoQEMU
	}
	// The virtconsole drops whatever a non-blocking write could not take
	// (hw/char/virtio-console.c, flush_buf), and QEMU makes its chardev's
	// output non-blocking when it creates it (stdin too, for the stdio
	// chardev). So stdout is a second open file description of the pty,
	// which krunbench keeps too and turns back to blocking (keepBlocking):
	// when krunbench reads slowly, QEMU's write waits, and so does the
	// guest's console write (backpressure instead of loss).
	//
	// The named ports have the same need for another reason: a
	// virtserialport does not drop on a short write, it holds the guest's
	// buffer and waits for the socket (throttling), so whatever it still
	// held when the guest powered off was lost with QEMU (an 8 MiB flood
	// through krun-stdout lost its last 3.5 MiB). With QEMU's end of each
	// port socket kept blocking, QEMU holds nothing: what the guest wrote
	// is in the socket before the guest can go on, and the session reads
	// it after QEMU has exited.
	cmd := exec.Command(path, c.Args()...)
	for _, p := range c.Ports {
		cmd.ExtraFiles = append(cmd.ExtraFiles, p.File)
	}
	var out *os.File
	if c.Console != nil {
		out, err = os.OpenFile(c.Console.Name(), os.O_WRONLY|syscall.O_NOCTTY, 0)
		if err != nil {
			closePorts()
			return nil, fmt.Errorf("console for qemu: %w", err)
		}
		cmd.Stdin, cmd.Stdout = c.Console, out
	}
	cmd.Stderr = c.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		if out != nil {
			out.Close()
		}
		closePorts()
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	var shared []uintptr
	if out != nil {
		shared = append(shared, out.Fd())
	}
	for _, port := range c.Ports {
		shared = append(shared, port.File.Fd())
	}
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		keepBlocking(shared, p.done)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
		// The last copies of the pty's slave side and of QEMU's port
		// ends go with QEMU, so the session's readers see the end of
		// output once they have read it.
		<-watched
		if out != nil {
			out.Close()
		}
		closePorts()
	}()
	return p, nil
}

// keepBlocking clears O_NONBLOCK on QEMU's console output and its ports'
// sockets (open file descriptions krunbench shares with QEMU) whenever
// QEMU has set it, until done. QEMU sets it once on each, while it
// creates its chardevs, before any vCPU runs; the descriptions are
// checked every millisecond until each was cleared once (for 3 s at
// most), so every one is cleared long before the guest's first console
// write (the kernel has booted and probed virtio by then), and every
// 100 ms after that, which only guards against a QEMU that sets it again.
// A description fcntl fails on is no longer watched.
func keepBlocking(fds []uintptr, done <-chan struct{}) {
	fds = slices.Clone(fds)
	notCleared := make(map[uintptr]bool, len(fds))
	for _, fd := range fds {
		notCleared[fd] = true
	}
	fastUntil := time.Now().Add(3 * time.Second)
	for len(fds) > 0 {
		fds = slices.DeleteFunc(fds, func(fd uintptr) bool {
			cleared, err := clearNonblock(fd)
			if cleared || err != nil {
				delete(notCleared, fd)
			}
			return err != nil
		})
		wait := time.Millisecond
		if len(notCleared) == 0 || time.Now().After(fastUntil) {
			wait = 100 * time.Millisecond
		}
		select {
		case <-done:
			return
		case <-time.After(wait):
		}
	}
}

// clearNonblock clears O_NONBLOCK on fd's open file description and
// says whether it was set.
func clearNonblock(fd uintptr) (bool, error) {
	flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	if err != nil || flags&unix.O_NONBLOCK == 0 {
		return false, err
	}
	_, err = unix.FcntlInt(fd, unix.F_SETFL, flags&^unix.O_NONBLOCK)
	return err == nil, err
}

// Done is closed when QEMU has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is QEMU's exit status, valid after Done.
func (p *Process) Err() error { return p.err }

// Pid is QEMU's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop asks QEMU to quit (SIGTERM), then kills its process group if it is
// still there after grace.
func (p *Process) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}
