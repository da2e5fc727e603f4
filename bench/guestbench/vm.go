package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/krunbench/krunbench/bench/internal/hostinfo"
	"github.com/krunbench/krunbench/session/qemu"
)

const (
	tag        = "bench"
	socketWait = 10 * time.Second
	termWait   = 5 * time.Second
)

// proc is a child process in its own process group that dies with us.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

func startProc(name string, argv []string, stdout io.Writer, log *os.File) (*proc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop sends SIGTERM, then kills the process group after termWait.
func (p *proc) stop() {
	if p == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(termWait):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// tree is the process and its descendants (virtiofsd forks its worker
// into new namespaces and waits for it: the parent does no work).
func (p *proc) tree() []int {
	if p == nil {
		return nil
	}
	pids := []int{p.cmd.Process.Pid}
	for i := 0; i < len(pids); i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pids[i]))
		for _, t := range tasks {
			b, _ := os.ReadFile(t)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
		}
	}
	return pids
}

// cpu is the user+system CPU time in seconds of the process and its
// descendants (0 once it is gone or for a nil process).
func (p *proc) cpu() float64 {
	total := 0.0
	for _, pid := range p.tree() {
		c, _ := hostinfo.ProcCPUSeconds(pid) // 0 once it is gone
		total += c
	}
	return total
}

// rssSplit is a resident set in KiB, whole and by kind, from
// /proc/PID/status: anonymous memory (the backend's heap, stacks,
// buffers), file pages (its binary and libraries) and shared memory,
// which for a vhost-user backend is the pages of guest RAM (QEMU's memfd)
// it has touched through its mapping, not memory of its own.
type rssSplit struct {
	Total, Anon, File, Shmem int64
}

// rss is the resident set of the process and its descendants, summed.
func (p *proc) rss() rssSplit {
	var r rssSplit
	for _, pid := range p.tree() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			key, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			switch key {
			case "VmRSS":
				r.Total += n
			case "RssAnon":
				r.Anon += n
			case "RssFile":
				r.File += n
			case "RssShmem":
				r.Shmem += n
			}
		}
	}
	return r
}

// fds counts the descriptors the process and its descendants hold.
func (p *proc) fds() int {
	n := 0
	for _, pid := range p.tree() {
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
			n += len(ents)
		}
	}
	return n
}

// qemuArgs is the microvm command line for one boot: the same for every
// mode (kernel, memory backend, CPUs, console, the vhost-user-fs device
// and its options); only the backend behind the socket differs.
func qemuArgs(cfg *config, initrd, socket string) []string {
	cpu := "max"
	if cfg.accel == qemu.AccelKVM {
		cpu = "host"
	}
	mem := strconv.Itoa(cfg.memMiB) + "M"
	cmdline := "console=hvc0 reboot=k panic=-1 quiet rdinit=/init"
	if cfg.accel == qemu.AccelTCG {
		cmdline += " " + strings.Join(qemu.TCGParams(), " ")
	}
	fs := "vhost-user-fs-device,chardev=vfs,tag=" + tag + ",queue-size=" + strconv.Itoa(cfg.queueSize)
	if cfg.dmaBounce {
		// What the QEMU engine does under TCG (issue 16), for every backend.
		fs += ",iommu_platform=on"
		cmdline += " " + strings.Join(qemu.TCGDMAParams(cfg.memMiB), " ")
	}
	args := []string{
		"-M", "microvm,memory-backend=mem,x-option-roms=off,rtc=off",
		"-accel", cfg.accel, "-cpu", cpu,
		"-smp", strconv.Itoa(cfg.cpus), "-m", mem,
		"-object", "memory-backend-memfd,id=mem,size=" + mem + ",share=on",
		"-global", "virtio-mmio.force-legacy=false",
	}
	return append(args,
		"-chardev", "socket,id=vfs,path="+socket, "-device", fs,
		"-chardev", "stdio,id=con0,signal=off",
		"-device", "virtio-serial-device,max_ports=1",
		"-device", "virtconsole,chardev=con0",
		"-device", "i8042",
		"-display", "none", "-nodefaults", "-no-user-config", "-no-reboot",
		"-kernel", cfg.kernel, "-initrd", initrd, "-append", cmdline,
	)
}

// bootResult is what one boot gives: a sample per workload, the guest's
// virtio-fs feature bits, and for a counting boot the backend's own
// record of the requests (trace or debug log).
type bootResult struct {
	samples  map[string]measure
	features string
	countLog string
	logFile  string
	// failed holds the guest's error for each workload that failed.
	failed map[string]string
}

// boot runs one guest in mode m from initrd (which says the workloads)
// and returns its samples, one per workload, with the host CPU time the
// server and QEMU spent in each and the server's RSS at the end of each.
// A counting boot runs the server with its request record on
// (m.countArgv), for requestCounts; its timings are not used. A profile
// boot (prof not nil) runs the counting boot's workloads with perf
// attached to the server (profile.go), each workload's perf enabled from
// its begin line to its end line.
func boot(ctx context.Context, cfg *config, m *mode, tmp, share, label, initrd string, counting bool, prof *profiler) (*bootResult, error) {
	logFile := filepath.Join(tmp, label+".log")
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	socket := filepath.Join(tmp, label+".sock")
	out := &bootResult{samples: map[string]measure{}, logFile: logFile, failed: map[string]string{}}
	argv := m.argv(share, socket)
	srvLog := log
	if counting {
		out.countLog = filepath.Join(tmp, label+".requests")
		argv = m.countArgv(share, socket, out.countLog)
		if m.countFromStderr {
			if srvLog, err = os.Create(out.countLog); err != nil {
				return nil, err
			}
			defer srvLog.Close()
		}
	}
	fmt.Fprintf(log, "server: %s\n", strings.Join(argv, " "))
	srv, err := startProc("server", argv, log, srvLog)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	if err := waitSocket(ctx, srv, socket); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, tail(logFile))
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	args := qemuArgs(cfg, initrd, socket)
	fmt.Fprintf(log, "qemu: %s %s\n", cfg.qemu, strings.Join(args, " "))
	vm, err := startProc("qemu", append([]string{cfg.qemu}, args...), pw, log)
	pw.Close()
	if err != nil {
		return nil, err
	}
	defer vm.stop()

	if prof != nil {
		// After QEMU connects: virtiofsd forks the process that serves
		// only then, and perf, attached with its events disabled, would
		// miss the fork's record (the child's samples would name no
		// binary).
		prof.log = log
		err := prof.attach(settledTree(srv, m.serverProcs()), m.countWorkloads(cfg))
		defer prof.finish() // on errors; a no-op after the one below
		if err != nil {
			return nil, err
		}
	}
	timer := time.AfterFunc(cfg.timeout, func() { vm.stop() })
	defer timer.Stop()
	stopOnCancel := context.AfterFunc(ctx, func() { vm.stop() })
	defer stopOnCancel()

	res := out.samples
	var cpuSrv, cpuVM float64
	var guestErr error
	done := false
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		fmt.Fprintln(log, "console:", line)
		rest, ok := strings.CutPrefix(line, "GUESTBENCH ")
		if !ok {
			continue
		}
		verb, kv := parseLine(rest)
		switch verb {
		case "begin":
			if prof != nil {
				if err := prof.enable(kv["name"]); err != nil {
					return nil, err
				}
			}
			cpuSrv, cpuVM = srv.cpu(), vm.cpu()
		case "end":
			if prof != nil {
				if err := prof.disable(kv["name"]); err != nil {
					return nil, err
				}
			}
			secs, _ := strconv.ParseFloat(kv["seconds"], 64)
			units, _ := strconv.ParseFloat(kv["units"], 64)
			if secs <= 0 {
				return nil, fmt.Errorf("bad result line %q", line)
			}
			rss := srv.rss()
			res[kv["name"]] = measure{
				Seconds: secs, Units: units,
				ServerCPU: srv.cpu() - cpuSrv, QemuCPU: vm.cpu() - cpuVM,
				ServerRSSKiB: rss.Total, ServerAnonKiB: rss.Anon, ServerFileKiB: rss.File, ServerShmemKiB: rss.Shmem,
			}
			if f, ok := kv["failed"]; ok {
				m := res[kv["name"]]
				m.FilesFailed, _ = strconv.Atoi(f)
				m.FirstError, m.AfterError, m.FailedByErrno = kv["first_error"], kv["after_error"], kv["errnos"]
				m.ServerFDs = srv.fds()
				res[kv["name"]] = m
			}
		case "idle":
			// The memory walk's second RSS sample, after the guest left
			// the mount alone (runnerconfig.IdleAfterMemoryMs).
			if m, ok := res[kv["name"]]; ok {
				rss := srv.rss()
				m.IdleRSSKiB, m.IdleAnonKiB = rss.Total, rss.Anon
				res[kv["name"]] = m
			}
		case "features":
			out.features = kv["bits"]
		case "failed":
			out.failed[kv["name"]] = kv["msg"]
		case "error":
			guestErr = fmt.Errorf("guest: %s", kv["msg"])
		case "done":
			done = true
		}
	}
	<-vm.exited
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case guestErr != nil:
		return nil, guestErr
	case !done:
		return nil, fmt.Errorf("guest did not finish (qemu: %v; timeout %v)\n%s", vm.err, cfg.timeout, tail(logFile))
	}
	// The server's exit flushes its trace (and says whether it dropped
	// events): stop it before anyone reads the record; perf first, so
	// that it sees no exit.
	if prof != nil {
		if err := prof.finish(); err != nil {
			return nil, err
		}
	}
	srv.stop()
	return out, nil
}

// parseLine splits "verb k=v k2="quoted v" ..." into the verb and a map.
func parseLine(s string) (string, map[string]string) {
	verb, rest, _ := strings.Cut(s, " ")
	kv := map[string]string{}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ")
		k, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		var v string
		if strings.HasPrefix(after, `"`) {
			q, err := strconv.QuotedPrefix(after)
			if err != nil {
				v, rest = after, ""
			} else {
				v, _ = strconv.Unquote(q)
				rest = after[len(q):]
			}
		} else {
			v, rest, _ = strings.Cut(after, " ")
		}
		kv[k] = v
	}
	return verb, kv
}

func waitSocket(ctx context.Context, srv *proc, path string) error {
	deadline := time.Now().Add(socketWait)
	for time.Now().Before(deadline) {
		select {
		case <-srv.exited:
			return fmt.Errorf("the server exited before listening (%v)", srv.err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if st, err := os.Stat(path); err == nil && st.Mode()&os.ModeSocket != 0 {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.New("the server did not create its socket within " + socketWait.String())
}

// tail is the last lines of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-25):], "\n")
}
