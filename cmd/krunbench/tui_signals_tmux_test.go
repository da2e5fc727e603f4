package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWorkbenchStopSignalsInTmux: the workbench in a real terminal with a
// guest running, sent SIGINT or SIGTERM, stops the guest, exits 128+signal,
// leaves no QEMU and no runtime directory, keeps what the recording had,
// and gives the terminal back out of raw mode (issue 12, Build: session
// lifecycle; the TUI's q, SIGKILL and SIGHUP are in tui_lifecycle_test.go).
func TestWorkbenchStopSignalsInTmux(t *testing.T) {
	requireQEMU(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			rec := filepath.Join(t.TempDir(), "session.rec")
			tm, data := workbenchInTmux(t, 160, 45, "--record", rec)
			launchAndEcho(tm, "before-the-signal")
			pid := workbenchPID(t, data)
			if err := syscall.Kill(pid, sig); err != nil {
				t.Fatal(err)
			}
			tm.waitFor(fmt.Sprintf(`KB-EXIT=%d`, 128+int(sig)), 60*time.Second)
			waitGone(t, pid)
			waitNoQEMU(t, runMarker())
			if d := runDirs(); len(d) > 0 {
				t.Fatalf("%v left runtime directories: %v", sig, d)
			}
			if !strings.Contains(consoleText(readRecording(t, rec)), "before-the-signal") {
				t.Fatal("the recording lost what happened before the signal")
			}
			tm.send("stty -a", "Enter")
			screen := tm.waitFor(`icanon`, 10*time.Second)
			if strings.Contains(screen, "-icanon") || strings.Contains(screen, "-echo ") {
				t.Fatalf("terminal left in raw mode after %v:\n%s", sig, screen)
			}
		})
	}
}
