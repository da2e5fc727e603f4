// Command krun-init is krunbench's default init: the static program the
// guest kernel runs as /init.krun, speaking libkrun's init protocol. It
// mounts the pseudo file systems (optionally switching to a block-device
// root), reads /.krun_config.json, sets up the workload's environment,
// hostname, rlimits and working directory, starts the workload (argv from
// KRUN_INIT and the kernel's arguments, else the config, else /bin/sh) with
// its standard streams on the krun-std* virtio-console ports when present,
// reaps every child until the workload ends (the console, the device behind
// /dev/console, is its controlling terminal, sized by the host through
// the krun-winsize port when there is one), reports the workload's exit
// code through ioctl 0x7602 on the root virtio-fs, syncs and reboots.
//
// The init's own failures report 125 (set-up), 126 (exec failed) or 127
// (not found). With KRUN_INIT_PID1=1 the workload replaces the init as
// PID 1. With krunbench.trace=1 on the kernel command line the init prints
// milestone lines on the console (see package initlib/milestone).
//
// The protocol logic lives in package kruninit; this file does the system
// calls. Build it with CGO_ENABLED=0 (make init).
package main

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/initlib/kruninit"
	"github.com/krunbench/krunbench/initlib/milestone"
)

// tracing is set once /proc is mounted and krunbench.trace=1 is seen.
var tracing bool

// rootFd is a descriptor of the root virtio-fs kept across a switch to a
// block-device root, or -1.
var rootFd = -1

func warn(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "krun-init: warning: "+format+"\n", args...)
}

// failure is an init failure: its message is printed and its code
// reported.
type failure struct {
	code int
	msg  string
}

func fail(code int, format string, args ...any) *failure {
	return &failure{code, fmt.Sprintf(format, args...)}
}

func sinceBoot() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// reachMilestone prints m when tracing.
func reachMilestone(m milestone.Milestone) {
	if tracing {
		fmt.Fprintln(os.Stderr, m.String())
	}
}

// init keeps main on the process's first thread for good. The exit-code
// ioctl's FUSE header carries the calling thread's id, and the server
// accepts the report only from 1: the init's main thread, which no other
// guest process can be.
func init() { runtime.LockOSThread() }

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "krun-init: refusing to run: not PID 1 (this is the guest's init)")
		os.Exit(kruninit.CodeInitFailure)
	}
	code := run()
	finish(code)
}

// run does everything up to the workload's end and returns the code to
// report.
func run() int {
	env := os.Environ()
	setup, f := prepare(env)
	if f != nil {
		fmt.Fprintln(os.Stderr, "krun-init: "+f.msg)
		return f.code
	}
	return start(setup)
}

// workload is what prepare hands to start.
type workload struct {
	path string
	argv []string
	env  []string
}

// prepare runs steps 1-7 of the protocol: mounts, session, loopback,
// config, environment, hostname, rlimits, workdir, argv.
func prepare(env []string) (*workload, *failure) {
	mountPseudo()
	cmdline, _ := os.ReadFile("/proc/cmdline")
	tracing = kruninit.TraceEnabled(string(cmdline), env)
	waitForPorts(kruninit.ExpectedPorts(string(cmdline)))
	attachConsole()
	if dev, fstype, opts, ok := kruninit.BlockRoot(env); ok {
		rootFd = openVirtiofsRoot()
		if err := switchToBlockRoot(dev, fstype, opts); err != nil {
			return nil, fail(kruninit.CodeInitFailure, "block root %s: %v", dev, err)
		}
	}
	reachMilestone(milestone.Milestone{Name: milestone.Mounted, Boot: sinceBoot()})
	if tracing {
		reportImage()
	}

	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SHARED, ""); err != nil {
		warn("make / shared: %v", err)
	}
	if _, err := unix.Setsid(); err != nil {
		warn("setsid: %v", err)
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 1); err != nil {
		warn("controlling terminal: %v", err)
	}
	bringUpLoopback()

	cfg, f := readConfig(env)
	if f != nil {
		return nil, f
	}
	wenv := kruninit.WorkloadEnv(env, cfg)
	if err := unix.Sethostname([]byte(kruninit.Hostname(wenv))); err != nil {
		warn("sethostname: %v", err)
	}
	spec, _ := kruninit.Getenv(wenv, "KRUN_RLIMITS")
	limits, err := kruninit.ParseRlimits(spec)
	if err != nil {
		return nil, fail(kruninit.CodeInitFailure, "%v", err)
	}
	for _, l := range limits {
		if err := unix.Setrlimit(l.Resource, &unix.Rlimit{Cur: l.Cur, Max: l.Max}); err != nil {
			return nil, fail(kruninit.CodeInitFailure, "KRUN_RLIMITS: setrlimit(%d, %d:%d): %v", l.Resource, l.Cur, l.Max, err)
		}
	}
	if dir := kruninit.Workdir(wenv, cfg); dir != "" {
		if err := unix.Chdir(dir); err != nil {
			return nil, fail(kruninit.CodeInitFailure, "cannot change to the working directory %q: %v", dir, err)
		}
	}
	reachMilestone(milestone.Milestone{Name: milestone.Config, Boot: sinceBoot()})

	argv := kruninit.SelectArgv(wenv, os.Args[1:], cfg)
	pathList, _ := kruninit.Getenv(wenv, "PATH")
	path, err := kruninit.LookPath(argv[0], pathList, os.Stat)
	if err != nil {
		return nil, fail(kruninit.ExecErrorCode(err), "%v", err)
	}
	return &workload{path: path, argv: argv, env: wenv}, nil
}

// reportImage prints which init image is running: its size and digest,
// read through /proc/self/exe to the end (on krunbench's virtio-fs that is
// every READ of /init.krun, down to the one at EOF that returns 0 bytes).
func reportImage() {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		warn("image: %v", err)
		return
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		warn("image: %v", err)
		return
	}
	fmt.Fprintf(os.Stderr, "krun-init: image %d bytes sha256 %x\n", n, h.Sum(nil))
}

// readConfig reads and parses the config file; the default path may be
// absent, a KRUN_CONFIG path may not.
func readConfig(env []string) (*kruninit.Config, *failure) {
	path, explicit := kruninit.ConfigPath(env)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !explicit {
			return nil, nil
		}
		return nil, fail(kruninit.CodeInitFailure, "config: %v", err)
	}
	cfg, err := kruninit.ParseConfig(data)
	if err != nil {
		return nil, fail(kruninit.CodeInitFailure, "%s: %v", path, err)
	}
	return cfg, nil
}

// stdio opens the krun-std* ports that exist; the others stay the
// console (init's own 0, 1, 2). The descriptors are raw (no *os.File whose
// finalizer could close them) and close-on-exec: the workload gets them as
// 0, 1, 2 only.
func stdio() []uintptr {
	fds := []uintptr{0, 1, 2}
	ports := kruninit.ConsolePorts(os.DirFS("/"))
	for i, p := range []struct {
		name string
		flag int
	}{{kruninit.PortStdin, unix.O_RDONLY}, {kruninit.PortStdout, unix.O_WRONLY}, {kruninit.PortStderr, unix.O_WRONLY}} {
		dev, ok := ports[p.name]
		if !ok {
			continue
		}
		fd, err := unix.Open(dev, p.flag|unix.O_CLOEXEC, 0)
		if err != nil {
			warn("open %s (%s): %v", dev, p.name, err)
			continue
		}
		fds[i] = uintptr(fd)
	}
	return fds
}

// portsWait bounds the wait for the ports the host announced; past it
// the init goes on without the missing ones (and says so).
const portsWait = 60 * time.Second

// waitForPorts waits until sysfs lists every port of want (see
// kruninit.PortsParam). sysfs cannot be watched, so it is polled.
func waitForPorts(want []string) {
	if len(want) == 0 {
		return
	}
	deadline := time.Now().Add(portsWait)
	for {
		missing := kruninit.MissingPorts(kruninit.ConsolePorts(os.DirFS("/")), want)
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			warn("virtio-console ports %s did not appear within %s", strings.Join(missing, ", "), portsWait)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// consoleFd is the console device the init attached, or -1.
var consoleFd = -1

// attachConsole makes the device behind /dev/console (hvc0) the init's
// fds 0, 1 and 2. The kernel opened /dev/console on its initial rootfs,
// whose node no path in the running system names, so ttyname(3) finds no
// name for it and `tty` says "not a tty"; the device opened by its own
// name is the same terminal, reachable by path. It also becomes the
// controlling terminal (setsid and TIOCSCTTY, in prepare).
func attachConsole() {
	name := kruninit.ActiveConsole(os.DirFS("/"))
	if name == "" {
		return
	}
	fd, err := unix.Open("/dev/"+name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		warn("console /dev/%s: %v", name, err)
		return
	}
	for i := range 3 {
		if err := unix.Dup3(fd, i, 0); err != nil {
			warn("console onto fd %d: %v", i, err)
		}
	}
	consoleFd = fd
}

// sizeConsole applies the window sizes the host sends on the krun-winsize
// port to the console: the first line before the workload starts (the
// host sends it as soon as the port exists), the later ones as they come;
// TIOCSWINSZ signals SIGWINCH to the console's foreground job. A size
// with a zero dimension means unknown and is skipped.
func sizeConsole() {
	dev, ok := kruninit.ConsolePorts(os.DirFS("/"))[kruninit.PortWinsize]
	if !ok || consoleFd < 0 {
		return
	}
	f, err := os.Open(dev)
	if err != nil {
		warn("open %s (%s): %v", dev, kruninit.PortWinsize, err)
		return
	}
	lines := bufio.NewScanner(f)
	apply := func() bool {
		if !lines.Scan() {
			return false
		}
		if cols, rows, ok := kruninit.ParseWinsize(lines.Text()); ok && cols > 0 && rows > 0 {
			if err := unix.IoctlSetWinsize(consoleFd, unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: rows}); err != nil {
				warn("console size: %v", err)
			}
		}
		return true
	}
	if !apply() {
		f.Close()
		return
	}
	go func() {
		for apply() {
		}
		f.Close()
	}()
}

// start runs the workload and returns its exit code, or an exec
// failure's.
func start(w *workload) int {
	fds := stdio()
	sizeConsole()
	if kruninit.PID1(w.env) {
		for i, fd := range fds {
			if fd != uintptr(i) {
				if err := unix.Dup3(int(fd), i, 0); err != nil {
					warn("dup3 %d: %v", i, err)
				}
			}
		}
		reachMilestone(milestone.Milestone{Name: milestone.Exec, Boot: sinceBoot()})
		err := syscall.Exec(w.path, w.argv, w.env)
		fmt.Fprintf(os.Stderr, "krun-init: exec %s: %v\n", w.argv[0], err)
		return kruninit.ExecErrorCode(err)
	}

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2)
	reachMilestone(milestone.Milestone{Name: milestone.Exec, Boot: sinceBoot()})
	pid, err := syscall.ForkExec(w.path, w.argv, &syscall.ProcAttr{Env: w.env, Files: fds})
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) {
			fmt.Fprintf(os.Stderr, "krun-init: fork: %v\n", err)
			return kruninit.CodeInitFailure
		}
		fmt.Fprintf(os.Stderr, "krun-init: exec %s: %v\n", w.argv[0], err)
		return kruninit.ExecErrorCode(err)
	}
	go forward(sigs, pid)
	return reap(pid)
}

// forward passes the signals sent to the init on to the workload. SIGINT
// and SIGQUIT come from the console, which already sends them to the whole
// foreground process group, workload included: they are only swallowed
// (a Go program that does not handle them would exit, and init must not).
func forward(sigs <-chan os.Signal, pid int) {
	for s := range sigs {
		sig := s.(syscall.Signal)
		if sig == unix.SIGINT || sig == unix.SIGQUIT {
			continue
		}
		_ = unix.Kill(pid, sig)
	}
}

// reap waits for every child, orphans included, until the workload ends,
// and returns the workload's exit code.
func reap(pid int) int {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			fmt.Fprintf(os.Stderr, "krun-init: wait: %v\n", err)
			return kruninit.CodeInitFailure
		case got == pid:
			return kruninit.ExitCode(syscall.WaitStatus(ws))
		}
	}
}

// finish reports code to the VMM, syncs and reboots (the VMM's exit).
func finish(code int) {
	reachMilestone(milestone.Milestone{Name: milestone.Exit, Boot: sinceBoot(), Code: code, HasCode: true})
	if err := reportExit(code); err != nil {
		warn("report exit code %d: %v", code, err)
	}
	unix.Sync()
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	fmt.Fprintf(os.Stderr, "krun-init: reboot: %v\n", err)
	os.Exit(code)
}

// reportExit issues the exit-code ioctl on the root virtio-fs: on / when
// statfs says it is one, else on the descriptor kept from before a switch
// to a block root. Without either there is no one to tell.
func reportExit(code int) error {
	var st unix.Statfs_t
	fd := -1
	if err := unix.Statfs("/", &st); err == nil && st.Type == kruninit.VirtiofsMagic {
		f, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /: %w", err)
		}
		defer unix.Close(f)
		fd = f
	} else if rootFd >= 0 {
		fd = rootFd
	} else {
		return fmt.Errorf("root is not virtio-fs (f_type 0x%x)", st.Type)
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kruninit.ExitCodeIoctl, uintptr(code)); errno != 0 {
		return errno
	}
	return nil
}
