// Package fsops holds the file-system workloads more than one
// benchmark times the same way: fusebench on the host's mount, the
// guestbench runner inside the guest (a static binary: this package
// needs nothing but the standard library and x/sys/unix), and the
// variants benchmarks.
package fsops

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrStopped is returned by a workload whose stop channel closed.
var ErrStopped = errors.New("interrupted")

// Stopped says whether stop is closed; a nil stop never is.
func Stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// WalkStat lists dir recursively like find(1) (open, getdents64 until
// empty, close) and lstats every entry; it returns the number of regular
// files. It returns ErrStopped once stop is closed (checked per
// directory).
func WalkStat(dir string, stop <-chan struct{}) (int, error) {
	if Stopped(stop) {
		return 0, ErrStopped
	}
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("readdir %s: %w", dir, err)
	}
	files := 0
	var st unix.Stat_t
	for _, name := range names {
		p := dir + "/" + name
		if err := unix.Lstat(p, &st); err != nil {
			return files, fmt.Errorf("lstat %s: %w", p, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			files++
		case unix.S_IFDIR:
			n, err := WalkStat(p, stop)
			files += n
			if err != nil {
				return files, err
			}
		}
	}
	return files, nil
}

// WalkTally is what WalkTolerant saw: regular files lstat-ed without
// error, entries whose lstat or directory listing failed (a directory
// that could not be opened counts once, its files unseen), those
// failures by errno name ("EMFILE"; "other" for an error without one),
// and the first such error.
type WalkTally struct {
	Seen, Failed int
	Errnos       map[string]int
	FirstError   string
}

// ErrnoCounts writes the failures by errno as "EMFILE:80,ENOENT:1"
// (names sorted), "" if there were none.
func (t *WalkTally) ErrnoCounts() string {
	names := make([]string, 0, len(t.Errnos))
	for n := range t.Errnos {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, n := range names {
		names[i] = fmt.Sprintf("%s:%d", n, t.Errnos[n])
	}
	return strings.Join(names, ",")
}

// WalkTolerant walks like WalkStat but goes on past errors, counting
// them in t: the memory rows' walk, which a server that keeps a
// descriptor per inode cannot finish above its RLIMIT_NOFILE. It stops
// quietly once stop is closed (checked per directory).
func WalkTolerant(dir string, t *WalkTally, stop <-chan struct{}) {
	fail := func(err error) {
		t.Failed++
		name := "other"
		var errno unix.Errno
		if errors.As(err, &errno) {
			name = unix.ErrnoName(errno)
		}
		if t.Errnos == nil {
			t.Errnos = map[string]int{}
		}
		t.Errnos[name]++
		if t.FirstError == "" {
			t.FirstError = err.Error()
		}
	}
	if Stopped(stop) {
		return
	}
	f, err := os.Open(dir)
	if err != nil {
		fail(err)
		return
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		fail(fmt.Errorf("readdir %s: %w", dir, err))
	}
	var st unix.Stat_t
	for _, name := range names {
		p := dir + "/" + name
		if err := unix.Lstat(p, &st); err != nil {
			fail(fmt.Errorf("lstat %s: %w", p, err))
			continue
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			t.Seen++
		case unix.S_IFDIR:
			WalkTolerant(p, t, stop)
		}
	}
}

// CreateUnlink creates, closes and unlinks n files in dir, one at a time
// (f000000, f000001, ...: open with O_CREAT|O_EXCL, so a name already
// there is an error). It returns ErrStopped once stop is closed (checked
// every 256 files).
func CreateUnlink(dir string, n int, stop <-chan struct{}) error {
	for i := range n {
		if i%256 == 0 && Stopped(stop) {
			return ErrStopped
		}
		p := fmt.Sprintf("%s/f%06d", dir, i)
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
		if err := unix.Close(fd); err != nil {
			return fmt.Errorf("close %s: %w", p, err)
		}
		if err := unix.Unlink(p); err != nil {
			return fmt.Errorf("unlink %s: %w", p, err)
		}
	}
	return nil
}

// ReadFile reads a whole file in chunk-byte read(2)s and returns its
// length. It returns ErrStopped once stop is closed (checked per read).
func ReadFile(path string, chunk int, stop <-chan struct{}) (int64, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	buf := make([]byte, chunk)
	var total int64
	for {
		if Stopped(stop) {
			return total, ErrStopped
		}
		n, err := unix.Read(fd, buf)
		if err != nil {
			return total, fmt.Errorf("read %s: %w", path, err)
		}
		if n == 0 {
			return total, nil
		}
		total += int64(n)
	}
}

// PatternBytes is Pattern's length.
const PatternBytes = 1 << 20

// Pattern is a megabyte of incompressible bytes, the same every call,
// written over and over to make the read and write workloads' files.
func Pattern() []byte {
	b := make([]byte, PatternBytes)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}
