package main

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBootLogKeyInTmux: in a real terminal, l in the console pane shows
// the kernel's boot log while the guest boots (its time-stamped lines
// grow until the kernel runs the init) and after boot (the virtio-fs
// root mount and the init's start, without the guest's output); l again
// gives the guest's screen back.
func TestBootLogKeyInTmux(t *testing.T) {
	tm, _ := workbenchInTmux(t, 120, 40)
	tm.send("Down")
	tm.send("Space")
	tm.send("Enter")
	tm.waitFor(` · running `, 60*time.Second)

	// During boot: detach (launching attaches), then the log.
	tm.send("C-]")
	tm.send("l")
	tm.waitFor(`console: kernel boot log[\s\S]*[┃│]\[\s*\d+\.\d{6}\] `, 60*time.Second)
	tm.waitFor(`[┃│]\[\s*\d+\.\d{6}\] Run /init\.krun as init process`, 120*time.Second)

	// Back to the guest's screen: the shell prompts there.
	tm.send("l")
	tm.waitFor(`[┃│]/ # `, 120*time.Second)
	tm.send("Enter")
	tm.echoInGuest("guest-says-hi")

	// After boot: the whole log, paged through from its oldest line.
	tm.send("C-]")
	tm.send("l")
	tm.send("g")
	screen := tm.waitFor(`console: kernel boot log[\s\S]*[┃│]\[\s*\d+\.\d{6}\] `, 20*time.Second)
	for page := 0; page < 50 && !strings.Contains(screen, "as init process"); page++ {
		tm.send("f")
		screen += tm.screen()
	}
	if !strings.Contains(screen, "] VFS: Mounted root (virtiofs filesystem)") || !strings.Contains(screen, "] Run /init.krun as init process") {
		t.Fatalf("the boot log lacks the root mount or the init's start:\n%s", screen)
	}
	if strings.Contains(screen, "guest-says-hi") {
		t.Fatalf("the boot log shows the guest's output:\n%s", screen)
	}
	tm.send("l")
	tm.waitFor(`[┃│]guest-says-hi\s`, 20*time.Second)
	tm.quitStoppingTheGuest()
}

// TestInitExitSentenceAndRawTextInTmux: an init that exits (the
// built-in exit-at-once payload) ends the guest with a kernel panic; the
// console says in one sentence what happened and what to do, and l
// shows the raw text: the kernel's own panic line.
func TestInitExitSentenceAndRawTextInTmux(t *testing.T) {
	tm, _ := workbenchInTmux(t, 160, 45)
	tm.waitFor(`exit-at-once`, 20*time.Second)
	// Pick each row down the list until exit-at-once is the init (one
	// pick of each kind: the root and kernel picks stay).
	exitPicked := regexp.MustCompile(`●[^\n]*exit-at-once`)
	for row := 0; !exitPicked.MatchString(tm.screen()); row++ {
		if row > 10 {
			t.Fatalf("could not pick exit-at-once:\n%s", tm.screen())
		}
		tm.send("Down")
		tm.send("Space")
	}
	tm.send("Enter")
	tm.waitFor(`the init exited \(status \d+\) without reporting`, 120*time.Second)
	tm.send("l")
	tm.waitFor(`console: kernel boot log[\s\S]*[┃│]\[\s*\d+\.\d{6}\] Kernel panic - not syncing: Attempted to kill init!`, 20*time.Second)
	tm.send("q")
	tm.waitFor(`KB-EXIT=0`, 60*time.Second)
	waitNoQEMU(t, runMarker())
}
