package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readdirplusFiles is the directory the walk lists: enough entries with
// long enough names that its listing takes several chunks of the kernel's
// readdir buffer whatever the entry format (READDIRPLUS entries are the
// bigger ones).
const readdirplusFiles = 1000

// TestServeReaddirplusModes serves a directory through /dev/fuse with each
// --readdirplus mode and walks it as find+stat does (the whole listing,
// then an lstat per entry); the requests the host kernel sent, counted
// from serve's trace, show which mode the server offered at INIT. With the
// flag ignored every mode would behave as always: no READDIR, and a
// READDIRPLUS chunk carrying every entry's attributes.
func TestServeReaddirplusModes(t *testing.T) {
	for _, mode := range []string{"always", "auto", "off"} {
		t.Run(mode, func(t *testing.T) {
			shared := t.TempDir()
			dir := filepath.Join(shared, "d")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := range readdirplusFiles {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("entry-with-a-longish-name-%05d", i)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			traceFile := filepath.Join(t.TempDir(), "trace.jsonl")
			mnt, stop := serveMount(t, shared, "--readdirplus", mode, "--trace", traceFile)
			f, err := os.Open(filepath.Join(mnt, "d"))
			if err != nil {
				t.Fatal(err)
			}
			names, err := f.Readdirnames(-1)
			f.Close()
			if err != nil || len(names) != readdirplusFiles {
				t.Fatalf("listed %d names (%v), want %d", len(names), err, readdirplusFiles)
			}
			for _, name := range names {
				if _, err := os.Lstat(filepath.Join(mnt, "d", name)); err != nil {
					t.Fatal(err)
				}
			}
			stop()

			counts := map[string]int{}
			for _, ev := range readTrace(t, traceFile) {
				if ev.OpName == "LOOKUP" && !strings.HasPrefix(ev.Name, "entry-") {
					continue // the directory itself
				}
				counts[ev.OpName]++
			}
			plus, plain, lookups := counts["READDIRPLUS"], counts["READDIR"], counts["LOOKUP"]
			t.Logf("--readdirplus %s: %d READDIRPLUS, %d READDIR, %d LOOKUPs of the %d entries", mode, plus, plain, lookups, readdirplusFiles)
			switch mode {
			case "always":
				// (No bound on LOOKUPs: an entry whose 1 s timeout ran
				// out on a busy machine is looked up again.)
				if plus == 0 || plain != 0 {
					t.Errorf("always: want READDIRPLUS only, got %d READDIRPLUS and %d READDIR", plus, plain)
				}
			case "auto":
				// The kernel lists the first chunk with READDIRPLUS, the
				// rest (no LOOKUP in the directory in between) with
				// READDIR, and then looks up what READDIR did not return.
				if plus == 0 || plain == 0 || lookups == 0 {
					t.Errorf("auto: want READDIRPLUS for the first chunk, READDIR and LOOKUPs for the rest; got %d READDIRPLUS, %d READDIR, %d LOOKUP", plus, plain, lookups)
				}
			case "off":
				if plus != 0 || plain == 0 || lookups < readdirplusFiles {
					t.Errorf("off: want READDIR only and a LOOKUP per entry (%d); got %d READDIRPLUS, %d READDIR, %d LOOKUP", readdirplusFiles, plus, plain, lookups)
				}
			}
		})
	}
}

// TestServeReaddirplusBadValue: a mode serve does not know is refused
// before anything is served, naming the modes it takes.
func TestServeReaddirplusBadValue(t *testing.T) {
	out, err := exec.Command(krunbenchBin(t), "serve", "--shared-dir", t.TempDir(), "--mount", t.TempDir(), "--readdirplus", "sometimes").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "want always, auto or off") {
		t.Fatalf("serve --readdirplus sometimes: %v\n%s", err, out)
	}
}
