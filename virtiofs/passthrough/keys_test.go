package passthrough

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// checkKeysLocked verifies the key table against the records: every live
// record (the root included) is found by its key, and the table holds
// exactly one entry per live record.
func checkKeysLocked(t *inodeTable) error {
	n := 0
	check := func(in *inode) error {
		n++
		if got := t.keyGetLocked(in.key); got != in {
			return fmt.Errorf("key %v of nodeid %#x finds %p, want %p", in.key, in.nodeid, got, in)
		}
		return nil
	}
	if err := check(t.root); err != nil {
		return err
	}
	var err error
	t.liveLocked(func(in *inode) {
		if err == nil {
			err = check(in)
		}
	})
	if err != nil {
		return err
	}
	if t.keyCountLocked() != n {
		return fmt.Errorf("key table holds %d entries for %d live inodes", t.keyCountLocked(), n)
	}
	return nil
}

// TestKeyTableRaces: LOOKUPs and FORGETs of the same few names from many
// goroutines. A goroutine that holds a lookup of a name and looks it up
// again must get the same nodeid (one host inode, one nodeid), GETATTR of a
// held nodeid must succeed, the key table must match the records whenever
// a checker looks, and once everything is forgotten only the root is left,
// with no descriptor leaked. Run under -race as well (make test-race).
func TestKeyTableRaces(t *testing.T) {
	fs, dir := newTestFS(t, Options{MaxOpenFDs: 4})
	const names = 6
	for i := range names {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("f%d", i)), "x")
	}
	fds0 := countFDs(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	stop := make(chan struct{})
	checked := make(chan int)
	go func() {
		n := 0
		defer func() { checked <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			fs.inodes.mu.Lock()
			err := checkKeysLocked(&fs.inodes)
			fs.inodes.mu.Unlock()
			n++
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 1500 {
				name := fmt.Sprintf("f%d", r.IntN(names))
				var a, b fuse.EntryOut
				if e := fs.Lookup(rootReq, fuse.RootID, name, &a); e != 0 {
					errs <- fmt.Errorf("lookup %s: %v", name, e)
					return
				}
				var ao fuse.AttrOut
				if e := fs.GetAttr(rootReq, a.Nodeid, &fuse.GetAttrIn{}, &ao); e != 0 || ao.Attr.Ino != a.Attr.Ino {
					errs <- fmt.Errorf("getattr of held %s (%#x): %v, ino %d want %d", name, a.Nodeid, e, ao.Attr.Ino, a.Attr.Ino)
					return
				}
				if e := fs.Lookup(rootReq, fuse.RootID, name, &b); e != 0 || b.Nodeid != a.Nodeid {
					errs <- fmt.Errorf("lookup of held %s: nodeid %#x (%v), held %#x", name, b.Nodeid, e, a.Nodeid)
					return
				}
				if r.IntN(2) == 0 {
					fs.Forget(a.Nodeid, 2)
				} else {
					fs.Forget(a.Nodeid, 1)
					fs.Forget(b.Nodeid, 1)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	n := <-checked
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d checks of the key table", n)
	if c := fs.inodes.count(); c != 1 {
		t.Errorf("%d inodes after every lookup was forgotten, want the root alone", c)
	}
	fs.inodes.mu.Lock()
	if err := checkKeysLocked(&fs.inodes); err != nil {
		t.Error(err)
	}
	fs.inodes.mu.Unlock()
	if fds := countFDs(t); fds != fds0 {
		t.Errorf("%d descriptors, was %d", fds, fds0)
	}
}

// TestKeyTableChurn drives the table alone against a map: random inserts
// and deletes of keys (many colliding in a table kept 3/4 full), each
// followed by a lookup of every key, in and out. Deleting from a linear
// probing run is where such a table goes wrong: an entry left behind a
// hole is lost, which would give its host inode a second nodeid.
func TestKeyTableChurn(t *testing.T) {
	var it inodeTable
	it.slabs = []*[slabSize]inode{new([slabSize]inode)}
	it.nslots = firstNodeid
	it.root = &inode{nodeid: fuse.RootID, key: inodeKey{0, 1}}
	it.keySetLocked(it.root)
	ref := map[inodeKey]*inode{it.root.key: it.root}
	r := rand.New(rand.NewPCG(7, 7))
	const keys = 400
	for step := range 20000 {
		key := inodeKey{uint64(r.IntN(2)), uint64(2 + r.IntN(keys))}
		if in := ref[key]; in != nil {
			it.keyDeleteLocked(in)
			delete(ref, key)
			it.freeLocked(in)
		} else {
			in := it.allocLocked(inode{key: key})
			it.keySetLocked(in)
			ref[key] = in
		}
		if step%7 != 0 {
			continue
		}
		for d := range uint64(2) {
			for ino := range uint64(keys + 2) {
				k := inodeKey{d, ino}
				if got, want := it.keyGetLocked(k), ref[k]; got != want {
					t.Fatalf("step %d: key %v finds %p, want %p", step, k, got, want)
				}
			}
		}
		if it.keyCountLocked() != len(ref) {
			t.Fatalf("step %d: %d entries, want %d", step, it.keyCountLocked(), len(ref))
		}
	}
}
