package fusedev_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
)

func payloadBytes() []byte {
	// Not a multiple of the page size, so the last READ is short.
	return bytes.Repeat([]byte("krunbench payload\n"), 700) // not a script: scripts get a lasting entry
}

func TestInitKrunWithPayload(t *testing.T) {
	payload := payloadBytes()
	mt := mount(t, mountOpts{payload: payload})

	out, err := exec.Command("cat", mt.path("init.krun")).Output()
	if err != nil || !bytes.Equal(out, payload) {
		t.Fatalf("cat init.krun: %d bytes (want %d), equal %v, err %v", len(out), len(payload), bytes.Equal(out, payload), err)
	}
	ls, err := exec.Command("ls", "-a", mt.mnt).Output()
	must(t, err)
	if strings.Contains(string(ls), "init.krun") {
		t.Fatalf("ls -a lists init.krun:\n%s", ls)
	}
	// One-shot: the name is gone after the first lookup.
	if _, err := os.Stat(mt.path("init.krun")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("second lookup of init.krun: %v, want ENOENT", err)
	}

	// Re-arm and check attributes, read-only opens and reads at/past EOF.
	mt.setPayload(t, payload)
	f, err := os.Open(mt.path("init.krun"))
	must(t, err)
	defer f.Close()
	var st syscall.Stat_t
	must(t, syscall.Fstat(int(f.Fd()), &st))
	if st.Mode != syscall.S_IFREG|0o755 || st.Uid != 0 || st.Gid != 0 || st.Size != int64(len(payload)) ||
		st.Nlink != 1 || st.Ino != overlay.InitNodeid || st.Blocks != int64((len(payload)+511)/512) {
		t.Fatalf("init.krun attrs: mode %o uid %d gid %d size %d nlink %d ino %d blocks %d",
			st.Mode, st.Uid, st.Gid, st.Size, st.Nlink, st.Ino, st.Blocks)
	}
	buf := make([]byte, 100)
	for _, off := range []int64{int64(len(payload)), int64(len(payload)) + 4096, 1 << 40} {
		if n, err := f.ReadAt(buf, off); n != 0 {
			t.Fatalf("read at offset %d returned %d bytes (%v), want 0", off, n, err)
		}
	}
	if n, _ := f.ReadAt(buf, int64(len(payload))-10); n != 10 {
		t.Fatalf("read straddling the end returned %d bytes, want 10", n)
	}
	if _, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_WRONLY, 0); !errors.Is(err, os.ErrPermission) {
		t.Fatalf("opening init.krun for writing: %v, want EACCES", err)
	}
	if err := unix.Fchmod(int(f.Fd()), 0o777); err != unix.EPERM {
		t.Fatalf("chmod init.krun: %v, want EPERM", err)
	}

	evs := mt.events(t)
	var lookups, reads, eofReads int
	for _, ev := range evs {
		switch {
		case ev.Op == fuse.OpLookup && ev.Name == "init.krun" && ev.NewNodeid == overlay.InitNodeid:
			lookups++
		case ev.Op == fuse.OpRead && ev.Nodeid == overlay.InitNodeid && ev.Synthetic:
			reads++
			if ev.EOF {
				if ev.Bytes != 0 || ev.Offset < uint64(len(payload)) {
					t.Errorf("EOF-flagged read at %d returned %d bytes", ev.Offset, ev.Bytes)
				}
				eofReads++
			}
			if ev.Path != "/init.krun" {
				t.Errorf("read of init.krun traced with path %q", ev.Path)
			}
		}
	}
	// cat's final read and the three ReadAt calls past the end.
	if lookups != 2 || reads < 6 || eofReads < 4 {
		t.Fatalf("trace: %d init.krun lookups (want 2), %d reads, %d EOF reads (want >= 4)", lookups, reads, eofReads)
	}
}

func TestInitKrunShadowsHostFileOnce(t *testing.T) {
	mt := mount(t, mountOpts{payload: []byte("synthetic")})
	writeFile(t, mt.host("init.krun"), []byte("host file"))
	if b, _ := os.ReadFile(mt.path("init.krun")); string(b) != "synthetic" {
		t.Fatalf("first lookup got %q, want the payload", b)
	}
	if b, _ := os.ReadFile(mt.path("init.krun")); string(b) != "host file" {
		t.Fatalf("second lookup got %q, want the host file", b)
	}
}

func TestInitKrunWithoutPayload(t *testing.T) {
	mt := mount(t, mountOpts{})
	var st syscall.Stat_t
	if err := syscall.Stat(mt.path("init.krun"), &st); err != syscall.ENOENT {
		t.Fatalf("stat init.krun without a payload: %v, want ENOENT", err)
	}
}

func TestKrunConfigAndExitCodeIoctlFromNonInit(t *testing.T) {
	cfg := []byte(`{"Cmd":["/bin/true"]}`)
	mt := mount(t, mountOpts{config: cfg})
	for range 2 { // not one-shot
		if b, err := os.ReadFile(mt.path(".krun_config.json")); err != nil || !bytes.Equal(b, cfg) {
			t.Fatalf("config: %q %v", b, err)
		}
	}
	if _, ok := mt.exitCode(t); ok {
		t.Fatal("exit code set before the ioctl")
	}
	f, err := os.Open(mt.mnt)
	must(t, err)
	defer f.Close()
	// The kernel's FUSE client puts this thread's id, not 1 (the init),
	// in the header: the report is refused and the code stays unset.
	// Guest runs (the cmd/krunbench and session end-to-end tests) show
	// the init's own report arriving.
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), fuse.ExitCodeIoctl, 42); errno != syscall.EPERM {
		t.Fatalf("ioctl 0x7602 from pid %d: %v, want EPERM (only the init may report)", os.Getpid(), errno)
	}
	if code, ok := mt.exitCode(t); ok {
		t.Fatalf("a non-init caller set the exit code to %d", code)
	}
}
