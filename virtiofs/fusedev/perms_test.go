package fusedev_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// runAs runs a shell command as uid:gid with the supplementary groups
// given (none if nil) from /, bounded in time, and returns its combined
// output and error.
func runAs(t *testing.T, uid, gid uint32, script string, groups ...uint32) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: append([]uint32{}, groups...)}}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%q as %d:%d did not finish within %v: %s", script, uid, gid, replyTimeout, out)
	}
	return string(out), err
}

// TestOtherUsersFilesStayClosedWhileCached is issue 11's item 6: the mount
// is shared with every local user (allow_other), so the kernel must check
// each caller's permissions the way a local filesystem would, cached
// entries or not. Root reads a file inside uid 2000's 0700 directory,
// which puts both entries into the kernel's cache for an hour; uid 1000
// then must not read it (the path walk through the cache never asks the
// server, and the server's reopen of the pinned inode does not look at
// the directory). A FIFO's mode is checked the same way: opening a FIFO
// never reaches the server at all. Uid 2000 can still read its own file,
// so the refusals are about permissions, not a broken mount.
func TestOtherUsersFilesStayClosedWhileCached(t *testing.T) {
	mt := mount(t, mountOpts{entryTimeout: time.Hour})
	must(t, os.Mkdir(mt.host("private"), 0o700))
	writeFile(t, mt.host("private/secret"), []byte("uid 2000's secret"))
	must(t, os.Chmod(mt.host("private/secret"), 0o644))
	must(t, os.Chown(mt.host("private/secret"), 2000, 2000))
	must(t, os.Chown(mt.host("private"), 2000, 2000))
	must(t, unix.Mkfifo(mt.host("fifo"), 0o600))

	if b, err := os.ReadFile(mt.path("private/secret")); err != nil || string(b) != "uid 2000's secret" {
		t.Fatalf("root reading through the mount: %q %v", b, err)
	}
	if out, err := runAs(t, 1000, 1000, "cat "+mt.path("private/secret")); err == nil || strings.Contains(out, "uid 2000's secret") {
		t.Errorf("uid 1000 read a file inside uid 2000's 0700 directory (cached entry): err=%v output=%q", err, out)
	} else if !strings.Contains(out, "Permission denied") {
		t.Errorf("uid 1000 reading inside uid 2000's 0700 directory: want Permission denied, got %v %q", err, out)
	}
	if out, err := runAs(t, 2000, 2000, "cat "+mt.path("private/secret")); err != nil || out != "uid 2000's secret" {
		t.Errorf("uid 2000 reading its own file: %v %q", err, out)
	}

	// dd's iflag=nonblock opens the FIFO O_RDONLY|O_NONBLOCK, which
	// returns at once when permitted; count=0 reads nothing.
	fifo := "dd if=" + mt.path("fifo") + " iflag=nonblock count=0 status=none"
	if out, err := runAs(t, 1000, 1000, fifo); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("uid 1000 opened root's 0600 FIFO: err=%v output=%q", err, out)
	}
	if out, err := runAs(t, 0, 0, fifo); err != nil {
		t.Errorf("root opening its own FIFO: %v %q", err, out)
	}
}

// TestSetattrAsTheKernelAllows checks SETATTR against the kernel's rules,
// which the client applies with the caller's full credentials before the
// server sees the request (issue 11, pjdfstest chown/00 and chmod/12):
// uid 1000 may give its file to a group it holds only as a supplementary
// group (FUSE sends only the primary gid), and its write to root's
// world-writable SUID/SGID file succeeds and clears both bits (the
// kernel's SETATTR for that comes with uid 1000's credentials); while
// what the kernel refuses stays refused and the host file unchanged.
func TestSetattrAsTheKernelAllows(t *testing.T) {
	mt := mount(t, mountOpts{})
	must(t, os.Chmod(mt.host("."), 0o777))
	writeFile(t, mt.host("mine"), []byte("uid 1000's"))
	must(t, os.Chown(mt.host("mine"), 1000, 1000))
	writeFile(t, mt.host("roots"), []byte("root's"))
	must(t, os.Chmod(mt.host("roots"), 0o644))
	writeFile(t, mt.host("setid"), nil)
	must(t, os.Chmod(mt.host("setid"), 0o6777))

	hostOwner := func(name string) (uint32, uint32, uint32) {
		var st unix.Stat_t
		must(t, unix.Stat(mt.host(name), &st))
		return st.Uid, st.Gid, st.Mode & 0o7777
	}
	if out, err := runAs(t, 1000, 1000, "chgrp 3000 "+mt.path("mine"), 1000, 3000); err != nil {
		t.Errorf("uid 1000 in group 3000 (supplementary) giving its file to group 3000: %v %q", err, out)
	}
	if uid, gid, _ := hostOwner("mine"); uid != 1000 || gid != 3000 {
		t.Errorf("after chgrp 3000 the host file is owned by %d:%d, want 1000:3000", uid, gid)
	}
	if out, err := runAs(t, 1000, 1000, "echo more >> "+mt.path("setid")); err != nil {
		t.Errorf("uid 1000 appending to root's 06777 file: %v %q", err, out)
	}
	if _, _, mode := hostOwner("setid"); mode != 0o777 {
		t.Errorf("after uid 1000's write root's 06777 file has mode %o on the host, want 777", mode)
	}

	refused := []struct{ script, want string }{
		{"chgrp 4000 " + mt.path("mine"), "Operation not permitted"},
		{"chmod 666 " + mt.path("roots"), "Operation not permitted"},
		{"chown 1000 " + mt.path("roots"), "Operation not permitted"},
		{"truncate -s 0 " + mt.path("roots"), "Permission denied"},
		{"touch -c -d 2001-01-01 " + mt.path("roots"), "Operation not permitted"},
	}
	for _, r := range refused {
		if out, err := runAs(t, 1000, 1000, r.script, 1000, 3000); err == nil || !strings.Contains(out, r.want) {
			t.Errorf("uid 1000: %s: want %q, got %v %q", r.script, r.want, err, out)
		}
	}
	if uid, gid, mode := hostOwner("roots"); uid != 0 || gid != 0 || mode != 0o644 {
		t.Errorf("root's file changed to %d:%d mode %o", uid, gid, mode)
	}
	if b, _ := os.ReadFile(mt.host("roots")); string(b) != "root's" {
		t.Errorf("root's file now holds %q", b)
	}
	if _, gid, _ := hostOwner("mine"); gid != 3000 {
		t.Errorf("uid 1000's refused chgrp 4000 changed the group to %d", gid)
	}
}
