package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/krunbench/krunbench/bench/internal/cli"
	"github.com/krunbench/krunbench/bench/internal/fsops"
	"golang.org/x/sys/unix"
)

// errStopped reports an interrupted run.
var errStopped = fsops.ErrStopped

const chunk = 1 << 20

// workload is one measurement; dir is where the shared directory is seen
// (the host path or the mount point), share its host path.
type workload struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	Unit  string `json:"unit"`
	Desc  string `json:"description"`
	// prepare runs untimed before the cache drop; run is timed and
	// returns how many units it did; after runs untimed.
	prepare func(dir, share string) error
	run     func(dir string, stop <-chan struct{}) (float64, error)
	after   func(dir, share string) error
	// warm reads the data on the host after the cache drop, so only the
	// FUSE side is cold.
	warm func(share string) error
	// warmServer marks default settings' steady-state rows: the server
	// mounted for the whole run, not a fresh one per sample.
	warmServer bool
	// concurrent marks the concurrency rows (concurrency.go).
	concurrent bool
	// detail, when set, runs instead of run and reports its own time and
	// latencies.
	detail func(dir string, stop <-chan struct{}) (outcome, error)
}

func buildWorkloads(cfg *config) []*workload {
	size := cfg.size
	nfiles := cfg.dirs * cfg.filesPerDir
	mb := float64(size) / 1e6
	read := func(dir string, stop <-chan struct{}) (float64, error) {
		n, err := fsops.ReadFile(filepath.Join(dir, readName), chunk, stop)
		if err != nil {
			return 0, err
		}
		if n != size {
			return 0, fmt.Errorf("read %d bytes, want %d", n, size)
		}
		return mb, nil
	}
	stat := func(dir string, stop <-chan struct{}) (float64, error) {
		n, err := fsops.WalkStat(filepath.Join(dir, treeName), stop)
		if err != nil {
			return 0, err
		}
		if n != nfiles {
			return 0, fmt.Errorf("found %d files, want %d", n, nfiles)
		}
		return float64(n), nil
	}
	return []*workload{
		{
			Name: "write", Title: fmt.Sprintf("seq write %s", cli.Human(size)), Unit: "MB/s",
			Desc:    "create a file, write it in 1 MiB writes, fsync, close (MB = 10^6 bytes)",
			prepare: func(dir, _ string) error { return removeIfExists(filepath.Join(dir, writeName)) },
			run: func(dir string, stop <-chan struct{}) (float64, error) {
				return mb, writeFile(filepath.Join(dir, writeName), size, stop)
			},
			after: func(dir, _ string) error { return removeIfExists(filepath.Join(dir, writeName)) },
		},
		{
			Name: "read", Title: fmt.Sprintf("seq read %s (cold)", cli.Human(size)), Unit: "MB/s",
			Desc: "read a file made on the host in 1 MiB reads after drop_caches: host and FUSE page caches both cold",
			run:  read,
		},
		{
			Name: "read-hostwarm", Title: fmt.Sprintf("seq read %s (host cached)", cli.Human(size)), Unit: "MB/s",
			Desc: "as read, but the file is read once on the host after drop_caches, so only the FUSE page cache is cold (server overhead without the disk)",
			run:  read,
			warm: func(share string) error {
				_, err := fsops.ReadFile(filepath.Join(share, readName), chunk, nil)
				return err
			},
		},
		{
			Name: "stat", Title: fmt.Sprintf("find+stat %d files (cold)", nfiles), Unit: "files/s",
			Desc: "after drop_caches, walk the tree (open+getdents of each directory, like find) and lstat(2) every entry, directories included; files/s counts regular files",
			run:  stat,
		},
		{
			Name: "stat-hostwarm", Title: fmt.Sprintf("find+stat %d files (host cached)", nfiles), Unit: "files/s",
			Desc: "as stat, but the tree is walked once on the host after drop_caches, so only the FUSE dentry/inode caches are cold",
			run:  stat,
			warm: func(share string) error {
				_, err := fsops.WalkStat(filepath.Join(share, treeName), nil)
				return err
			},
		},
		{
			Name: "create", Title: fmt.Sprintf("create+unlink %d files", cfg.creates), Unit: "ops/s",
			Desc: "in a fresh empty directory (on a tmpfs mounted inside the share unless -create-on-disk), per file: open(O_CREAT|O_EXCL|O_WRONLY), close, unlink; one op is that triple",
			prepare: func(dir, _ string) error {
				d := filepath.Join(dir, createName, createRun)
				if err := os.RemoveAll(d); err != nil {
					return err
				}
				return os.Mkdir(d, 0o755)
			},
			run: func(dir string, stop <-chan struct{}) (float64, error) {
				return float64(cfg.creates), fsops.CreateUnlink(filepath.Join(dir, createName, createRun), cfg.creates, stop)
			},
			after: func(dir, _ string) error { return os.RemoveAll(filepath.Join(dir, createName, createRun)) },
		},
	}
}

// makeCreateDir makes the directory the create workload runs in: a tmpfs
// mounted inside the share, unless cfg.createOnDisk. Why: on the ext4
// these benchmarks ran on, create+unlink spends most of its time in
// ext4's own inode allocator (recently_deleted, scanning past the inodes
// freed in the last minutes: 5,000 create+unlink on the host itself took
// 3.3 s on ext4 and 0.08 s on tmpfs), a cost that grows with every sample
// and falls on whichever mode runs later; on tmpfs the row measures the
// FUSE servers. Every mode, the host included, sees the same tmpfs.
func makeCreateDir(cfg *config, cl *cleanups, share string) error {
	d := filepath.Join(share, createName)
	if err := os.Mkdir(d, 0o755); err != nil {
		return err
	}
	if cfg.createOnDisk {
		return nil
	}
	if err := unix.Mount("fusebench-create", d, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", d, err)
	}
	cl.push("unmount "+d, func() error { return unmountIfMounted(d) })
	return nil
}

// Names inside the shared directory.
const (
	readName   = "read.dat"
	writeName  = "write.dat"
	treeName   = "tree"
	createName = "create"
	createRun  = "run"
)

// writeFile writes size bytes in 1 MiB writes and fsyncs.
func writeFile(path string, size int64, stop <-chan struct{}) error {
	return writeFileAt(path, size, stop, nil)
}

// writeFileAt is writeFile that, when fsyncAt is not nil, stores there
// the time (UnixNano) its last write() returned, before its fsync.
func writeFileAt(path string, size int64, stop <-chan struct{}, fsyncAt *atomic.Int64) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	buf := fsops.Pattern()
	for done := int64(0); done < size; {
		if fsops.Stopped(stop) {
			unix.Close(fd)
			return errStopped
		}
		n, err := unix.Write(fd, buf[:min(int64(len(buf)), size-done)])
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("write %s: %w", path, err)
		}
		done += int64(n)
	}
	if fsyncAt != nil {
		fsyncAt.Store(time.Now().UnixNano())
	}
	if err := unix.Fsync(fd); err != nil {
		unix.Close(fd)
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return unix.Close(fd)
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// prepareShare makes the data every mode reads: the read file and the
// tree, on the host, before anything is mounted.
func prepareShare(cfg *config, share string) error {
	start := time.Now()
	if err := writeFile(filepath.Join(share, readName), cfg.size, nil); err != nil {
		return err
	}
	tree := filepath.Join(share, treeName)
	for d := range cfg.dirs {
		sub := filepath.Join(tree, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		for i := range cfg.filesPerDir {
			fd, err := unix.Open(fmt.Sprintf("%s/f%05d", sub, i), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
			if err != nil {
				return err
			}
			unix.Close(fd)
		}
	}
	unix.Sync()
	fmt.Fprintf(os.Stderr, "fusebench: made %s file and %d-file tree in %s (%v)\n",
		cli.Human(cfg.size), cfg.dirs*cfg.filesPerDir, share, time.Since(start).Round(time.Millisecond))
	return nil
}

// dropCaches writes back dirty data and drops the page, dentry and inode
// caches; FUSE mounts forget their inodes too.
func dropCaches() error {
	unix.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
}
