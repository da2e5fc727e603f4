package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// bench holds what every run shares.
type bench struct {
	cfg             *config
	work, lib, root string
	// want is how many lines find prints: every file and directory,
	// /data included.
	want int
}

// sample is one run of the workload.
type sample struct {
	// Seconds is the guest's own `time -p` real time of the workload.
	Seconds   float64 `json:"seconds"`
	GuestUser float64 `json:"guest_user_s"`
	GuestSys  float64 `json:"guest_sys_s"`
	Found     int     `json:"found"`
	// LockWaitS is how long the run waited for the benchmark lock;
	// WallS is the rest: boot, workload and shutdown.
	// HostS is the workload's time on the host's clock: from the
	// script's first line (run) or the Enter that starts it (TUI) to
	// its result, to 0.1 s; a cross-check of the guest's clock.
	HostS     float64 `json:"host_s"`
	LockWaitS float64 `json:"lock_wait_s"`
	WallS     float64 `json:"wall_s"`
	// KrunbenchCPU and QEMUCPU are the host CPU seconds the krunbench
	// process (server, and the TUI in the TUI modes) and QEMU used from
	// the workload's start until its result appeared.
	KrunbenchCPU float64  `json:"krunbench_cpu_s"`
	QEMUCPU      float64  `json:"qemu_cpu_s"`
	UI           *uiStats `json:"ui,omitempty"`
}

func (s *sample) uiSummary() string {
	if s.UI == nil {
		return fmt.Sprintf("; host %.1fs; host CPU krunbench %.1fs, qemu %.1fs", s.HostS, s.KrunbenchCPU, s.QEMUCPU)
	}
	u := s.UI
	return fmt.Sprintf("; host %.1fs; host CPU krunbench %.1fs, qemu %.1fs; flood: %d frames (%.0f/s, avg %.2fms, p99 up to %.2fms), overlay max %.1fms, backlog up to %.0fms, dropped %d events (%d by the subscription); traffic counter rose in %d/%d intervals",
		s.HostS, s.KrunbenchCPU, s.QEMUCPU, u.FloodFrames, u.FloodFPS, u.FloodAvgMs, u.FloodP99Ms, u.End.MaxMs, u.FloodBacklogMs, u.End.Dropped, u.End.SubDropped, u.Rises, u.Intervals)
}

// once runs the workload once in mode m.
func (b *bench) once(ctx context.Context, m string, rep int) (*sample, error) {
	if err := os.Remove(filepath.Join(b.root, outName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if n, err := warmHost(b.root); err != nil || n != b.want {
		return nil, fmt.Errorf("warming the tree: %d entries, %v", n, err)
	}
	var s *sample
	var err error
	if m == modeRun {
		s, err = b.runMode(ctx)
	} else {
		s, err = b.tuiMode(ctx, m == modePaused, fmt.Sprintf("%s-%d", m, rep+1))
	}
	if err != nil {
		return nil, err
	}
	if s.Found != b.want {
		return nil, fmt.Errorf("find printed %d lines, want %d", s.Found, b.want)
	}
	return s, nil
}

// readResult parses what the script left in the root: "COUNT real R user
// U sys S".
func (b *bench) readResult(s *sample) error {
	data, err := os.ReadFile(filepath.Join(b.root, outName))
	if err != nil {
		return err
	}
	return parseResult(string(data), s)
}

func parseResult(text string, s *sample) error {
	f := strings.Fields(text)
	if len(f) != 7 || f[1] != "real" || f[3] != "user" || f[5] != "sys" {
		return fmt.Errorf("unexpected workload result %q", text)
	}
	if _, err := fmt.Sscan(f[0], &s.Found); err != nil {
		return fmt.Errorf("workload result %q: %w", text, err)
	}
	for i, p := range []*float64{&s.Seconds, &s.GuestUser, &s.GuestSys} {
		if _, err := fmt.Sscan(f[2+2*i], p); err != nil {
			return fmt.Errorf("workload result %q: %w", text, err)
		}
	}
	return nil
}

// lockArgs wraps argv in flock on the benchmark lock.
func (b *bench) lockArgs(argv ...string) []string {
	wait := fmt.Sprint(int(b.cfg.lockWait.Seconds()))
	return append([]string{"flock", "-w", wait, b.cfg.lock}, argv...)
}

// runMode: krunbench run, the script as the workload; the guest exits
// when it is done.
func (b *bench) runMode(ctx context.Context) (*sample, error) {
	argv := b.lockArgs(b.cfg.bin, "run", "--engine", "qemu", "--accel", b.cfg.accel,
		"--rootfs", b.root, "--kernel", b.cfg.kernel, "--", "/"+scriptName)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := newWatch(cmd.Process.Pid)
	defer w.reap()
	lines := make(chan string, 64)
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		done <- cmd.Wait()
	}()
	all := lines
	kill := func(sig syscall.Signal) {
		syscall.Kill(-cmd.Process.Pid, sig)
		for range all {
		}
		<-done
	}
	s := &sample{}
	var cpu0 cpuPair
	var begun time.Time
	limit := time.NewTimer(b.cfg.lockWait + b.cfg.timeout)
	defer limit.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var console []string
	handle := func(l string) {
		console = append(console, l)
		w.scan()
		switch {
		case strings.Contains(l, "TUIBENCH start"):
			cpu0, begun = w.cpu(), time.Now()
		case strings.Contains(l, "TUIBENCH done") && !begun.IsZero():
			s.KrunbenchCPU, s.QEMUCPU = w.cpu().since(cpu0)
			s.HostS = time.Since(begun).Seconds()
		}
	}
	for {
		select {
		case <-ctx.Done():
			kill(syscall.SIGTERM)
			return nil, ctx.Err()
		case <-limit.C:
			kill(syscall.SIGKILL)
			return nil, fmt.Errorf("krunbench run timed out:\n%s", strings.Join(console, "\n"))
		case <-tick.C:
			w.scan()
			if s.LockWaitS == 0 && w.krunbench != 0 {
				s.LockWaitS = time.Since(start).Seconds()
			}
		case l, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			handle(l)
		case err := <-done:
			if lines != nil {
				for l := range lines {
					handle(l)
				}
			}
			s.WallS = time.Since(start).Seconds() - s.LockWaitS
			if err != nil {
				return nil, fmt.Errorf("krunbench run: %v\n%s", err, strings.Join(console, "\n"))
			}
			if err := b.readResult(s); err != nil {
				return nil, fmt.Errorf("%w\n%s", err, strings.Join(console, "\n"))
			}
			return s, w.reap()
		}
	}
}

// tuiMode: the workbench in tmux; the script typed into the guest shell.
func (b *bench) tuiMode(ctx context.Context, paused bool, name string) (*sample, error) {
	t, err := newTmux(b.cfg.cols, b.cfg.rows)
	if err != nil {
		return nil, err
	}
	pane, err := t.panePID()
	if err != nil {
		t.close()
		return nil, err
	}
	w := newWatch(pane)
	defer func() {
		t.close()
		w.reap()
	}()
	start := time.Now()
	s := &sample{UI: &uiStats{}}
	line := fmt.Sprintf("KRUNBENCH_KERNEL=%s %s --library %s --accel %s; echo TUIBENCH-EXIT=$?",
		shellQuote(b.cfg.kernel), shellJoin(b.lockArgs(b.cfg.bin)), shellQuote(b.lib), b.cfg.accel)
	if err := t.send(line, "Enter"); err != nil {
		return nil, err
	}
	if _, err := t.waitFor(ctx, `krun-init \(default\)`, b.cfg.lockWait+30*time.Second); err != nil {
		return nil, err
	}
	s.LockWaitS = time.Since(start).Seconds()
	booted := time.Now()
	keys := [][]string{{"Down"}, {"Space"}, {"Enter"}}
	if err := t.sendEach(keys...); err != nil {
		return nil, err
	}
	if _, err := t.waitFor(ctx, `/ # `, 2*time.Minute); err != nil {
		return nil, err
	}
	w.scan()
	keys = [][]string{{"C-]"}, {"`"}}
	if paused {
		keys = append(keys, []string{"3"}, []string{"Space"}, []string{"2"})
	}
	if err := t.sendEach(keys...); err != nil {
		return nil, err
	}
	want := `frames\s+\d+`
	if paused {
		want = `(?s)frames\s+\d+.*⏸ paused`
	}
	if _, err := t.waitFor(ctx, want, 10*time.Second); err != nil {
		return nil, fmt.Errorf("debug overlay or pause not shown: %w", err)
	}
	if err := t.sendEach([]string{"Enter"}, []string{"/" + scriptName, "Enter"}); err != nil {
		return nil, err
	}
	w.scan()
	cpu0, t0 := w.cpu(), time.Now()
	first := t.screen()
	s.UI.Start = parseOverlay(first)
	s.UI.add(0, first)
	captures := []string{first}
	out := filepath.Join(b.root, outName)
	nextSample := time.Now().Add(b.cfg.sample)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if time.Since(t0) > b.cfg.timeout {
			return nil, fmt.Errorf("the workload did not finish within %s:\n%s", b.cfg.timeout, t.screen())
		}
		if _, err := os.Stat(out); err == nil {
			break
		}
		if time.Now().After(nextSample) {
			sc := t.screen()
			s.UI.add(time.Since(t0).Seconds(), sc)
			captures = append(captures, sc)
			w.scan()
			nextSample = nextSample.Add(b.cfg.sample)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.KrunbenchCPU, s.QEMUCPU = w.cpu().since(cpu0)
	elapsed := time.Since(t0).Seconds()
	s.HostS = elapsed
	last := t.screen()
	captures = append(captures, last)
	s.UI.End = parseOverlay(last)
	s.UI.finish(elapsed)
	if err := b.readResult(s); err != nil {
		return nil, err
	}
	if b.cfg.keep {
		b.saveCaptures(name, captures)
	}
	if err := t.sendEach([]string{"C-]"}, []string{"q"}); err != nil {
		return nil, err
	}
	// With the guest still running the TUI asks before stopping it
	// (tui/overlay.go's quit question); answer it.
	sc, err := t.waitFor(ctx, `A guest is running|TUIBENCH-EXIT=`, 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("the TUI did not quit: %w", err)
	}
	if strings.Contains(sc, "A guest is running") {
		if err := t.send("y"); err != nil {
			return nil, err
		}
	}
	if _, err := t.waitFor(ctx, `TUIBENCH-EXIT=0`, 60*time.Second); err != nil {
		return nil, fmt.Errorf("the TUI did not quit cleanly: %w", err)
	}
	s.WallS = time.Since(booted).Seconds()
	return s, w.reap()
}

func (b *bench) saveCaptures(name string, captures []string) {
	dir := filepath.Join(b.work, "captures")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	text := strings.Join(captures, "\n\f\n")
	if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(text), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "tuibench:", err)
	}
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}
