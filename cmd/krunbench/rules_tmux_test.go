package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDebuggerInTmux is the init debugger in a real terminal: set a
// breakpoint in the debugger pane's form, launch the busybox root under
// QEMU, see the held request and the guest's waiting timer, step three
// times, add a fault rule, continue, and find the injected reply marked in
// the traffic pane.
func TestDebuggerInTmux(t *testing.T) {
	requireQEMU(t)
	kernel := guestKernel(t)
	data := workbenchLibraryDir(t)
	for name, text := range map[string]string{"hostname": "tmux-guest\n", "passwd": "root:x:0:0:root:/root:/bin/sh\n"} {
		if err := os.WriteFile(filepath.Join(data, "rootfs", "busybox", "etc", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tm := newTmux(t, 140, 44)
	startWorkbench(tm, kernel, data)

	// A breakpoint before launching, from the debugger pane's form.
	tm.send("6")
	tm.send("a")
	tm.send("-l", "break LOOKUP /etc/* once")
	tm.send("Enter")
	tm.waitFor(`added rule 1`, 10*time.Second)
	tm.waitFor(`1 break LOOKUP /etc/\* once`, 5*time.Second)

	tm.send("1")
	pickAndLaunchDefaultInit(tm)
	// The launch attaches the console; the shell's first look under /etc
	// (its user's passwd entry) is held before it prints a prompt.
	tm.waitFor(`attached`, 30*time.Second)
	tm.send("C-]")
	tm.send("6")
	screen := tm.waitFor(`▶ held: LOOKUP /etc/\S+`, 90*time.Second)
	if !strings.Contains(screen, "HOLDING") {
		t.Errorf("the debugger pane does not say it holds:\n%s", screen)
	}
	// The timer runs while the guest waits.
	first := waited(t, tm.waitFor(`guest waiting \d+\.\d s`, 10*time.Second))
	later := first
	for deadline := time.Now().Add(20 * time.Second); later <= first && time.Now().Before(deadline); {
		time.Sleep(300 * time.Millisecond)
		later = waited(t, tm.screen())
	}
	if later <= first {
		t.Errorf("the waiting timer stayed at %.1f s", first)
	}
	for i := 1; i <= 3; i++ {
		tm.send("s")
		tm.waitFor(fmt.Sprintf(`stepped %d\b`, i), 30*time.Second)
	}

	tm.send("a")
	tm.send("-l", "fault OPEN /etc/hostname ENOENT")
	tm.send("Enter")
	tm.waitFor(`added rule 2`, 10*time.Second)
	tm.send("c")
	tm.waitFor(`running: no request held`, 30*time.Second)

	// The shell goes on; the workload meets the fault.
	tm.send("2")
	tm.send("Enter") // attach
	tm.waitFor(`/ # `, 60*time.Second)
	tm.send("-l", "cat /etc/hostname; echo cat-exit=$?")
	tm.send("Enter")
	screen = tm.waitFor(`cat-exit=1`, 30*time.Second)
	if !strings.Contains(screen, "No such file or directory") || strings.Contains(screen, "tmux-guest") {
		t.Errorf("console: want cat failing with ENOENT:\n%s", screen)
	}
	tm.send("C-]")
	tm.send("6")
	tm.waitFor(`2 fault OPEN /etc/hostname\S*\s+1\s+1`, 30*time.Second)

	// The traffic pane marks the injected reply.
	tm.send("3")
	tm.send("/")
	tm.send("-l", "/etc/hostname")
	tm.send("Enter")
	screen = tm.waitFor(`OPEN\s+/etc/hostname.*ENOENT.*INJECTED ENOENT \(rule 2\)`, 30*time.Second)
	if !strings.Contains(screen, "⚡") {
		t.Errorf("the injected reply has no gutter mark:\n%s", screen)
	}
	tm.quitStoppingTheGuest()
}

var waitingRx = regexp.MustCompile(`guest waiting (\d+\.\d) s`)

// waited reads the waiting timer off the screen.
func waited(t *testing.T, screen string) float64 {
	t.Helper()
	m := waitingRx.FindStringSubmatch(screen)
	if m == nil {
		return -1
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	return f
}
