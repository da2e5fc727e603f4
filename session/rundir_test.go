package session

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestCleanStaleRunDirs: the directories of a process that has exited and
// of a reused PID (same PID, other start time) go; this process's own, and
// one without an owner file, stay.
func TestCleanStaleRunDirs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	mine, err := makeRunDir()
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	self, err := processStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	owned := func(name, owner string) string {
		dir := filepath.Join(tmp, runDirPrefix+name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "virtiofs.sock"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	exited := owned("exited", fmt.Sprintf("%d %s\n", dead.Process.Pid, self))
	reused := owned("reused", fmt.Sprintf("%d %s1\n", os.Getpid(), self))
	noOwner := owned("noowner", "")
	garbage := owned("garbage", "not a pid\n")

	removed := CleanStaleRunDirs()
	slices.Sort(removed)
	want := []string{exited, reused}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, d := range want {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("%s still there: %v", d, err)
		}
	}
	for _, d := range []string{mine, noOwner, garbage} {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("%s removed: %v", d, err)
		}
	}
}
