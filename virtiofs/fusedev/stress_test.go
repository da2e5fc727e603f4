package fusedev_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFioVerify runs Debian's fio over the mount with data verification:
// sequential and random writes with checksummed blocks, read back and
// checked by fio itself. Bounded by size and by fio's own runtime cap.
func TestFioVerify(t *testing.T) {
	fio, err := exec.LookPath("fio")
	if err != nil {
		t.Fatal("fio is not installed (apt-get install fio; .ci/run does it)")
	}
	mt := mount(t, mountOpts{})
	cmd := exec.Command(fio,
		"--directory="+mt.mnt, "--ioengine=psync", "--verify_fatal=1", "--runtime=60",
		"--name=seq", "--rw=write", "--bs=1M", "--size=128M", "--verify=crc32c", "--do_verify=1",
		"--name=rand", "--rw=randwrite", "--bsrange=512-64k", "--size=48M", "--verify=md5", "--do_verify=1", "--numjobs=2",
		"--name=mixed", "--rw=randrw", "--bs=4k", "--size=16M", "--verify=crc32c", "--verify_backlog=64",
	)
	cmd.Dir = t.TempDir() // fio saves its verify state files in its working directory
	out, err := cmd.CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("verify: bad")) || bytes.Contains(out, []byte("err= ")) && !bytes.Contains(out, []byte("err= 0")) {
		t.Fatalf("fio failed: %v\n%s", err, out)
	}
	if n := bytes.Count(out, []byte("err= 0")); n < 4 {
		t.Fatalf("fio reported %d clean jobs, want 4:\n%s", n, out)
	}
}

// TestFindBeyondFdLimit walks a tree with more entries than the server may
// hold descriptors (libkrun issue #505): the server must keep working.
func TestFindBeyondFdLimit(t *testing.T) {
	const limit = 512
	mt := mount(t, mountOpts{noFile: limit})
	const dirs, files = 30, 100
	for d := range dirs {
		dir := mt.host(fmt.Sprintf("d%02d", d))
		must(t, os.Mkdir(dir, 0o755))
		for f := range files {
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", f)), []byte(dir), 0o644))
		}
	}
	out, err := exec.Command("find", mt.mnt, "-type", "f", "-printf", "%s %i\n").Output()
	if err != nil {
		t.Fatalf("find over %d entries with the server's RLIMIT_NOFILE=%d: %v", dirs*files, limit, err)
	}
	if n := strings.Count(string(out), "\n"); n != dirs*files {
		t.Fatalf("find saw %d files, want %d", n, dirs*files)
	}
	// Every file is still readable after its descriptor was evicted.
	for d := range dirs {
		p := filepath.Join(mt.mnt, fmt.Sprintf("d%02d", d), "f000")
		b, err := os.ReadFile(p)
		if err != nil || !strings.HasSuffix(string(b), fmt.Sprintf("d%02d", d)) {
			t.Fatalf("%s after the walk: %q %v", p, b, err)
		}
	}
	if n := mt.serverFDs(t); n >= limit {
		t.Fatalf("server has %d descriptors open after the walk", n)
	}
	fds, _ := os.ReadDir("/proc/self/fd")
	if len(fds) >= limit {
		t.Fatalf("%d descriptors open after the walk", len(fds))
	}
	var st syscall.Statfs_t
	must(t, syscall.Statfs(mt.mnt, &st))
}
