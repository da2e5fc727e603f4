package fuse_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
)

// These tests play a hostile guest: raw FUSE requests against the real
// passthrough, trying to make the server touch a file outside the shared
// directory. Through /dev/fuse the host kernel would resolve symlinks
// itself, so only the wire protocol can test what the server follows.

const secret = "TOP-SECRET-OUTSIDE-THE-SHARE"

type hostile struct {
	t       *testing.T
	srv     *fuse.Server
	share   string
	outside string
	leaked  atomic.Bool
}

func newHostile(t *testing.T) *hostile {
	base := t.TempDir()
	h := &hostile{t: t, share: filepath.Join(base, "share"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{h.share, h.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(h.outside, "secret"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	pt, err := passthrough.New(h.share, passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = fuse.NewServer(overlay.New(pt), fuse.Options{})
	h.do(initIn(7, 31, 0xffffffff))
	return h
}

// do serves one request and scans the reply for the secret.
func (h *hostile) do(req []byte) reply {
	r := serve(h.t, h.srv, [][]byte{req})
	if bytes.Contains(r.body, []byte(secret)) {
		h.leaked.Store(true)
	}
	return r
}

func (h *hostile) lookup(parent uint64, name string) (uint64, int32) {
	r := h.do(request(fuse.OpLookup, parent, name))
	if r.hdr.Error != 0 {
		return 0, r.hdr.Error
	}
	return binary.LittleEndian.Uint64(r.body), 0
}

// check asserts the outside directory is exactly as it was.
func (h *hostile) check() {
	h.t.Helper()
	if h.leaked.Load() {
		h.t.Fatal("a reply carried the content of a file outside the share")
	}
	entries, _ := os.ReadDir(h.outside)
	if len(entries) != 1 || entries[0].Name() != "secret" {
		h.t.Fatalf("outside directory changed: %v", entries)
	}
	b, _ := os.ReadFile(filepath.Join(h.outside, "secret"))
	fi, _ := os.Stat(filepath.Join(h.outside, "secret"))
	if string(b) != secret || fi.Mode().Perm() != 0o644 {
		h.t.Fatalf("outside file changed: %q mode %o", b, fi.Mode().Perm())
	}
}

func TestHostileNamesAndSymlinks(t *testing.T) {
	h := newHostile(t)
	for _, name := range []string{"..", "../outside", "/etc", "a/b", ".", ""} {
		if node, errno := h.lookup(fuse.RootID, name); errno == 0 && node != fuse.RootID {
			t.Errorf("LOOKUP %q from the root succeeded (nodeid %d)", name, node)
		}
	}
	for link, target := range map[string]string{
		"rel": "../outside", "abs": h.outside, "passwd": "/etc/passwd", "up": "../..",
		"file": "../outside/secret",
	} {
		if err := os.Symlink(target, filepath.Join(h.share, link)); err != nil {
			t.Fatal(err)
		}
		node, errno := h.lookup(fuse.RootID, link)
		if errno != 0 {
			t.Fatalf("LOOKUP symlink %s: %d", link, errno)
		}
		if r := h.do(request(fuse.OpReadlink, node)); string(r.body) != target {
			t.Errorf("READLINK %s = %q", link, r.body)
		}
		if _, errno := h.lookup(node, "secret"); errno == 0 {
			t.Errorf("LOOKUP through symlink %s succeeded", link)
		}
		if r := h.do(request(fuse.OpOpen, node, fuse.OpenIn{Flags: syscall.O_RDWR})); r.hdr.Error == 0 {
			t.Errorf("OPEN of symlink %s succeeded", link)
		}
		h.do(request(fuse.OpCreate, node, fuse.CreateIn{Flags: syscall.O_RDWR, Mode: 0o644}, "planted"))
		h.do(request(fuse.OpMkdir, node, fuse.MkdirIn{Mode: 0o755}, "planted-dir"))
		h.do(request(fuse.OpSymlink, node, "planted-link", "x"))
		h.do(request(fuse.OpSetattr, node, fuse.SetAttrIn{Valid: fuse.FattrMode | fuse.FattrSize, Mode: 0o777}))
		h.do(request(fuse.OpSetxattr, node, fuse.SetXattrIn{Size: 1}, "user.x", []byte("y")))
		h.do(request(fuse.OpOpendir, node, fuse.OpenIn{}))
		h.do(request(fuse.OpRename, fuse.RootID, fuse.RenameIn{Newdir: node}, "rel", "moved"))
		h.do(request(fuse.OpLink, node, fuse.LinkIn{Oldnodeid: node}, "hard"))
	}
	h.check()
}

func TestDirectorySwappedForSymlinkMidRequest(t *testing.T) {
	h := newHostile(t)
	dir := filepath.Join(h.share, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the attacker on the host side of the race
		defer wg.Done()
		real := filepath.Join(h.share, "d.real")
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.Rename(dir, real)
			os.Symlink("../outside", dir)
			os.Remove(dir)
			os.Rename(real, dir)
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		node, errno := h.lookup(fuse.RootID, "d")
		if errno != 0 {
			continue
		}
		h.lookup(node, "secret")
		r := h.do(request(fuse.OpCreate, node, fuse.CreateIn{Flags: syscall.O_RDWR, Mode: 0o644}, "planted"))
		if r.hdr.Error == 0 {
			h.do(request(fuse.OpUnlink, node, "planted"))
		}
		h.do(request(fuse.OpOpendir, node, fuse.OpenIn{}))
		h.do(request(fuse.OpReaddir, node, fuse.ReadIn{Size: 4096}))
		h.do(request(fuse.OpSetattr, node, fuse.SetAttrIn{Valid: fuse.FattrMode, Mode: 0o700}))
		h.do(request(fuse.OpForget, node, fuse.ForgetIn{Nlookup: 1}))
	}
	close(stop)
	wg.Wait()
	h.check()
}
