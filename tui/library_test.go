package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestLibraryLongListKeepsFooterAndHeaders: with more items than fit, the
// path and detail of the item under the cursor and the last note stay in
// view, and a scrolled list still names the kind it shows; the pick asked
// for (the default init) is made at start, so enter launches at once.
func TestLibraryLongListKeepsFooterAndHeaders(t *testing.T) {
	lib := StaticLibrary{{Kind: KindRootFS, Name: "busybox", Path: "/srv/busybox", Verdict: VerdictOK}}
	for i := range 30 {
		lib = append(lib, Item{Kind: KindInit, Name: fmt.Sprintf("payload-%02d", i), Path: fmt.Sprintf("/lib/init/payload-%02d", i), Verdict: VerdictOK})
	}
	lib = append(lib, Item{Kind: KindInit, Name: "krun-init (default)", Verdict: VerdictOK, Detail: "static x86-64 ELF"})
	lib = append(lib, Item{Kind: KindKernel, Name: "bzImage", Path: "/k/bzImage", Verdict: VerdictOK})
	var launched LaunchRequest
	m := New(Options{Library: lib, Picks: []string{"krun-init (default)"},
		Launch: func(r LaunchRequest) (Source, error) { launched = r; return nil, fmt.Errorf("no engine in this test") }})
	defer m.Close()
	resize(m, 80, 24)
	for range 20 {
		press(m, "down")
	}
	s := screen(m)
	if !strings.Contains(s, "/lib/init/payload-19") {
		t.Fatalf("the path of the item under the cursor is out of view:\n%s", s)
	}
	if !strings.Contains(s, "init payloads") {
		t.Fatalf("the scrolled list lost its kind header:\n%s", s)
	}
	for range 20 {
		press(m, "down")
	}
	if s := screen(m); !strings.Contains(s, "kernels") || !strings.Contains(s, "/k/bzImage") {
		t.Fatalf("at the end of the list:\n%s", s)
	}
	for range 40 {
		press(m, "up")
	}
	if s := screen(m); !strings.Contains(s, "root filesystems") {
		t.Fatalf("the root filesystems header did not come back:\n%s", s)
	}
	run(t, m, press(m, "enter"), 5*time.Second)
	if launched.Init.Name != "krun-init (default)" {
		t.Fatalf("launched %+v; want the default init picked at start", launched.Init)
	}
	if s := screen(m); !strings.Contains(s, "launch failed: no engine in this test") {
		t.Fatalf("the launch failure is out of view:\n%s", s)
	}
}
