package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/kvm/kvmtest"
)

// The console flood tests of issue 16: a guest prints numbered lines much
// faster than krunbench's reader takes them, and every line must arrive,
// in order, undamaged. The reader is slowed on purpose: krunbench's stdout
// is a one-page pipe that the test drains a page at a time, pausing after
// every floodPauseEvery bytes, so the console path is full most of the
// time and must hold the guest back instead of dropping what it prints.

const (
	// floodLineSize is floodlines' line length, newline included.
	floodLineSize = 64
	// floodPauseEvery and floodPause shape the slow reader: the pauses
	// are load, not synchronization (nothing waits on them).
	floodPauseEvery = 256 << 10
	floodPause      = 20 * time.Millisecond
)

// floodBytes is how much the flood tests print: $KRUNBENCH_FLOOD_MIB MiB
// (make flood sets 200), else def.
func floodBytes(t *testing.T, def int) int {
	t.Helper()
	s := os.Getenv("KRUNBENCH_FLOOD_MIB")
	if s == "" {
		return def
	}
	mib, err := strconv.Atoi(s)
	if err != nil || mib <= 0 {
		t.Fatalf("KRUNBENCH_FLOOD_MIB=%q: want a positive number of MiB", s)
	}
	return mib << 20
}

// floodLimit bounds a flood run: three minutes for the boot, plus the
// output at 100 KiB/s, a quarter of what TCG on a busy 2-core machine
// managed (0.4 MiB/s through the slow reader).
func floodLimit(size int) time.Duration {
	return 3*time.Minute + time.Duration(size/(100<<10))*time.Second
}

// wantFloodLine is line n as floodlines prints it.
func wantFloodLine(b []byte, n int) []byte {
	b = fmt.Appendf(b[:0], "%010d ", n)
	for i := range floodLineSize - 12 {
		b = append(b, byte('a'+(n*7+i*3)%26))
	}
	return b
}

// floodReport is what the host saw of a flood.
type floodReport struct {
	begun, ended bool
	want         int      // lines announced
	got          int      // lines that were the expected next line
	bad          int      // lines that were not
	missing      int      // lines skipped over by the intact line after a bad one
	foreign      []string // whole other lines between the flood's (the kernel's)
	firstBad     string
	badAfter     int // the last intact line before firstBad
	bytes        int64
}

func (r floodReport) String() string {
	s := fmt.Sprintf("announced %d lines, %d arrived in order, %d wrong, %d missing, %d bytes read", r.want, r.got-r.missing, r.bad, r.missing, r.bytes)
	if r.bad > 0 {
		s += fmt.Sprintf("; first wrong line, after line %d: %q", r.badAfter, r.firstBad)
	}
	if len(r.foreign) > 0 {
		s += fmt.Sprintf("; %d other lines between them, first %q", len(r.foreign), r.foreign[:min(len(r.foreign), 6)])
	}
	if !r.ended {
		s += "; no end line"
	}
	return s
}

// ok is true when every announced line arrived, in order, intact.
func (r floodReport) ok() bool { return r.begun && r.ended && r.bad == 0 && r.got == r.want }

// checkFlood reads console output slowly (see above) and checks the lines
// between floodlines' begin and end lines. Line ends may carry the
// guest's and the pty's carriage returns. Whole lines that do not start
// like a numbered line (the kernel prints to the same console) are listed,
// not counted as wrong: they cannot hide a loss, since the next numbered
// line must still be the one after the last.
func checkFlood(r io.Reader, read *atomic.Int64) floodReport {
	var rep floodReport
	slow := &slowReader{r: r, total: read}
	sc := bufio.NewScanner(slow)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	want := make([]byte, 0, floodLineSize)
	for sc.Scan() {
		line := bytes.TrimRight(sc.Bytes(), "\r")
		switch {
		case !rep.begun:
			if n, ok := floodMarker(line, "begin"); ok {
				rep.begun, rep.want = true, n
			}
		case rep.ended:
		case rep.got == rep.want:
			if n, ok := floodMarker(line, "end"); ok && n == rep.want {
				rep.ended = true
				continue
			}
			rep.bad++
			if rep.bad == 1 {
				rep.firstBad, rep.badAfter = string(line), rep.got
			}
		default:
			want = wantFloodLine(want, rep.got+1)
			if bytes.Equal(line, want) {
				rep.got++
				continue
			}
			if !numbered(line) {
				rep.foreign = append(rep.foreign, string(line))
				continue
			}
			rep.bad++
			if rep.bad == 1 {
				rep.firstBad, rep.badAfter = string(line), rep.got
			}
			// Resynchronize on an intact later line, so a gap costs one
			// wrong line, not all those after it.
			if n, err := strconv.Atoi(string(bytes.SplitN(line, []byte(" "), 2)[0])); err == nil && n > rep.got && n <= rep.want &&
				bytes.Equal(line, wantFloodLine(want, n)) {
				rep.missing += n - rep.got - 1
				rep.got = n
			}
		}
	}
	_, _ = io.Copy(io.Discard, slow)
	rep.bytes = slow.total.Load()
	return rep
}

// numbered is true when line starts like a flood line: ten digits.
func numbered(line []byte) bool {
	if len(line) < 10 {
		return false
	}
	for _, c := range line[:10] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// floodMarker parses "floodlines: WHAT N lines".
func floodMarker(line []byte, what string) (int, bool) {
	var n int
	_, err := fmt.Sscanf(string(line), "floodlines: "+what+" %d lines", &n)
	return n, err == nil
}

// slowReader reads at most a page at a time and pauses after every
// floodPauseEvery bytes.
type slowReader struct {
	r      io.Reader
	total  *atomic.Int64
	credit int
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.credit >= floodPauseEvery {
		time.Sleep(floodPause)
		s.credit = 0
	}
	n, err := s.r.Read(p[:min(len(p), 4096)])
	s.total.Add(int64(n))
	s.credit += n
	return n, err
}

// floodRootfs is a busybox root with floodlines at /floodlines.
func floodRootfs(t *testing.T) string {
	t.Helper()
	root := busyboxRootfs(t)
	path := os.Getenv("KRUNBENCH_FLOODLINES")
	if path == "" {
		path = buildStatic(t, "./testdata/floodlines", filepath.Join(t.TempDir(), "floodlines"))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "floodlines"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// runFlood runs krunbench with its stdout on a one-page pipe that
// checkFlood drains slowly, and fails the test unless every line arrived.
func runFlood(t *testing.T, limit time.Duration, size int, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if _, err := unix.FcntlInt(pw.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatalf("pipe size: %v", err)
	}
	args = append(args, "--", "/floodlines", strconv.Itoa(size))
	cmd := exec.CommandContext(ctx, krunbenchBin(t), args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = pw, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	// Progress every half minute: the L1 harness takes a long silence
	// for a frozen emulator.
	var read atomic.Int64
	quiet, quieted := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(quieted)
		for {
			select {
			case <-quiet:
				return
			case <-time.After(30 * time.Second):
				t.Logf("flood: %d MiB read", read.Load()>>20)
			}
		}
	}()
	rep := checkFlood(pr, &read)
	close(quiet)
	<-quieted
	err = cmd.Wait()
	t.Logf("krunbench %s: %v, %.1f MiB/s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond),
		float64(rep.bytes)/(1<<20)/time.Since(start).Seconds(), rep)
	if ctx.Err() != nil {
		t.Fatalf("krunbench did not finish within %s: %s\nstderr:\n%s", limit, rep, stderr.String())
	}
	if err != nil {
		t.Fatalf("krunbench: %v: %s\nstderr:\n%s", err, rep, stderr.String())
	}
	if !rep.ok() {
		t.Fatalf("console lost or damaged output: %s\nstderr:\n%s", rep, stderr.String())
	}
	// The guest kernel must not have given up on the console's interrupt:
	// its spurious-IRQ detector disables an interrupt after 100,000
	// unhandled ones, which a flood causes (see cmdline.Ours), and the
	// console's input is then only polled every 100 ms.
	for _, l := range append(rep.foreign, strings.Split(stderr.String(), "\n")...) {
		if strings.Contains(l, "nobody cared") || strings.Contains(l, "Disabling IRQ") {
			t.Fatalf("the guest disabled an interrupt during the flood: %q", l)
		}
	}
}

// TestQEMUConsoleFloodLosesNothing: the QEMU engine (TCG) under a slow
// reader. Before QEMU's stdout became a blocking open of the pty, the
// virtconsole dropped what a write could not take at once.
func TestQEMUConsoleFloodLosesNothing(t *testing.T) {
	engine := qemuTCG(t)
	size := floodBytes(t, 8<<20)
	runFlood(t, floodLimit(size), size, append(append([]string{"run"}, engine...), "--rootfs", floodRootfs(t))...)
}

// TestKVMConsoleFloodLosesNothing: the in-process KVM engine under a
// slow reader; its console holds the guest back once 64 KiB wait for the
// host writer. Not in make e2e-kvm (its name is outside that pattern):
// inside the nested L1 the guest triple-faulted after about 140 KB of the
// 4 MiB flood (and with the krunbench before the fix made no progress for
// 150 s), still to be explained; make flood runs it there
// (KRUNBENCH_L1_FLOOD=1), and make unit where KVM is hardware.
func TestKVMConsoleFloodLosesNothing(t *testing.T) {
	requireHardwareKVM(t)
	size := floodBytes(t, 8<<20)
	runFlood(t, floodLimit(size), size, "run", "--engine", "kvm", "--kernel", kvmtest.Vmlinux(t), "--rootfs", floodRootfs(t))
}
