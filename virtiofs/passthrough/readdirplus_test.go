package passthrough

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestReadDirPlusLooksUpInParallel lists a directory whose entries fill
// one READDIRPLUS batch and checks that two of its lookups are in flight
// at once (lookupBatch's split), and that the split loses, repeats or
// mixes up no entry: each is listed once, with its own host inode, and
// holds exactly one lookup.
func TestReadDirPlusLooksUpInParallel(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	fs, dir := newTestFS(t, Options{})
	const files = 4 * splitLookups
	for i := range files {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("f%03d", i)), "")
	}
	// The first registration waits for a second one to begin: one
	// goroutine looking up the batch alone never gets there. The limit
	// only ends the wait of a failing test; a passing one meets at once.
	var calls atomic.Int32
	met := make(chan struct{})
	var alone atomic.Bool
	fs.inodes.beforeRegister = func() {
		switch calls.Add(1) {
		case 1:
			select {
			case <-met:
			case <-time.After(20 * time.Second):
				alone.Store(true)
			}
		case 2:
			close(met)
		}
	}
	got := listDir(t, fs, rootReq, fuse.RootID, true, 64<<10)
	fs.inodes.beforeRegister = nil
	if alone.Load() {
		t.Fatal("no two lookups of one READDIRPLUS batch were in flight at once")
	}
	seen := map[string]bool{}
	for _, l := range got {
		if l.name == "." || l.name == ".." {
			continue
		}
		if seen[l.name] {
			t.Fatalf("%s listed twice", l.name)
		}
		seen[l.name] = true
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, l.name), &st); err != nil {
			t.Fatal(err)
		}
		ino := st.Ino
		if l.entry.Nodeid == 0 || l.entry.Attr.Ino != ino || l.ino != ino {
			t.Fatalf("%s: nodeid %d, attr ino %d, dirent ino %d, host ino %d", l.name, l.entry.Nodeid, l.entry.Attr.Ino, l.ino, ino)
		}
	}
	if len(seen) != files {
		t.Fatalf("listed %d files, want %d", len(seen), files)
	}
	for _, in := range fs.Inodes() {
		if in.Nodeid != fuse.RootID && in.Nlookup != 1 {
			t.Fatalf("%s has nlookup %d", in.Path, in.Nlookup)
		}
	}
	if n := len(fs.Inodes()); n != files+1 {
		t.Fatalf("%d inodes after readdirplus, want %d", n, files+1)
	}
}
