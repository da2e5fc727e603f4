package main

import (
	"regexp"
	"testing"
	"time"
)

// TestWorkbenchInitDefaultIsTheBuiltIn: `krunbench --init default` in a
// real terminal means the built-in init, as `run --init default` and
// `library list --init default` do: no `✗ err default` entry for a file
// called default (issue 12 item 9). No guest is started.
func TestWorkbenchInitDefaultIsTheBuiltIn(t *testing.T) {
	tm := newTmux(t, 160, 45)
	startWorkbench(tm, guestKernel(t), workbenchLibraryDir(t), "--init", "default")
	screen := tm.screen()
	if regexp.MustCompile(`(?m)(✗|err)\s+default\b`).MatchString(screen) {
		t.Fatalf("--init default listed as a file that failed:\n%s", screen)
	}
	tm.send("q")
	tm.waitFor(`KB-EXIT=0`, 30*time.Second)
}
