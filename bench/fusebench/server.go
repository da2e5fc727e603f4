package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/bench/internal/hostinfo"
)

// mode is one way of reaching the shared directory.
type mode struct {
	Name  string   `json:"name"`
	Label string   `json:"label"`
	Desc  string   `json:"description"`
	Argv  []string `json:"argv,omitempty"`
	// Mount is where a FUSE mode is mounted for the whole run.
	Mount string `json:"mount,omitempty"`
	// ours marks krunbench's server; fuse marks any FUSE mount.
	ours, fuse bool
	trace      string
}

const (
	modeHost    = "host"
	modeNoTap   = "no-tap"
	modeTap     = "tap"
	modeTrace   = "tap+trace"
	modeGoFuse  = "go-fuse"
	modeGoFuseP = "go-fuse-pt"
	modePtHP    = "passthrough_hp"
	modeRules   = "rules100"
	mountWait   = 15 * time.Second
	termWait    = 5 * time.Second
	settleIdle  = 100 * time.Millisecond
	settleLimit = 3 * time.Second
)

var allModes = []string{modeHost, modeNoTap, modeTap, modeTrace, modeRules, modeGoFuse, modeGoFuseP, modePtHP, modeWriteback}

// defaultModes leave out go-fuse-pt, informational and not comparable.
var defaultModes = []string{modeHost, modeNoTap, modeTap, modeTrace, modeGoFuse}

// buildModes describes every mode; each FUSE mode gets its own mount
// point under tmp. share, tmp, traceFile and rulesFile are absolute.
func buildModes(cfg *config, share, tmp, traceFile, rulesFile string) map[string]*mode {
	mnt := func(name string) string { return filepath.Join(tmp, "mnt-"+strings.ReplaceAll(name, "+", "-")) }
	serve := func(name string, extra ...string) []string {
		return append([]string{cfg.bin, "serve", "--shared-dir", share, "--mount", mnt(name)}, extra...)
	}
	loopback := func(name string, extra ...string) []string {
		return append([]string{cfg.loopback, "-shared-dir", share, "-mount", mnt(name)}, extra...)
	}
	modes := map[string]*mode{
		modeHost: {Name: modeHost, Label: "host", Desc: "the shared directory itself, no FUSE"},
		modeNoTap: {Name: modeNoTap, Label: "no-tap (b)", Desc: "krunbench serve --no-tap",
			Argv: serve(modeNoTap, "--no-tap"), ours: true, fuse: true},
		modeTap: {Name: modeTap, Label: "tap (c)", Desc: "krunbench serve (tap on, no subscriber: the default)",
			Argv: serve(modeTap), ours: true, fuse: true},
		modeTrace: {Name: modeTrace, Label: "trace (d)", Desc: "krunbench serve --trace FILE (tap on, JSON lines on the same disk)",
			Argv: serve(modeTrace, "--trace", traceFile), ours: true, fuse: true, trace: traceFile},
		modeRules: {Name: modeRules, Label: "100 rules", Desc: "krunbench serve --rules FILE: as tap (c), with 100 rules none of which matches the share (see rules.go)",
			Argv: serve(modeRules, "--rules", rulesFile), ours: true, fuse: true},
		modeWriteback: {Name: modeWriteback, Label: "writeback (f)", Desc: "krunbench serve --writeback: as tap (c), with the kernel's writeback cache as passthrough_hp has it (write rows only, see writeback.go)",
			Argv: serve(modeWriteback, "--writeback"), ours: true, fuse: true},
		modeGoFuse: {Name: modeGoFuse, Label: "go-fuse (e)", Desc: "go-fuse v2 fs.NewLoopbackRoot (bench/loopback), FUSE passthrough off",
			Argv: loopback(modeGoFuse), fuse: true},
		modeGoFuseP: {Name: modeGoFuseP, Label: "go-fuse+pt", Desc: "as go-fuse, with its default FUSE passthrough on (the kernel reads and writes the backing file itself; not comparable, virtio-fs cannot do it)",
			Argv: loopback(modeGoFuseP, "-passthrough"), fuse: true},
		modePtHP: {Name: modePtHP, Label: "passthrough_hp", Desc: "libfuse 3.14 example/passthrough_hp as shipped (C++, multithreaded, splice; 86400 s timeouts, writeback cache, keep_cache, default_permissions)",
			Argv: []string{cfg.passthroughHP, "--foreground", share, mnt(modePtHP)}, fuse: true},
	}
	for name, m := range modes {
		if m.fuse {
			m.Mount = mnt(name)
		}
	}
	return modes
}

// startServers mounts every FUSE mode in names, side by side, for the
// whole run; the returned function stops them all (it is also on the
// cleanup stack).
func startServers(cl *cleanups, names []string, modes map[string]*mode, tmp string) (map[string]*server, func(), error) {
	srvs := map[string]*server{}
	var stops []func()
	stopAll := func() {
		for _, stop := range slices.Backward(stops) {
			stop()
		}
	}
	for _, name := range names {
		m := modes[name]
		if !m.fuse {
			continue
		}
		if err := os.Mkdir(m.Mount, 0o755); err != nil && !os.IsExist(err) { // made by the cold rows
			stopAll()
			return nil, nil, err
		}
		cl.push("unmount "+m.Mount, func() error { return unmountIfMounted(m.Mount) })
		logFile := filepath.Join(tmp, strings.ReplaceAll(name, "+", "-")+".log")
		srv, stop, err := startServer(cl, m, m.Mount, logFile)
		if err != nil {
			stopAll()
			return nil, nil, err
		}
		srvs[name] = srv
		stops = append(stops, stop)
	}
	return srvs, stopAll, nil
}

// server is a running FUSE server process.
type server struct {
	mode   *mode
	mnt    string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error
}

// startServer runs m's server and waits until mnt is a live FUSE mount.
// The returned stop function is also on the cleanup stack.
func startServer(cl *cleanups, m *mode, mnt, logFile string) (*server, func(), error) {
	if err := unmountIfMounted(mnt); err != nil {
		return nil, nil, err
	}
	lf, err := os.Create(logFile)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(m.Argv[0], m.Argv[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, nil, fmt.Errorf("start %s: %w", m.Name, err)
	}
	s := &server{mode: m, mnt: mnt, cmd: cmd, log: logFile, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		lf.Close()
		close(s.exited)
	}()
	stop := cl.push("server "+m.Name, s.stop)
	if err := s.waitMounted(); err != nil {
		stop()
		return nil, nil, err
	}
	return s, stop, nil
}

func (s *server) waitMounted() error {
	deadline := time.Now().Add(mountWait)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited before mounting (%v):\n%s", s.mode.Name, s.err, tail(s.log, 20))
		default:
		}
		if fstype, ok := mountType(s.mnt); ok && strings.HasPrefix(fstype, "fuse") {
			var st unix.Stat_t
			if err := unix.Stat(s.mnt, &st); err != nil {
				return fmt.Errorf("%s: stat %s: %w", s.mode.Name, s.mnt, err)
			}
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s did not mount %s within %v:\n%s", s.mode.Name, s.mnt, mountWait, tail(s.log, 20))
}

// stop asks the server to unmount and exit (SIGTERM), kills it if it does
// not, and lazily unmounts whatever is left.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(termWait):
		fmt.Fprintf(os.Stderr, "fusebench: %s ignored SIGTERM for %v; killing it\n", s.mode.Name, termWait)
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	return unmountIfMounted(s.mnt)
}

// unmountIfMounted detaches whatever is mounted on dir.
func unmountIfMounted(dir string) error {
	for range 10 {
		if _, ok := mountType(dir); !ok {
			return nil
		}
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("umount %s: %w", dir, err)
		}
	}
	return fmt.Errorf("umount %s: still mounted", dir)
}

// mountType returns the filesystem type mounted exactly on dir, from
// /proc/self/mountinfo.
func mountType(dir string) (string, bool) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	defer f.Close()
	fstype, found := "", false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || unescapeMount(fields[4]) != dir {
			continue
		}
		for i, fld := range fields {
			if fld == "-" && i+1 < len(fields) {
				fstype, found = fields[i+1], true
			}
		}
	}
	return fstype, found
}

var octalEscape = regexp.MustCompile(`\\[0-7]{3}`)

func unescapeMount(s string) string {
	return octalEscape.ReplaceAllStringFunc(s, func(e string) string {
		n, _ := strconv.ParseUint(e[1:], 8, 8)
		return string(rune(n))
	})
}

// cpu returns the server's CPU seconds so far, or 0 without a server.
func (s *server) cpu() float64 {
	if s == nil {
		return 0
	}
	c, err := hostinfo.ProcCPUSeconds(s.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return c
}

// settleAll settles every server at once: a cache drop makes all of
// them busy with FORGETs, not only the one about to be measured.
func settleAll(srvs []*server) {
	var wg sync.WaitGroup
	for _, s := range srvs {
		wg.Go(s.settle)
	}
	wg.Wait()
}

// settle waits until the server has stopped burning CPU (the FORGETs a
// cache drop sends, the trace writer catching up), so that the next
// measurement does not pay for the previous one.
func (s *server) settle() {
	if s == nil {
		return
	}
	deadline := time.Now().Add(settleLimit)
	last := s.cpu()
	for time.Now().Before(deadline) {
		time.Sleep(settleIdle)
		now := s.cpu()
		if now == last {
			return
		}
		last = now
	}
}

// traceDropped reads the dropped-event count krunbench prints on exit.
func traceDropped(logFile string) uint64 {
	b, err := os.ReadFile(logFile)
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`trace: (\d+) events dropped`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseUint(string(m[1]), 10, 64)
	return n
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
