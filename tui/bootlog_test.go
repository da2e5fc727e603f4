package tui

import (
	"strings"
	"testing"
)

// TestConsoleBootLogKey: l in the console pane swaps the guest's screen
// for the kernel's time-stamped messages (the guest's own lines left
// out, the boot's first lines kept after the screen was cleared, a line
// arriving in pieces found whole), and back; the key is in the help.
func TestConsoleBootLogKey(t *testing.T) {
	m := New(Options{Source: newFakeSource()})
	defer m.Close()
	resize(m, 120, 40)
	m.con.feed([]byte("[    0.000000] Linux version 6.1.0 (builder)\r\n[    0.0123"))
	m.con.feed([]byte("45] virtio-fs: tag </dev/root>\r\n"))
	m.con.feed([]byte("[    1.500000] Run /init.krun as init process\r\nguest-output-line\r\n\x1b[2J\x1b[3J\x1b[H/ # "))
	if s := screen(m); strings.Contains(s, "Linux version") {
		t.Fatalf("the guest cleared its screen, yet the kernel lines show:\n%s", s)
	}
	press(m, "l")
	s := screen(m)
	for _, want := range []string{"kernel boot log", "] Linux version 6.1.0", "] virtio-fs: tag </dev/root>", "] Run /init.krun as init process", "3 kernel lines"} {
		if !strings.Contains(s, want) {
			t.Fatalf("boot log view lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "guest-output-line") || strings.Contains(s, "/ #") {
		t.Fatalf("boot log view shows the guest's output:\n%s", s)
	}
	press(m, "l")
	if s := screen(m); strings.Contains(s, "Linux version") || !strings.Contains(s, "/ #") {
		t.Fatalf("l did not bring the guest's screen back:\n%s", s)
	}
	press(m, "?")
	if s := screen(m); !strings.Contains(s, "kernel boot log") {
		t.Fatalf("help does not list the boot log key:\n%s", s)
	}
}
