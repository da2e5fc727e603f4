package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tmuxSessions numbers this test binary's tmux sessions.
var tmuxSessions int

// tmuxTerm drives a real terminal: a tmux session of a fixed size, on a
// tmux server of its own (-L name). With the default server, shared by
// every test and every tmux user of the machine, one test killing its last
// session stops the server while another creates a session there, which
// then fails with "server exited unexpectedly".
type tmuxTerm struct {
	t    *testing.T
	name string
}

// cmd is a tmux command on this terminal's own server.
func (tm *tmuxTerm) cmd(args ...string) *exec.Cmd {
	return exec.Command("tmux", append([]string{"-L", tm.name}, args...)...)
}

func newTmux(t *testing.T, cols, rows int) *tmuxTerm {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("SKIPPED: tmux not installed (apt-get install tmux)")
	}
	tmuxSessions++
	tm := &tmuxTerm{t: t, name: fmt.Sprintf("krunbench-test-%d-%d", os.Getpid(), tmuxSessions)}
	out, err := tm.cmd("-f", "/dev/null", "new-session", "-d", "-s", tm.name, "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows), "sh").CombinedOutput()
	if err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { tm.cmd("kill-server").Run() })
	return tm
}

func (tm *tmuxTerm) send(keys ...string) {
	tm.t.Helper()
	if out, err := tm.cmd(append([]string{"send-keys", "-t", tm.name}, keys...)...).CombinedOutput(); err != nil {
		tm.t.Fatalf("send-keys %v: %v %s", keys, err, out)
	}
	time.Sleep(150 * time.Millisecond)
}

// resize sets the terminal's size, as a user dragging the window does.
func (tm *tmuxTerm) resize(cols, rows int) {
	tm.t.Helper()
	if out, err := tm.cmd("resize-window", "-t", tm.name, "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows)).CombinedOutput(); err != nil {
		tm.t.Fatalf("resize-window: %v %s", err, out)
	}
	time.Sleep(150 * time.Millisecond)
}

func (tm *tmuxTerm) screen() string {
	out, _ := tm.cmd("capture-pane", "-p", "-t", tm.name).Output()
	return string(out)
}

// waitFor polls the screen until re matches, or fails after limit.
func (tm *tmuxTerm) waitFor(re string, limit time.Duration) string {
	tm.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(limit)
	for {
		s := tm.screen()
		if rx.MatchString(s) {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("screen never matched %q within %s:\n%s", re, limit, s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// echoInGuest types "echo word" into the guest's shell on the console
// pane and waits for the word at the start of a console line.
func (tm *tmuxTerm) echoInGuest(word string) {
	tm.t.Helper()
	tm.send("echo "+word, "Enter")
	tm.waitFor(`[┃│]`+regexp.QuoteMeta(word)+`\s`, 30*time.Second)
}

// launchAndEcho launches the busybox root with the default init in the
// started workbench, waits for its shell and has it echo word.
func launchAndEcho(tm *tmuxTerm, word string) {
	tm.t.Helper()
	launchDefaultInit(tm)
	tm.echoInGuest(word)
}

// workbenchInTmux starts the workbench (QEMU engine, the test kernel, a
// library holding the busybox root; extra flags after) in a new tmux
// terminal of cols x rows; it returns the terminal and the library.
func workbenchInTmux(t *testing.T, cols, rows int, extra ...string) (*tmuxTerm, string) {
	t.Helper()
	requireQEMU(t)
	kernel := guestKernel(t)
	data := workbenchLibraryDir(t)
	tm := newTmux(t, cols, rows)
	startWorkbench(tm, kernel, data, extra...)
	return tm, data
}

// quitStoppingTheGuest quits the workbench while a guest runs: q, then y
// in the dialog that asks first (the guest's QEMU still running while it
// asks); it returns once the workbench exited 0 and its QEMU is gone.
func (tm *tmuxTerm) quitStoppingTheGuest() {
	tm.t.Helper()
	tm.send("q")
	tm.waitFor(`A guest is running[\s\S]*y: stop it and quit`, 20*time.Second)
	if q := qemuProcesses(runMarker()); len(q) != 1 {
		tm.t.Fatalf("the question did not wait: QEMUs %v", q)
	}
	tm.send("y")
	tm.waitFor(`KB-EXIT=0`, 60*time.Second)
	waitNoQEMU(tm.t, runMarker())
}

// TestWorkbenchInTmux is the user's path through the TUI in a real
// terminal: pick the busybox root and the default init in the library,
// launch on the QEMU engine, type into the guest console, find the
// init.krun reads in the traffic pane, quit.
func TestWorkbenchInTmux(t *testing.T) {
	tm, _ := workbenchInTmux(t, 120, 40)
	launchAndEcho(tm, "hello-from-guest")

	tm.send("C-]")
	tm.send("3")
	tm.send("/")
	tm.send("init.krun", "Enter")
	screen := tm.waitFor(`READ\s+/init\.krun off=`, 10*time.Second)
	if !strings.Contains(screen, "filter: path~init.krun") {
		t.Fatalf("traffic filter not shown:\n%s", screen)
	}
	tm.quitStoppingTheGuest()
	tm.send("stty -a", "Enter")
	screen = tm.waitFor(`icanon`, 5*time.Second)
	if strings.Contains(screen, "-icanon") || strings.Contains(screen, "-echo ") {
		t.Fatalf("terminal left in raw mode:\n%s", screen)
	}
}

// paneSize is the tmux pane's size in cells: columns, rows.
func (tm *tmuxTerm) paneSize() [2]int {
	tm.t.Helper()
	out, err := tm.cmd("display-message", "-p", "-t", tm.name, "#{pane_width} #{pane_height}").Output()
	var size [2]int
	if err == nil {
		_, err = fmt.Sscanf(string(out), "%d %d", &size[0], &size[1])
	}
	if err != nil {
		tm.t.Fatalf("tmux pane size: %v %q", err, out)
	}
	return size
}
