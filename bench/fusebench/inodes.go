package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/bench/internal/fsops"
	schema "github.com/krunbench/krunbench/bench/internal/results"
)

// The memory row (issue 15, item 4): the backend's resident memory after
// the kernel has looked up -mem-files inodes through it (a find+lstat over
// a tree of that many empty files, cold), one fresh server per mode, once
// each. passthrough_hp keeps an O_PATH fd per inode it knows, so a tree
// larger than RLIMIT_NOFILE shows what it does past the limit (the walk
// goes on past errors and counts them); krunbench must keep working.
// virtiofsd is a vhost-user backend and needs a guest in front of it: its
// row belongs to the guest path (bench/guestbench).

const (
	manyName  = "many"
	memoryRow = "memory" // its name in -workloads
)

// inodeRun and inodeResults (the memory section of fuse.json) are
// bench/internal/results'.
type (
	inodeRun     = schema.InodeRun
	inodeResults = schema.Memory
)

// prepareMany makes the memory row's tree on the host.
func prepareMany(cfg *config, share string) error {
	start := time.Now()
	if err := makeTree(filepath.Join(share, manyName), cfg.memFiles); err != nil {
		return err
	}
	unix.Sync()
	fmt.Fprintf(os.Stderr, "fusebench: made the %d-file tree for the memory row (%v)\n", cfg.memFiles, time.Since(start).Round(time.Millisecond))
	return nil
}

// runInodes measures every FUSE mode of the memory row, one fresh server
// each, in the run's mode order.
func runInodes(cfg *config, modes map[string]*mode, fresh func(*mode) (*server, func(), error), share string, stop <-chan struct{}) (*inodeResults, error) {
	var lim unix.Rlimit
	_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	res := &inodeResults{
		Files: cfg.memFiles, RlimitNofile: lim.Cur, Modes: map[string]*inodeRun{},
		Desc:      "server VmRSS before and after a cold find+lstat of every file of the tree through a fresh mount (the kernel then holds a dentry and inode for each, so the server knows them all); rss_peak is VmHWM; one sample per mode",
		Virtiofsd: "not measured here: virtiofsd is a vhost-user backend and needs a guest frontend; its row belongs to the guest path (bench/guestbench)",
	}
	for _, name := range cfg.modes {
		m := modes[name]
		if !m.fuse || !inodeModes[name] {
			continue
		}
		if fsops.Stopped(stop) {
			return res, errStopped
		}
		if err := dropCaches(); err != nil {
			return res, err
		}
		srv, stopSrv, err := fresh(m)
		if err != nil {
			return res, fmt.Errorf("%s: memory: %w", name, err)
		}
		run, err := measureInodes(srv, m.Mount, share, stop)
		stopSrv()
		if err != nil {
			return res, fmt.Errorf("%s: memory: %w", name, err)
		}
		res.Modes[name] = run
		fmt.Fprintf(os.Stderr, "[memory] %-14s rss %d -> %d KiB (peak %d), %d fds, %d files seen, %d failed %s\n",
			name, run.RSSIdleKiB, run.RSSAfterKiB, run.HWMKiB, run.FDs, run.Seen, run.Failed, run.FirstError)
	}
	return res, nil
}

// inodeModes are the modes the memory row compares.
var inodeModes = map[string]bool{modeTap: true, modeGoFuse: true, modePtHP: true}

func measureInodes(srv *server, mnt, share string, stop <-chan struct{}) (*inodeRun, error) {
	pid := srv.cmd.Process.Pid
	run := &inodeRun{}
	var err error
	if run.RSSIdleKiB, err = procStatusKiB(pid, "VmRSS"); err != nil {
		return nil, err
	}
	t0 := time.Now()
	var tally fsops.WalkTally
	fsops.WalkTolerant(filepath.Join(mnt, manyName), &tally, stop)
	run.Seen, run.Failed, run.FirstError = tally.Seen, tally.Failed, tally.FirstError
	run.Seconds = time.Since(t0).Seconds()
	if fsops.Stopped(stop) {
		return nil, errStopped
	}
	if run.RSSAfterKiB, err = procStatusKiB(pid, "VmRSS"); err != nil {
		return nil, fmt.Errorf("server gone after the walk: %w", err)
	}
	run.HWMKiB, _ = procStatusKiB(pid, "VmHWM")
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		run.FDs = len(fds)
	}
	// A file outside the walked tree, looked up and read afterwards.
	if err := readHead(filepath.Join(mnt, readName)); err != nil {
		run.AfterError = err.Error()
	} else {
		run.StillServes = true
	}
	return run, nil
}

// readHead looks path up and reads its first 4 KiB.
func readHead(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Read(make([]byte, 4096))
	return err
}

// procStatusKiB reads a "Key: N kB" line of /proc/PID/status.
func procStatusKiB(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			var kb int64
			if _, err := fmt.Sscan(rest, &kb); err != nil {
				return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, key, err)
			}
			return kb, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, key)
}
